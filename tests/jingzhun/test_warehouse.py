from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy import text as sql_text

from jingzhun import warehouse
from jingzhun.warehouse import AuditError, Scope, merge_flags

from helpers import flag, raised


def test_migrations_build_exactly_the_schema(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), warehouse.metadata)
    assert diff == []
    warehouse.connect(warehouse_url)  # a second connect finds the schema at head and changes nothing


def test_bulk_insert_round_trip_with_dates_and_missing_values(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    frame = pd.DataFrame({"_file": ["a.csv", "b.csv"], "_row": [2, 3], "id_number": ["1", "2"],
                          "id_number_valid": [True, False], "id_number_problem": ["", "checksum"],
                          "death_date": pd.to_datetime(["2020-01-02", None]), "record_source": ["火化", None],
                          "run_id": "r1"})
    with engine.begin() as conn:
        assert warehouse.bulk_insert(conn, warehouse.staging_tables["deaths"], frame) == 2
    with engine.connect() as conn:
        back = pd.read_sql(select(warehouse.staging_tables["deaths"]).order_by("_row"), conn)
    assert back["record_source"].tolist()[0] == "火化" and pd.isna(back["record_source"].tolist()[1])
    assert str(back["death_date"].tolist()[0])[:10] == "2020-01-02" and pd.isna(back["death_date"].tolist()[1])
    assert back["id_number_valid"].astype(bool).tolist() == [True, False]


@pytest.mark.sqlite
def test_sqlite_loads_in_slices_keep_every_row_and_value_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(warehouse.loads, "SQLITE_SLICE_ROWS", 2)   # 5 rows: slices of 2, 2 and 1
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    frame = pd.DataFrame({"_file": "a.csv", "_row": [2, 3, 4, 5, 6], "id_number": list("abcde"),
                          "death_date": pd.to_datetime(["2020-01-02", None, "2021-03-04", "2022-05-06", None]),
                          "run_id": "r1"})
    with engine.begin() as conn:
        assert warehouse.bulk_insert(conn, warehouse.staging_tables["deaths"], frame) == 5
    with engine.connect() as conn:
        back = pd.read_sql(select(warehouse.staging_tables["deaths"]).order_by("_row"), conn)
    assert back["id_number"].tolist() == list("abcde") and back["_row"].tolist() == [2, 3, 4, 5, 6]
    assert [None if pd.isna(d) else str(d)[:10] for d in back["death_date"]] == [
        "2020-01-02", None, "2021-03-04", "2022-05-06", None]


def test_a_register_is_published_from_its_parquet_file_value_for_value(warehouse_url, tmp_path):
    """Registers go from Parquet to the warehouse through Arrow (ADBC): empty text stays empty text, missing stays
    missing, ``\\N`` is a value, dates, flags and numbers keep their type; the load table is gone afterwards."""
    engine = warehouse.connect(warehouse_url)
    frame = pd.DataFrame({
        "_file": ["a.csv", "a.csv", "b.xlsx"], "_row": [2, 3, 2],
        "household_id": ["P1", "\\N", ""], "id_number": ["1", "2", None],
        "id_number_valid": [True, False, False], "id_number_problem": ["", "checksum", "empty"],
        "name": ["袁颖俊", "", None], "name_norm": ["袁颖俊", "", ""],
        "identified_year": pd.array([2016, None, 2019], dtype="Int64"),
        "income_per_capita": pd.array([3000.5, None, 0.0], dtype="Float64"),
        "unexited": [True, False, True]})
    parquet = tmp_path / "poverty_register.parquet"
    frame.to_parquet(parquet, index=False)
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [0]})
    warehouse.publish(engine, "r1", pd.DataFrame(), pd.DataFrame(), {"poverty_register": parquet},
                      raised(flag()).drop(columns=["flag_key", "evidence_hash"]), rules, None)
    with engine.connect() as conn:
        back = pd.read_sql(select(warehouse.staging_tables["poverty_register"]).order_by("_file", "_row"), conn)
        tables = sa_inspect(conn).get_table_names()
    assert back["household_id"].tolist() == ["P1", "\\N", ""]
    assert back["id_number"].tolist()[:2] == ["1", "2"] and back["id_number"].isna().tolist() == [False, False, True]
    assert back["name"].tolist()[:2] == ["袁颖俊", ""] and pd.isna(back["name"].tolist()[2])
    assert back["id_number_valid"].astype(bool).tolist() == [True, False, False]
    assert back["unexited"].astype(bool).tolist() == [True, False, True]
    assert [None if pd.isna(v) else int(v) for v in back["identified_year"]] == [2016, None, 2019]
    assert [None if pd.isna(v) else float(v) for v in back["income_per_capita"]] == [3000.5, None, 0.0]
    assert back["run_id"].eq("r1").all() and back["_row"].tolist() == [2, 3, 2]
    assert not [t for t in tables if t.startswith("_load_")]
    with engine.connect() as conn:   # the published table is still exactly the migrated one (SQLite swaps it in)
        assert compare_metadata(MigrationContext.configure(conn), warehouse.metadata) == []


