"""`jingzhun rules preview`: a changed rule tried on the published registers, compared with the flags raised now;
the warehouse is left as it was."""

from __future__ import annotations


import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from helpers import AS_OF, publish_county, yaml_text
from jingzhun import preview, warehouse
from jingzhun.catalogue import CATALOGUE, CatalogueError
from jingzhun.policy import Policy
from jingzhun.privacy import Refused


def _rules_folder(tmp_path, code: str, sql: str):
    """A rules folder with one rule of the shipped catalogue under its own code, its model replaced by ``sql``."""
    folder = tmp_path / "rules-dir"
    (folder / "rules").mkdir(parents=True)
    entry = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["rules"][code]
    (folder / "rules.yaml").write_text(yaml_text({"rules": {code: entry}}), encoding="utf-8")
    (folder / "rules" / f"{code}.sql").write_text(sql, encoding="utf-8")
    return folder


def test_a_widened_rule_shows_what_it_would_add_and_publishes_nothing(frames, county, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine, raised = publish_county(url, frames, county["landing"])
    with engine.connect() as conn:
        before = pd.read_sql(select(warehouse.flags), conn)
    cars = raised[raised["rule_code"].isin(["RM_CAR", "RV_CAR_ACQUIRED"])]
    widened = _rules_folder(tmp_path, "RM_CAR", "-- RM_CAR: one row per car (any registration date)\n"
                                                "SELECT * FROM int_member_cars\n")
    [p] = preview.preview(engine, preview.read_rules(widened), Policy(), AS_OF)
    now = raised[raised["rule_code"].eq("RM_CAR")]
    assert p.kept == len(now) and p.resolved == 0
    assert p.new == len(set(cars["household_id"]) - set(now["household_id"])) > 0
    assert p.villages["flags"].sum() == len(p.flags) and p.villages["village"].str.endswith("村").all()
    with engine.connect() as conn:
        after = pd.read_sql(select(warehouse.flags), conn)
    pd.testing.assert_frame_equal(before, after)


def test_a_narrowed_rule_shows_what_it_would_resolve(frames, county, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine, raised = publish_county(url, frames, county["landing"])
    none = _rules_folder(tmp_path, "RM_PROPERTY", "-- RM_PROPERTY: one row per property right (none)\n"
                                                  "SELECT e.*, m.household_id, m.name_norm AS member_name_norm FROM real_estate AS e "
                                                  "JOIN int_register_members AS m ON FALSE\n")
    previews = preview.preview(engine, preview.read_rules(none), Policy(), AS_OF)
    assert previews[0].resolved == raised["rule_code"].eq("RM_PROPERTY").sum() > 0 and previews[0].new == 0
    preview.print_preview(previews, none, AS_OF)
    assert "would be resolved (解除)" in capsys.readouterr().out


def test_a_model_without_what_its_evidence_reads_is_refused_naming_it(frames, county, tmp_path):
    engine, _ = publish_county(f"sqlite:///{tmp_path / 'wh.sqlite'}", frames, county["landing"])
    bad = _rules_folder(tmp_path, "RM_PROPERTY", "-- RM_PROPERTY: one row per property right\n"
                                                 "SELECT owner_id_number, _file, _row FROM real_estate\n")
    with pytest.raises(CatalogueError, match="rule RM_PROPERTY: its model RM_PROPERTY.sql gives no column "
                                             "household_id, unit_id, location, usage, nature, right_status, "
                                             "registered, member_name_norm"):
        preview.preview(engine, preview.read_rules(bad), Policy(), AS_OF)


def test_a_folder_without_a_catalogue_is_refused(tmp_path):
    with pytest.raises(Refused, match="no rules.yaml"):
        preview.read_rules(tmp_path)
