"""The offline path through the command line (signoff.md): an area's workbook out, its decisions back in as a named
user's steps of the chain (all or nothing, the chain's checks), recorded in the history and the audit log; and the
steward's workbook recorded as a named steward's."""

from datetime import timedelta

import openpyxl
import pandas as pd
from sqlalchemy import select, update

from jingzhun import auth, cli, warehouse
from jingzhun.review import HEADERS
from jingzhun.signoff import chain
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

from helpers import decide, nightly_publish

PASSWORD = "a-long-password"


def published(frames, url):
    nightly_publish(url, "r1", frames)
    engine = warehouse.connect(url)
    with engine.connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    open_ = flags[flags["status"].eq("open") & ~flags["direction"].isin(["refer", "review"])]
    return engine, flags, open_["village_code"].value_counts().index[0]


def keys_of(book):
    return [row[HEADERS.index("标识")].value for row in openpyxl.load_workbook(book)["核实清单"].iter_rows(min_row=2)]


def test_a_village_s_steps_offline_then_the_township_s(frames, tmp_path, warehouse_url, capsys):
    engine, flags, village = published(frames, warehouse_url)
    book = tmp_path / "village.xlsx"
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--area", village, "--out", str(book)]) == 0
    keys = keys_of(book)
    mine = flags[flags["village_code"].eq(village) & flags["status"].eq("open")
                 & ~flags["direction"].isin(["refer", "review"])]
    assert sorted(keys) == sorted(mine["flag_key"])    # its own village, its own level's steps: nothing else
    wb = openpyxl.load_workbook(book)
    assert wb["核实清单"].data_validations.dataValidation[0].formula1 == '"评议通过,评议不通过,公示异议"'
    assert "经办人签字" in wb["核实清单"].oddFooter.center.text and "填写说明" in wb.sheetnames

    auth.add_user(engine, "村干部", "village", village, password=PASSWORD)
    auth.add_user(engine, "乡镇干部", "township", village[:9], password=PASSWORD)
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--area", village[:9], "--as", "村干部",
                     "--out", str(tmp_path / "not_mine.xlsx")]) == 2      # a village user exports no township
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--area", village, "--as", "村干部",
                     "--out", str(book)]) == 0
    decide(book, {keys[0]: ("评议通过", ""), keys[1]: ("评议不通过", "")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "乡镇干部", str(book)]) == 2
    assert "imported --as a user of another level" in capsys.readouterr().err
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "村干部", str(book)]) == 2
    assert "a reason is required" in capsys.readouterr().err     # the chain's own check, named by its row
    county = Actor(9, "县", Role.county, village[:6])
    assert chain.flag_detail(engine, county, keys[0])["steps"] == []   # all or nothing: the good row waits too
    decide(book, {keys[1]: ("评议不通过", "经评议不属实")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "村干部", str(book)]) == 0
    first, second = (chain.flag_detail(engine, county, k) for k in keys[:2])
    assert (first["stage"], second["stage"], second["status"]) == ("publicity_1", "dismissed", "dismissed")
    assert [(s["action"], s["actor"], s["via"]) for s in first["steps"]] == [("agree", "村干部", "workbook")]
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "村干部", str(book)]) == 0
    assert "already imported" in capsys.readouterr().out

    with engine.begin() as conn:   # seven days later: the 公示 is over
        conn.execute(update(warehouse.flags).where(warehouse.flags.c.flag_key == keys[0]).values(
            stage_since=warehouse.now() - timedelta(days=8)))
    township_book = tmp_path / "township.xlsx"
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--area", village[:9], "--out",
                     str(township_book)]) == 0
    assert keys[0] in keys_of(township_book)
    decide(township_book, {keys[0]: ("审核通过(入户核实)", "张三、李四、王五")})
    chain.take_step(engine, Actor(2, "乡镇干部", Role.township, village[:9]), keys[0], "return", note="补材料",
                    **{k: chain.flag_detail(engine, county, keys[0])[k] for k in ("evidence_hash", "state_token")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "乡镇干部", str(township_book)]) == 2
    assert "someone acted on this flag" in capsys.readouterr().err   # stale: the page took a step meanwhile
    assert chain.flag_detail(engine, county, keys[0])["stage"] == "pending_village"


def test_the_steward_s_workbook_as_a_named_steward(frames, tmp_path, warehouse_url, capsys):
    engine, flags, _ = published(frames, warehouse_url)
    review = flags[flags["direction"].eq("review") & flags["status"].eq("open")]
    village = review["village_code"].value_counts().index[0]
    book = tmp_path / "steward.xlsx"
    assert cli.main(["review", "export", "--warehouse", warehouse_url, "--region", village[:9], "--out", str(book)]) == 0
    keys = keys_of(book)
    mine = review.loc[review["village_code"].eq(village), "flag_key"].tolist()
    walks = next(k for k in keys if k not in set(review["flag_key"]))     # a removal or an addition: the chain's
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "nobody", str(book)]) == 2
    assert "no such user" in capsys.readouterr().err
    auth.add_user(engine, "县审批", "county", village[:6], password=PASSWORD)
    auth.add_user(engine, "王管理", "steward", village[:6], password=PASSWORD)
    auth.add_user(engine, "外县管理", "steward", "620422", password=PASSWORD)
    decide(book, {mine[0]: ("确认", "入户核实"), mine[1]: ("驳回", "不属实"), walks: ("确认", "")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "县审批", str(book)]) == 2
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "王管理", str(book)]) == 2
    assert "walks the sign-off chain" in capsys.readouterr().err       # nothing imported: not a steward's decision
    decide(book, {walks: ("", "")})
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "外县管理", str(book)]) == 2
    assert "unknown flag" in capsys.readouterr().err                    # another county's: as if it did not exist
    assert cli.main(["review", "import", "--warehouse", warehouse_url, "--as", "王管理", str(book)]) == 0
    county = Actor(1, "县", Role.county, village[:6])
    first, second = (chain.flag_detail(engine, county, k) for k in mine[:2])
    assert (first["stage"], first["status"], second["stage"], second["status"]) == (
        "approved", "confirmed", "dismissed", "dismissed")
    assert [(s["action"], s["actor"], s["role"], s["via"], s["note"]) for s in second["steps"]] == [
        ("migrated", "王管理", "steward", "workbook", "驳回:不属实")]
    with engine.connect() as conn:
        log = pd.read_sql(select(warehouse.audit_log), conn)
    assert {"export", "import"} <= set(log["action"]) and "王管理" in set(log["actor"])
