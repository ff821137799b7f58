"""A flag is what it is about: its rule and the register household (and the person, for a person-level rule); the
hukou household only for a family not on the register. Keys and evidence digests are SHA-256 of documented texts;
existing warehouses are migrated with every decision, its history and its first-seen run."""

from __future__ import annotations

import hashlib

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select
from sqlalchemy import text as sql_text

from jingzhun import warehouse
from jingzhun.warehouse import merge_flags

from helpers import flag, raised

EMPTY = pd.DataFrame(columns=warehouse.FLAG_STATE)


def test_the_key_is_sha256_of_the_documented_text_and_ignores_the_hukou_household_of_a_register_family():
    a = flag(household="P1") | {"hukou_household_id": "H1"}
    b = flag(household="P1") | {"hukou_household_id": "H2"}
    person = flag(rule="RM_MEMBER_DECEASED", household="P1") | {"id_number": "620421195001010012"}
    outside = flag(rule="ADD_DIBAO", household="") | {"hukou_household_id": "H9"}
    keys = warehouse.flag_keys(pd.DataFrame([a, b, person, outside]))
    texts = ["flag/v2|RM_CAR|register|P1|", "flag/v2|RM_CAR|register|P1|",
             "flag/v2|RM_MEMBER_DECEASED|register|P1|620421195001010012", "flag/v2|ADD_DIBAO|hukou|H9"]
    assert keys.tolist() == [hashlib.sha256(t.encode()).hexdigest()[:48] for t in texts]
    evidence = pd.DataFrame({"evidence": ['{"as_of": "2026-01-01", "records": [{"plate": "甘D1"}]}']})
    assert warehouse.evidence_hashes(evidence).iloc[0] == hashlib.sha256(
        '{"records": [{"plate": "甘D1"}]}'.encode()).hexdigest()


def test_a_family_whose_hukou_number_changes_keeps_its_flag_and_decision():
    first = merge_flags(EMPTY, raised(flag(household="P1") | {"hukou_household_id": "H1"}), "r1", {"RM_CAR"}, None)
    decided = first.assign(status="confirmed")
    moved = merge_flags(decided, raised(flag(household="P1") | {"hukou_household_id": "H7"}), "r2", {"RM_CAR"}, None)
    assert len(moved) == 1
    assert moved.iloc[0][["status", "hukou_household_id", "first_seen_run", "last_seen_run"]].tolist() == [
        "confirmed", "H7", "r1", "r2"]


def _at_revision(url: str, revision: str):
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(warehouse.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return engine


def test_migrating_keeps_every_decision_history_and_first_seen_run(warehouse_url):
    """A warehouse of the old keys (a family seen under two 户号, decided under each) upgraded: one flag, its
    decision in force, both reviews, the first night it was seen."""
    old = _at_revision(warehouse_url, "0005")
    evidence = '{"as_of": "2026-01-01", "records": [{"plate": "甘D1"}]}'
    row = dict(rule_code="RM_CAR", direction="remove", household_id="P1", id_number="", village_code="620421100201",
               evidence=evidence, evidence_text="t", evidence_hash="111-222", resolved_run=None, opened_run=None)
    flags = pd.DataFrame([
        row | dict(flag_key="1-1", hukou_household_id="H1", status="resolved", first_seen_run="r1",
                   last_seen_run="r2", resolved_run="r3"),
        row | dict(flag_key="2-2", hukou_household_id="H2", status="confirmed", first_seen_run="r3", last_seen_run="r4"),
        row | dict(flag_key="3-3", rule_code="ADD_DIBAO", direction="add", household_id="", hukou_household_id="H9",
                   status="dismissed", first_seen_run="r1", last_seen_run="r4"),
    ])
    reviews = pd.DataFrame({"flag_key": ["1-1", "2-2", "3-3"], "decision": ["待核实", "确认", "驳回"],
                            "note": ["", "", "不符合"], "reviewer": "张三", "evidence_hash": ["111-222", "111-222", "0-0"],
                            "workbook": "w.xlsx", "workbook_sha256": "x",
                            "decided_at": pd.Timestamp("2026-11-01", tz="UTC")})
    with old.begin() as conn:
        flags.to_sql("flags", conn, if_exists="append", index=False)
        reviews.to_sql("reviews", conn, if_exists="append", index=False)
    old.dispose()

    engine = warehouse.connect(warehouse_url)
    with engine.connect() as conn:
        after = pd.read_sql(select(warehouse.flags), conn).set_index("rule_code")
        kept = pd.read_sql(select(warehouse.reviews).order_by(warehouse.reviews.c.review_id), conn)
        revision = conn.execute(sql_text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == "0006" or revision > "0006"
    assert len(after) == 2
    car = after.loc["RM_CAR"]
    assert car["flag_key"] == warehouse.flag_keys(pd.DataFrame([row | {"hukou_household_id": "H2"}])).iloc[0]
    assert [car["status"], car["hukou_household_id"], car["first_seen_run"], car["last_seen_run"]] == [
        "confirmed", "H2", "r1", "r4"]
    assert car["evidence_hash"] == warehouse.evidence_hashes(pd.DataFrame({"evidence": [evidence]})).iloc[0]
    assert after.loc["ADD_DIBAO", "status"] == "dismissed"
    assert kept["flag_key"].tolist() == [car["flag_key"], car["flag_key"], after.loc["ADD_DIBAO", "flag_key"]]
    assert kept["evidence_hash"].tolist() == [car["evidence_hash"], car["evidence_hash"], "0-0"]  # what was seen
    assert kept["decision"].tolist() == ["待核实", "确认", "驳回"]


def test_migrating_keeps_a_dismissal_in_force_when_a_later_hukou_number_opened_the_flag_again(tmp_path):
    """Under the old keys a 分户 raised the dismissed flag again as new and open; merged, the dismissal taken on
    the same evidence is in force again."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    old = _at_revision(url, "0005")
    evidence = '{"as_of": "2026-01-01", "records": [{"plate": "甘D1"}]}'
    row = dict(rule_code="RM_CAR", direction="remove", household_id="P1", id_number="", village_code="620421100201",
               evidence=evidence, evidence_text="t", evidence_hash="9-9", resolved_run=None, opened_run=None)
    pd.DataFrame([row | dict(flag_key="1-1", hukou_household_id="H1", status="dismissed", first_seen_run="r1",
                             last_seen_run="r2"),
                  row | dict(flag_key="2-2", hukou_household_id="H2", status="open", first_seen_run="r3",
                             last_seen_run="r4")]).to_sql("flags", old, if_exists="append", index=False)
    pd.DataFrame({"flag_key": ["1-1"], "decision": ["驳回"], "note": ["车已过户"], "reviewer": "张三",
                  "evidence_hash": ["9-9"], "workbook": "w.xlsx", "workbook_sha256": "x",
                  "decided_at": pd.Timestamp("2026-11-01", tz="UTC")}).to_sql("reviews", old, if_exists="append",
                                                                               index=False)
    old.dispose()
    with warehouse.connect(url).connect() as conn:
        after = pd.read_sql(select(warehouse.flags), conn)
    assert after[["status", "hukou_household_id", "first_seen_run"]].values.tolist() == [["dismissed", "H2", "r1"]]
