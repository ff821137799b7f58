"""The offline path through the command line (signoff.md): an area's workbook out, decisions in as a named user,
recorded in the chain's history and the audit log."""

import openpyxl
import pandas as pd
from sqlalchemy import select

from jingzhun import auth, cli, warehouse
from jingzhun.signoff import chain
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

from jingzhun.review import HEADERS

from helpers import decide, nightly_publish


def test_an_area_s_workbook_and_its_decisions_as_a_named_user(frames, tmp_path, warehouse_url, capsys):
    nightly_publish(warehouse_url, "r1", frames)
    engine = warehouse.connect(warehouse_url)
    with engine.connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    village = flags["village_code"].value_counts().index[0]
    book = tmp_path / "village.xlsx"
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--area", village, "--out", str(book)]) == 0
    keys = [row[HEADERS.index("标识")].value for row in openpyxl.load_workbook(book)["核实清单"].iter_rows(min_row=2)]
    assert sorted(keys) == sorted(flags.loc[flags["village_code"].eq(village) & flags["status"].eq("open"), "flag_key"])

    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "nobody", str(book)]) == 2
    assert "no such user" in capsys.readouterr().err
    auth.add_user(engine, "王管理", "steward", village[:6], password="a-long-password")
    decide(book, {keys[0]: ("确认", "入户核实"), keys[1]: ("驳回", "不属实")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "王管理", str(book)]) == 0
    county = Actor(1, "县", Role.county, village[:6])
    first, second = (chain.flag_detail(engine, county, k) for k in keys[:2])
    assert (first["stage"], first["status"], second["stage"], second["status"]) == (
        "approved", "confirmed", "dismissed", "dismissed")
    assert [(s["action"], s["actor"], s["via"], s["note"]) for s in second["steps"]] == [
        ("migrated", "王管理", "workbook", "驳回:不属实")]
    with engine.connect() as conn:
        log = pd.read_sql(select(warehouse.audit_log), conn)
    assert {"export", "import"} <= set(log["action"]) and "王管理" in set(log["actor"])