def test_a_run_that_fails_leaves_no_load_table_and_the_last_register(warehouse_url, tmp_path):
    engine = warehouse.connect(warehouse_url)
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [1]})
    first = {"deaths": pd.DataFrame({"_file": ["a.csv"], "_row": [2], "id_number": ["1"],
                                     "death_date": pd.to_datetime(["2020-01-02"])})}
    warehouse.publish(engine, "r1", pd.DataFrame(), pd.DataFrame(), first,
                      raised(flag()).drop(columns=["flag_key", "evidence_hash"]), rules, None)
    twice = pd.DataFrame([flag(household="P9"), flag(household="P9")])
    tonight = {"deaths": pd.DataFrame({"_file": ["b.csv"] * 2, "_row": [2, 3], "id_number": ["1", "2"],
                                       "death_date": pd.to_datetime(["2020-01-02", None])})}
    with pytest.raises(AuditError):
        warehouse.publish(engine, "r2", pd.DataFrame(), pd.DataFrame(), tonight, twice, rules, None)
    with engine.connect() as conn:
        deaths = pd.read_sql(select(warehouse.staging_tables["deaths"]), conn)
        tables = sa_inspect(conn).get_table_names()
    assert deaths["run_id"].tolist() == ["r1"] and str(deaths["death_date"][0])[:10] == "2020-01-02"
    assert not [t for t in tables if t.startswith("_load_")]


EMPTY = pd.DataFrame(columns=warehouse.FLAG_STATE)


def test_lifecycle_open_refresh_resolve_and_keep():
    first = merge_flags(EMPTY, raised(flag(), flag("RM_PROPERTY"), flag("DQ_INVALID_ID")), "r1",
                        {"RM_CAR", "RM_PROPERTY", "DQ_INVALID_ID"}, None)
    assert set(first["status"]) == {"open"} and set(first["first_seen_run"]) == {"r1"}
    # r2: RM_CAR raised again, RM_PROPERTY evaluated and gone, DQ_INVALID_ID not evaluated
    second = merge_flags(first, raised(flag()), "r2", {"RM_CAR", "RM_PROPERTY"}, None).set_index("rule_code")
    assert second.loc["RM_CAR", ["status", "first_seen_run", "last_seen_run"]].tolist() == ["open", "r1", "r2"]
    assert second.loc["RM_PROPERTY", ["status", "resolved_run"]].tolist() == ["resolved", "r2"]
    assert second.loc["DQ_INVALID_ID", ["status", "last_seen_run"]].tolist() == ["open", "r1"]
    third = merge_flags(second.reset_index(), raised(flag("RM_PROPERTY")), "r3", {"RM_PROPERTY"}, None)
    assert third.set_index("rule_code").loc["RM_PROPERTY", "status"] == "open"  # raised again


def test_dismissed_stays_dismissed_until_the_evidence_changes():
    first = merge_flags(EMPTY, raised(flag()), "r1", {"RM_CAR"}, None).assign(status="dismissed")
    same = '{"as_of": "2026-02-01", "records": [1]}'  # another night, same facts
    assert merge_flags(first, raised(flag(evidence=same)), "r2", {"RM_CAR"}, None)["status"].tolist() == ["dismissed"]
    changed = '{"as_of": "2026-02-01", "records": [2]}'
    assert merge_flags(first, raised(flag(evidence=changed)), "r2", {"RM_CAR"}, None)["status"].tolist() == ["open"]
    gone = merge_flags(first, raised(flag("RM_PROPERTY")), "r2", {"RM_CAR", "RM_PROPERTY"}, None)
    assert gone.set_index("rule_code").loc["RM_CAR", "status"] == "dismissed"


def test_new_file_names_and_row_numbers_are_the_same_evidence():
    a = '{"as_of": "2026-01-01", "records": [{"source": "vehicles", "file": "vehicles/a.csv", "row": 2, "plate": "甘D1"}]}'
    b = '{"as_of": "2026-01-02", "records": [{"source": "vehicles", "file": "vehicles/b.xlsx", "row": 90, "plate": "甘D1"}]}'
    c = '{"as_of": "2026-01-02", "records": [{"source": "vehicles", "file": "vehicles/b.xlsx", "row": 90, "plate": "甘D2"}]}'
    hashes = warehouse.evidence_hashes(pd.DataFrame({"evidence": [a, b, c]})).tolist()
    assert hashes[0] == hashes[1] != hashes[2]


