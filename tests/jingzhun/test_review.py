"""The steward's round trip on a real warehouse: workbook out, decisions in, and what the next runs do."""

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select

from jingzhun import warehouse
from jingzhun.policy import Policy
from jingzhun.publicity import publicity_list
from jingzhun.review import HEADERS, write_review_workbook
from jingzhun.review_import import ReviewError, import_review
from jingzhun.catalogue import RULES
from jingzhun.engine import flags

from helpers import AS_OF, decide, nightly_publish  # noqa: F401


def current(url) -> pd.DataFrame:
    with warehouse.connect(url).connect() as conn:
        return pd.read_sql(select(warehouse.flags), conn).set_index("flag_key")


def test_review_round_trip(frames, tmp_path, warehouse_url):
    nightly_publish(warehouse_url, "r1", frames)
    book = write_review_workbook(warehouse.connect(warehouse_url), tmp_path / "review.xlsx")
    flags_now = current(warehouse_url)
    sheet = openpyxl.load_workbook(book)["核实清单"]
    assert [c.value for c in sheet[1]] == HEADERS and sheet.max_row == len(flags_now) + 1
    assert sheet.data_validations.dataValidation[0].formula1 == '"确认,驳回,待核实"'

    car = flags_now[flags_now["rule_code"].eq("RM_CAR")].index[0]
    estate = flags_now[flags_now["rule_code"].eq("RM_PROPERTY")].iloc[0]
    dibao = flags_now[flags_now["rule_code"].eq("ADD_DIBAO")].index[0]
    decide(book, {car: ("确认", "入户核实有车"), estate.name: ("驳回", "房屋已出售,待登记"), dibao: ("确认", "")})
    assert import_review(warehouse.connect(warehouse_url), book, reviewer="李核查") == {"确认": 2, "驳回": 1}

    after = current(warehouse_url)
    assert after.loc[car, "status"] == "confirmed" and after.loc[dibao, "status"] == "confirmed"
    assert after.loc[estate.name, "status"] == "dismissed"
    with warehouse.connect(warehouse_url).connect() as conn:
        reviews = pd.read_sql(select(warehouse.reviews), conn).set_index("flag_key")
    assert reviews.loc[estate.name, ["decision", "note", "reviewer"]].tolist() == ["驳回", "房屋已出售,待登记", "李核查"]
    assert reviews["decided_at"].notna().all() and reviews["workbook"].eq("review.xlsx").all()

    nightly_publish(warehouse_url, "r2", frames)  # same facts tonight
    again = current(warehouse_url)
    assert again.loc[estate.name, "status"] == "dismissed" and again.loc[car, "status"] == "confirmed"

    owner = estate["evidence"].split('"id_number": "')[1].split('"')[0]
    changed = dict(frames)
    extra = frames["real_estate"][frames["real_estate"]["owner_id_number"].eq(owner)].assign(
        unit_id="620421999999999999", _row=9999)
    changed["real_estate"] = pd.concat([frames["real_estate"], extra], ignore_index=True)
    nightly_publish(warehouse_url, "r3", changed)  # a second flat appears: the evidence changed
    assert current(warehouse_url).loc[estate.name, "status"] == "open"

    public = publicity_list(warehouse.connect(warehouse_url), Policy())
    assert set(public["类别"]) == {"拟纳入", "拟清退"}
    assert public["身份证号"].str.fullmatch(r"\d{2}\*{13}[\dX]{3}").all()
    assert public["姓名"].ne("").all()


@pytest.mark.parametrize("edit, message", [
    (("=HYPERLINK(\"http://x\",\"点\")", "备注"), "formula"),
    (("同意", "决定"), "未知决定"),
    (("驳回", "决定"), "驳回须在备注中说明理由"),
])
def test_a_bad_workbook_is_rejected_and_changes_nothing(frames, tmp_path, edit, message):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    before = current(url)
    wb = openpyxl.load_workbook(book)
    ws = wb["核实清单"]
    ws.cell(2, HEADERS.index("决定") + 1).value = "确认"          # a good decision next to the bad cell
    value, column = edit
    ws.cell(3, HEADERS.index(column) + 1).value = value
    wb.save(book)
    with pytest.raises(ReviewError, match=message):
        import_review(warehouse.connect(url), book, reviewer="x")
    pd.testing.assert_frame_equal(before, current(url))
    with warehouse.connect(url).connect() as conn:
        assert pd.read_sql(select(warehouse.reviews), conn).empty


