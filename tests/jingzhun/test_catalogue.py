"""The rule catalogue: what it holds, and a catalogue that cannot be used refused naming the rule and field."""

from __future__ import annotations

import shutil

import pytest
import sqlglot
import yaml

from jingzhun.catalogue import CATALOGUE, DIRECTIONS, RULES, CatalogueError, read_catalogue
from jingzhun.engine import INTERMEDIATE, MARTS, model_order, tables_read, transpile

from helpers import yaml_text


def test_every_rule_has_title_grain_direction_and_model():
    assert len(RULES) == 21
    for rule in RULES.values():
        assert rule.title and rule.direction in DIRECTIONS and rule.evidence
        for part in rule.evidence:
            assert rule.model_path(part).is_file()
            assert rule.model_path(part).read_text(encoding="utf-8").startswith(f"-- {rule.code}")


@pytest.mark.parametrize("path", sorted([*INTERMEDIATE.glob("*.sql"), *MARTS.glob("*.sql"),
                                         *(CATALOGUE.parent / "rules").glob("*.sql")]), ids=lambda p: p.name)
def test_every_model_states_its_grain_and_carries_to_spark(path):
    sql = path.read_text(encoding="utf-8")
    assert "one row per" in sql.splitlines()[0].lower()
    spark = transpile(sql, "spark")
    assert sqlglot.parse_one(spark, read="spark").find(sqlglot.exp.Select) is not None


def test_intermediate_models_run_after_what_they_read():
    models = {p.stem: p.read_text(encoding="utf-8") for p in INTERMEDIATE.glob("*.sql")}
    order = model_order(models)
    for name, sql in models.items():
        for read in tables_read(sql) & set(models):
            assert order.index(read) < order.index(name), (read, name)


def _deployment(tmp_path, change) -> tuple:
    """A copy of the shipped catalogue with one change."""
    folder = tmp_path / "pack"
    shutil.copytree(CATALOGUE.parent / "rules", folder / "rules")
    data = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    change(data["rules"], folder)
    path = folder / "rules.yaml"
    path.write_text(yaml_text(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("change, message", [
    (lambda r, f: r["RM_CAR"]["needs"].append("tax_records"), "rule RM_CAR: unknown source 'tax_records' in needs"),
    (lambda r, f: r["RM_CAR"]["columns"].append("vehicles.colour"), "rule RM_CAR: unknown column 'vehicles.colour'"),
    (lambda r, f: r["RM_CAR"].update(grain="village"), "rule RM_CAR: unknown grain 'village'"),
    (lambda r, f: r["RM_CAR"].update(direction="delete"), "rule RM_CAR: unknown direction 'delete'"),
    (lambda r, f: r["RM_CAR"].update(weight=3), "rule RM_CAR: unknown field(s) weight"),
    (lambda r, f: r["RM_CAR"].pop("title"), "rule RM_CAR: missing field 'title'"),
    (lambda r, f: (f / "rules" / "RM_PROPERTY.sql").unlink(), "rule RM_PROPERTY: its model RM_PROPERTY.sql is missing"),
    (lambda r, f: r["ADD_TEKUN"]["evidence"][0].update(source="hukuo"), "rule ADD_TEKUN: unknown source 'hukuo' in evidence"),
])
def test_a_catalogue_that_cannot_be_used_is_refused_naming_it(tmp_path, change, message):
    with pytest.raises(CatalogueError) as caught:
        read_catalogue(_deployment(tmp_path, change))
    assert message in str(caught.value)


def test_the_shipped_catalogue_read_again_is_the_same(tmp_path):
    assert read_catalogue(_deployment(tmp_path, lambda r, f: None)).rules.keys() == RULES.keys()


def test_every_rules_registers_are_derived_from_its_sql_and_the_catalogue_agrees():
    """What a rule reads comes from its SQL, through every intermediate model; a catalogue entry that lists
    something else is a mistake this test names."""
    from jingzhun.catalogue import current
    from jingzhun.engine import needs_disagreements, rule_sources

    assert needs_disagreements(current()) == {}
    assert rule_sources(RULES["DQ_INVALID_ID"]) == {"poverty_register", "hukou", "deaths"}  # via int_register_members
    assert rule_sources(RULES["REVERT_HOUSING"]) >= {"housing_safety", "hukou"}            # via heads of households


def test_a_catalogue_entry_omitting_a_register_its_sql_reads_through_an_intermediate_model_is_named(tmp_path):
    from jingzhun.engine import needs_disagreements, not_evaluated_reason, rule_sources

    path = _deployment(tmp_path, lambda r, f: r["DQ_INVALID_ID"].update(needs=["poverty_register"]))
    catalogue = read_catalogue(path)
    assert needs_disagreements(catalogue) == {"DQ_INVALID_ID": "reads but does not list deaths, hukou"}
    rule = catalogue.rules["DQ_INVALID_ID"]
    arrived = {"poverty_register": ["household_id"], "hukou": [], "deaths": ["id_number"]}
    reason = not_evaluated_reason(rule, arrived, {"hukou": "blocked: 行数骤减"}, rule_sources(rule))
    assert reason == "hukou: blocked: 行数骤减"  # the derived reads decide, whatever the entry lists


def test_a_province_packs_rules_agree_with_their_sql():
    from pathlib import Path

    from jingzhun import deployment
    from jingzhun.engine import needs_disagreements

    pack = Path(__file__).resolve().parents[2] / "examples" / "province-pack"
    pack_deployment = deployment.install_file(pack / "deployment.yaml")
    try:
        assert needs_disagreements(pack_deployment.catalogue) == {}
    finally:
        deployment.uninstall()