def test_a_reconciliation_resolves_only_inside_its_region():
    first = merge_flags(EMPTY, raised(flag(household="P1", village="620421100201"),
                                      flag(household="P2", village="620421200301")), "r1", {"RM_CAR"}, None)
    after = merge_flags(first, raised(flag(household="P1")).iloc[:0], "r2", {"RM_CAR"}, Scope(region="620421100"))
    assert after.set_index("household_id")["status"].to_dict() == {"P1": "resolved", "P2": "open"}


def test_a_reconciliation_of_some_households_resolves_only_theirs():
    first = merge_flags(EMPTY, raised(flag(household="P1"), flag(household="P2"), flag(household="P3")), "r1",
                        {"RM_CAR"}, None)
    after = merge_flags(first, raised(flag(household="P1")), "r2", {"RM_CAR"},
                        Scope(region="620421", households=("P1", "P2")))
    assert after.set_index("household_id")["status"].to_dict() == {"P1": "open", "P2": "resolved", "P3": "open"}


def test_failed_audit_publishes_nothing(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [1]})
    empty = pd.DataFrame()
    warehouse.publish(engine, "r1", empty, empty, {}, raised(flag()).drop(columns=["flag_key", "evidence_hash"]), rules, None)
    twice = pd.DataFrame([flag(household="P9"), flag(household="P9")])
    with pytest.raises(AuditError, match="duplicate flag identities"):
        warehouse.publish(engine, "r2", empty, empty, {}, twice, rules, None)
    with engine.connect() as conn:
        published = pd.read_sql(select(warehouse.flags), conn)
        staged = pd.read_sql(select(warehouse.wap_flags), conn)
        rule_rows = pd.read_sql(select(warehouse.run_rules), conn)
    assert published["household_id"].tolist() == ["P1"] and published["last_seen_run"].tolist() == ["r1"]
    assert staged.empty and set(rule_rows["run_id"]) == {"r1"}


def test_a_report_that_fails_before_commit_leaves_the_warehouse_as_it_was(warehouse_url, tmp_path):
    """The review workbook is written inside the publish transaction: when it cannot be written, nothing of the
    run is published (a run is published with its reports or not at all)."""
    from jingzhun.review import write_review_workbook

    engine = warehouse.connect(warehouse_url)
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [1]})
    empty = pd.DataFrame()
    register = {"deaths": pd.DataFrame({"_file": ["a.csv"], "_row": [2], "id_number": ["1"]})}
    warehouse.publish(engine, "r1", empty, empty, register, raised(flag()).drop(columns=["flag_key", "evidence_hash"]),
                      rules, None)
    blocked = tmp_path / "review.xlsx"
    blocked.mkdir()                                # the workbook's path is a folder: saving it fails
    tonight = {"deaths": pd.DataFrame({"_file": ["b.csv"] * 2, "_row": [2, 3], "id_number": ["1", "2"]})}
    with pytest.raises(OSError):
        warehouse.publish(engine, "r2", empty, empty, tonight, pd.DataFrame([flag(household="P9")]), rules, None,
                          before_commit=lambda conn: write_review_workbook(conn, blocked))
    with engine.connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
        deaths = pd.read_sql(select(warehouse.staging_tables["deaths"]), conn)
    assert flags["household_id"].tolist() == ["P1"] and flags["status"].tolist() == ["open"]
    assert deaths["run_id"].tolist() == ["r1"]


def test_a_deployment_that_adds_a_column_to_its_source_widens_its_table(warehouse_url, tmp_path):
    """A province adds 单位编码 to its payroll register (and stops sending 职务): the table made by the earlier
    deployment gains the new column; the snapshot in it keeps the column no longer listed, with its values."""
    import yaml

    from jingzhun import deployment

    pack = Path(__file__).resolve().parents[2] / "examples" / "province-pack" / "deployment.yaml"
    data = yaml.safe_load(pack.read_text(encoding="utf-8"))
    data.pop("rules")
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    columns = data["sources"]["public_employees"]["columns"]
    columns[:] = [c for c in columns if c["name"] != "position"] + [{"name": "unit_code", "aliases": ["单位编码"]}]
    second.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        deployment.install_file(str(first))
        with warehouse.connect(warehouse_url).begin() as conn:
            conn.execute(warehouse.staging_tables["public_employees"].insert(),
                         {"run_id": "r1", "id_number": "x", "position": "科员"})
        deployment.uninstall()

        deployment.install_file(str(second))
        engine = warehouse.connect(warehouse_url)
        with engine.connect() as conn:
            table = warehouse.staging_tables["public_employees"].name
            columns = {c["name"] for c in sa_inspect(conn).get_columns(table)}
            kept = conn.execute(sql_text(f'SELECT "position", "unit_code" FROM "{table}"')).all()
            assert warehouse.widen(conn, warehouse.staging_tables["public_employees"]) == []  # once is enough
    finally:
        deployment.uninstall()
    assert {"unit_code", "position", "payroll_status"} <= columns
    assert kept == [("科员", None)]