def test_evidence_changed_since_the_workbook_is_rejected(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    key = current(url).index[0]
    decide(book, {key: ("确认", "")})
    with warehouse.connect(url).begin() as conn:
        conn.execute(warehouse.flags.update().where(warehouse.flags.c.flag_key == key).values(evidence_hash="other"))
    with pytest.raises(ReviewError, match="证据已变化"):
        import_review(warehouse.connect(url), book)


def test_workbook_cells_are_escaped_against_formulas(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    poisoned = dict(frames)
    reg = frames["poverty_register"].copy()
    bad = ~reg["id_number_valid"].astype(bool)
    reg.loc[bad, "name"] = "=cmd|' /C calc'!A0"
    poisoned["poverty_register"] = reg
    nightly_publish(url, "r1", poisoned)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    ws = openpyxl.load_workbook(book)["核实清单"]
    cells = [c for row in ws.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    assert not any(isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@")) for c in cells)


# ---------------------------------------------------------------- stale and tampered workbooks

def _without(frames, rule_frame: str, mask) -> dict:
    """Tonight's registers with some rows of one register gone (the facts behind a flag no longer there)."""
    out = dict(frames)
    out[rule_frame] = frames[rule_frame][~mask(frames[rule_frame])].reset_index(drop=True)
    return out


def _car_flag(url):
    flags_now = current(url)
    car = flags_now[flags_now["rule_code"].eq("RM_CAR")].iloc[0]
    owner = car["evidence"].split('"id_number": "')[1].split('"')[0]
    return car.name, (lambda f: f["owner_id_number"].eq(owner))


def _reviews(url) -> pd.DataFrame:
    with warehouse.connect(url).connect() as conn:
        return pd.read_sql(select(warehouse.reviews), conn)


def test_a_stale_confirmation_of_a_resolved_flag_is_refused_and_never_reaches_the_publicity_list(frames, tmp_path,
                                                                                                  warehouse_url):
    nightly_publish(warehouse_url, "r1", frames)
    book = write_review_workbook(warehouse.connect(warehouse_url), tmp_path / "review.xlsx")
    car, owns = _car_flag(warehouse_url)
    nightly_publish(warehouse_url, "r2", _without(frames, "vehicles", owns))   # the car was sold: resolved
    assert current(warehouse_url).loc[car, "status"] == "resolved"
    decide(book, {car: ("确认", "入户看到有车")})
    with pytest.raises(ReviewError, match=r"第\d+行: .*已自动解除"):
        import_review(warehouse.connect(warehouse_url), book, reviewer="王")
    assert current(warehouse_url).loc[car, "status"] == "resolved" and _reviews(warehouse_url).empty
    public = publicity_list(warehouse.connect(warehouse_url), Policy())
    assert "有车(识别时已有)" not in set(public["事由"])


def test_a_decision_on_a_flag_opened_again_since_is_refused(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    car, owns = _car_flag(url)
    nightly_publish(url, "r2", _without(frames, "vehicles", owns))
    nightly_publish(url, "r3", frames)                                       # the car is back: opened again
    assert current(url).loc[car, ["status", "opened_run"]].tolist() == ["open", "r3"]
    decide(book, {car: ("确认", "有车")})
    with pytest.raises(ReviewError, match="已重新打开"):
        import_review(warehouse.connect(url), book)


def test_a_decision_on_a_flag_decided_by_someone_else_since_is_refused(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    mine = write_review_workbook(warehouse.connect(url), tmp_path / "mine.xlsx")
    theirs = write_review_workbook(warehouse.connect(url), tmp_path / "theirs.xlsx")
    car, _ = _car_flag(url)
    decide(theirs, {car: ("待核实", "下周入户")})
    import_review(warehouse.connect(url), theirs, reviewer="赵")
    decide(mine, {car: ("确认", "有车")})
    with pytest.raises(ReviewError, match="已由 赵 于 .* 作出决定"):
        import_review(warehouse.connect(url), mine, reviewer="钱")
    assert current(url).loc[car, "status"] == "open" and len(_reviews(url)) == 1


def test_importing_the_same_workbook_twice_is_a_no_op_that_says_so(frames, tmp_path):
    url, book, _ = _decided_in_a_workbook(frames, tmp_path, ("待核实", "下周入户"))
    assert import_review(warehouse.connect(url), book) == {"待核实": 1}
    assert import_review(warehouse.connect(url), book) == {"already imported": 1}
    assert len(_reviews(url)) == 1


def _decided_in_a_workbook(frames, tmp_path, decision=("确认", "有车")):
    """A published night and its review workbook with one car flag decided: (warehouse, workbook, flag)."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    car, _ = _car_flag(url)
    decide(book, {car: decision})
    return url, book, car


def _poisoned(book, how: str):
    wb = openpyxl.load_workbook(book)
    if how == "summary sheet":
        wb["按村汇总"]["D2"] = "=1+1"
    elif how == "new sheet":
        wb.create_sheet("备用")["A1"] = "=SUM(1,2)"
    elif how == "defined name":
        from openpyxl.workbook.defined_name import DefinedName
        wb.defined_names["x"] = DefinedName("x", attr_text="核实清单!$A$1")
    wb.save(book)


@pytest.mark.parametrize("how", ["summary sheet", "new sheet", "defined name"])
def test_a_formula_or_name_anywhere_in_the_workbook_rejects_it(frames, tmp_path, how):
    url, book, car = _decided_in_a_workbook(frames, tmp_path)
    _poisoned(book, how)
    with pytest.raises(ReviewError, match="公式|defined name"):
        import_review(warehouse.connect(url), book)
    assert _reviews(url).empty and current(url).loc[car, "status"] == "open"


def test_a_workbook_whose_key_columns_were_removed_is_rejected_with_a_clear_message(frames, tmp_path):
    url, book, _ = _decided_in_a_workbook(frames, tmp_path)
    wb = openpyxl.load_workbook(book)
    wb["核实清单"].delete_cols(HEADERS.index("标识") + 1, 3)
    wb.save(book)
    with pytest.raises(ReviewError) as caught:
        import_review(warehouse.connect(url), book)
    assert "缺少列“标识”" in str(caught.value) and "缺少列“状态标记”" in str(caught.value)
    assert "jingzhun review export" in str(caught.value)  # how to get a fresh one
    assert _reviews(url).empty


def test_the_same_facts_resent_in_another_order_or_split_across_renamed_files_keep_a_dismissal(frames, tmp_path,
                                                                                              warehouse_url):
    nightly_publish(warehouse_url, "r1", frames)
    flags_now = current(warehouse_url)
    several = flags_now[flags_now["evidence"].str.count('"source": ') >= 2]
    assert {"ADD_DIBAO", "REVERT_ILLNESS"} <= set(several["rule_code"])    # evidence of several records
    book = write_review_workbook(warehouse.connect(warehouse_url), tmp_path / "review.xlsx")
    decide(book, {key: ("驳回", "已入户核实,不符合") for key in several.index})
    import_review(warehouse.connect(warehouse_url), book, reviewer="周")
    resent = {}
    for name, frame in frames.items():                       # every register backwards, split into renamed files
        backwards = frame.iloc[::-1].reset_index(drop=True)
        half = backwards.index < len(backwards) // 2
        backwards["_file"] = backwards["_file"].where(~half, f"{name}/resent_part1.csv").where(half, f"{name}/part2.xlsx")
        backwards["_row"] = range(2, len(backwards) + 2)
        resent[name] = backwards
    nightly_publish(warehouse_url, "r2", resent)
    after = current(warehouse_url).loc[several.index]
    assert after["status"].eq("dismissed").all()
    assert after["evidence_hash"].tolist() == several["evidence_hash"].tolist()
    assert after["last_seen_run"].eq("r2").all()


# ---------------------------------------------------------------- decisions keep their history

def _sheet_rows(book) -> pd.DataFrame:
    ws = openpyxl.load_workbook(book)["核实清单"]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    return pd.DataFrame(rows, columns=HEADERS).fillna("").set_index("标识")


def test_a_pending_check_is_carried_over_with_its_note_and_new_flags_say_so(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    first = write_review_workbook(warehouse.connect(url), tmp_path / "r1.xlsx")
    assert set(_sheet_rows(first)["状态"]) == {"新增"}
    car, _ = _car_flag(url)
    decide(first, {car: ("待核实", "下周二入户")})
    import_review(warehouse.connect(url), first, reviewer="吴")
    nightly_publish(url, "r2", frames)
    second = _sheet_rows(write_review_workbook(warehouse.connect(url), tmp_path / "r2.xlsx"))
    assert second.loc[car, ["状态", "决定", "备注"]].tolist() == ["待核实", "待核实", "下周二入户"]
    assert second.loc[car, "上次决定"].startswith("待核实(吴,") and second.loc[car, "上次决定"].endswith(":下周二入户")
    assert set(second.drop(index=car)["状态"]) == {"持续"}
    assert import_review(warehouse.connect(url), tmp_path / "r2.xlsx") == {"unchanged": 1}   # carried over as it was
    assert len(_reviews(url)) == 1


def test_a_flag_opened_again_after_a_dismissal_shows_the_earlier_decision(frames, tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "r1.xlsx")
    car, owns = _car_flag(url)
    decide(book, {car: ("驳回", "车已过户给他人")})
    import_review(warehouse.connect(url), book, reviewer="郑")
    second_car = dict(frames)                                                   # a second car: new evidence
    extra = frames["vehicles"][owns(frames["vehicles"])].head(1).assign(plate="甘A-NEW01", _row=9999)
    second_car["vehicles"] = pd.concat([frames["vehicles"], extra], ignore_index=True)
    nightly_publish(url, "r2", second_car)
    rows = _sheet_rows(write_review_workbook(warehouse.connect(url), tmp_path / "r3.xlsx"))
    assert rows.loc[car, "状态"] == "重新打开" and rows.loc[car, "决定"] == ""
    assert rows.loc[car, "上次决定"].startswith("驳回(郑,") and "车已过户给他人" in rows.loc[car, "上次决定"]
    decide(tmp_path / "r3.xlsx", {car: ("驳回", "车已过户给他人")})               # the same reason, decided again
    assert import_review(warehouse.connect(url), tmp_path / "r3.xlsx") == {"驳回": 1}
    assert current(url).loc[car, "status"] == "dismissed"


def test_the_review_workbook_prints_on_a4_landscape_every_column_on_the_width_a_page_per_village(frames, tmp_path):
    """LibreOffice prints it as a steward would: every page A4 landscape, a new page for each village, every
    column fitted to the page width, the header row repeated on every page."""
    import re
    import subprocess

    from helpers import office

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly_publish(url, "r1", frames)
    book = write_review_workbook(warehouse.connect(url), tmp_path / "review.xlsx")
    ws = openpyxl.load_workbook(book)["核实清单"]
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.print_title_rows == "$1:$1"
    villages = current(url)["village_code"].nunique()
    assert len(ws.row_breaks.brk) == villages - 1
    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)],
                   check=True, timeout=180, capture_output=True)
    pdf = (tmp_path / "review.pdf").read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) >= villages
    assert all(abs(float(w) - 841.9) < 1 and abs(float(h) - 595.3) < 1 for w, h in boxes)   # A4 landscape


def test_review_rows_name_places_and_people_and_a_reconciliation_holds_only_its_scope(county, frames, tmp_path,
                                                                                        warehouse_url):
    from jingzhun import labels
    from jingzhun.policy import ReaderLimits

    names = labels.read_regions(labels.regions_files(county["landing"], None), ReaderLimits())
    raised, skipped = flags(frames, Policy(), pd.Timestamp(AS_OF))
    rules = pd.DataFrame({"rule_code": list(RULES), "evaluated": True, "reason": "", "raised": 0})
    empty = pd.DataFrame()
    warehouse.publish(warehouse.connect(warehouse_url), "r1", empty, empty, frames, raised, rules, None,
                      region_names=names)
    village = raised["village_code"].value_counts().index[0]
    scope = warehouse.Scope(village)
    rows = pd.read_excel(write_review_workbook(warehouse.connect(warehouse_url), tmp_path / "r.xlsx", scope),
                         dtype=str, engine="openpyxl").fillna("")
    by_code = names.set_index("code")["name"]
    assert len(rows) == int(raised["village_code"].eq(village).sum()) > 0
    assert set(rows["村"]) == {by_code[village]} and set(rows["乡镇"]) == {by_code[village[:9] + "000"]}
    assert rows["户主"].ne("").all()                                   # every row names its household's head
    person = rows["身份证号"].ne("")
    assert rows.loc[person, "姓名"].ne("").all()
    assert rows["户号"].ne("").all()
    assert set(rows.loc[rows["户编号"].eq(""), "规则"]) <= {"低保户应纳入", "特困人员应纳入", "应纳入但有村干部"}  # not on the register
