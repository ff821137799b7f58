"""The rule catalogue: what it holds, and a catalogue that cannot be used refused naming the rule and field."""

from __future__ import annotations

import shutil

import pytest
import sqlglot
import yaml

from jingzhun.catalogue import CATALOGUE, DIRECTIONS, RULES, CatalogueError, read_catalogue
from jingzhun.engine import INTERMEDIATE, MARTS, model_order, tables_read, transpile


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
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
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
