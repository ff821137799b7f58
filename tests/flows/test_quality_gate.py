"""The quality gate inside the nightly flow: a good night, then a night where departments send every kind of
bad data at once. Asserts the quarantine, the blocked sources, the rules not evaluated, the flags left as they
were, and the steward's reports (the Chinese workbook, and the Data Docs in a real headless browser)."""

import os
import shutil
import re
import subprocess
import time
from datetime import datetime, timedelta

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select

from jingzhun.nightly import nightly
from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.readers import read_file

from helpers import AS_OF, office, required_tool, valid_id

pytestmark = [pytest.mark.slow, pytest.mark.sqlite]


def _csv(path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding="utf-8-sig")


def _bad_id(n: int) -> str:
    good = valid_id(f"62042119700101{n:03d}")
    return good[:17] + ("0" if good[17] != "0" else "1")  # wrong check digit


def degrade(landing) -> dict:
    """Tonight's landing: every failure kind the gate knows, one per source."""
    for extra in sorted((landing / "hukou").iterdir())[1:]:  # truncated: one county file of three
        extra.unlink()
    stale = time.mktime((datetime.combine(AS_OF, datetime.min.time()) - timedelta(days=30)).timetuple())
    for f in (landing / "vehicles").iterdir():  # the traffic police sent last month's export again
        os.utime(f, (stale, stale))
    _csv(landing / "students" / "students_extra.csv",  # a file without 学籍状态
         pd.DataFrame({"学生身份证号": [valid_id("62042120150101001")], "姓名": ["学生"]}))
    first = sorted((landing / "social_assistance").iterdir())[0]
    rows, _, _ = read_file(first, SOURCES["social_assistance"])
    dups = rows.head(2).drop(columns=["_file", "_sheet", "_row"])
    _csv(landing / "social_assistance" / "social_assistance_99_resent.csv", dups)  # two assisted persons sent twice
    estate = sum(len(read_file(f, SOURCES["real_estate"])[0]) for f in (landing / "real_estate").iterdir())
    many = int(estate * 0.1) + 1
    _csv(landing / "real_estate" / "bad_ids.csv", pd.DataFrame({   # 10% invalid identity numbers
        "权利人证件号": [_bad_id(n) for n in range(many)], "用途": "住宅", "房屋性质": "商品房", "权属状态": "现势"}))
    _csv(landing / "illness" / "one_bad.csv", pd.DataFrame({       # one invalid number: below the threshold
        "身份证号": [_bad_id(900)], "疾病类别": ["大病"]}))
    return {"duplicated_ids": dups["id_number"].tolist(), "bad_estate_rows": many}


@pytest.fixture(scope="module")
def nights(county, tmp_path_factory):
    base = tmp_path_factory.mktemp("gate")
    landing = base / "landing"
    shutil.copytree(county["landing"], landing)
    url = f"sqlite:///{base / 'wh.sqlite'}"
    kw = dict(warehouse_url=url, as_of=AS_OF, today=AS_OF, work_dir=str(base / "work"))
    good = nightly(landing=str(landing), **kw)
    planted = degrade(landing)
    bad = nightly(landing=str(landing), **kw)
    return {"good": good, "bad": bad, "url": url, "planted": planted, "engine": warehouse.connect(url)}


def test_a_good_night_passes_the_gate_with_warnings_only_for_the_planted_rows(nights):
    good = nights["good"]
    assert {s["status"] for s in good["sources"].values()} == {"loaded"}
    assert good["sources"]["medical_insurance"]["validation"] == "warnings"  # planted bad code values
    assert good["not_evaluated"] == {}


def test_each_source_level_failure_blocks_its_source_with_the_reason(nights):
    sources = nights["bad"]["sources"]
    assert sources["hukou"]["status"] == "blocked" and "行数" in sources["hukou"]["message"]
    assert sources["vehicles"]["status"] == "blocked" and "7 天" in sources["vehicles"]["message"]
    assert sources["real_estate"]["status"] == "blocked" and "无效身份证号" in sources["real_estate"]["message"]
    assert sources["students"]["status"] == "failed" and "enrollment_status" in sources["students"]["message"]
    for name in ("illness", "social_assistance", "medical_insurance", "poverty_register", "deaths"):
        assert sources[name]["status"] == "loaded", (name, sources[name])


def test_indicators_say_what_was_not_evaluated_instead_of_counting_0(nights, tmp_path, capsys):
    """After a night with hukou, vehicles and real estate blocked and students unreadable, the officials' workbook
    takes the population from the last night that had it, says so, and marks directions not evaluated."""
    from jingzhun import cli

    out = tmp_path / "indicators.xlsx"
    assert cli.main(["indicators", "--warehouse", nights["url"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"of run {nights['good']['run_id']}" in printed
    ws = openpyxl.load_workbook(out)["村级指标"]
    subtitle, header = ws["A2"].value, [c.value for c in ws[3]]
    assert f"最近一次运行 {nights['bad']['run_id']} 未能计算人口指标" in subtitle
    assert "本次未评估" in subtitle or "本次未评估,数量沿用此前结果" in subtitle
    rows = list(ws.iter_rows(min_row=4, values_only=True))
    incidence = header.index("贫困发生率")
    assert rows and all(0 <= r[incidence] <= 1 for r in rows)
    assert ws.cell(4, incidence + 1).number_format == "0.00%"
    assert "贫困发生率图" in openpyxl.load_workbook(out).sheetnames
    for j, name in enumerate(header):
        if name and name.startswith("待核实"):
            values = {r[j] for r in rows}
            assert values == {"未评估"} or all(isinstance(v, int) for v in values), (name, values)
            assert (values == {"未评估"}) == (name.removeprefix("待核实").removesuffix("标记") in subtitle.split(
                "本次未评估(来源缺失或被阻断): ")[-1].split(";")[0] if "来源缺失或被阻断): " in subtitle else False)
    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(out)],
                   check=True, timeout=180, capture_output=True)
    pdf = (tmp_path / "indicators.pdf").read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes and all(abs(float(w) - 841.9) < 1 and abs(float(h) - 595.3) < 1 for w, h in boxes)   # A4 landscape


def test_rules_needing_a_blocked_source_are_not_evaluated_and_say_why(nights):
    not_evaluated = nights["bad"]["not_evaluated"]
    assert "vehicles: blocked" in not_evaluated["RM_CAR"]
    assert "real_estate: blocked" in not_evaluated["RM_PROPERTY"]
    assert "hukou: blocked" in not_evaluated["DQ_NOT_IN_HUKOU"]
    assert "students: failed" in not_evaluated["RV_UNENROLLED"]
    # they read hukou through the heads and living members (their SQL says so): a blocked hukou holds them back
    assert "hukou: blocked" in not_evaluated["REVERT_HOUSING"] and "hukou: blocked" in not_evaluated["DQ_INVALID_ID"]
    with nights["engine"].connect() as conn:
        rules = pd.read_sql(select(warehouse.run_rules).where(warehouse.run_rules.c.run_id == nights["bad"]["run_id"]), conn)
    assert not rules.set_index("rule_code").loc["RM_CAR", "evaluated"]


def test_flags_of_blocked_sources_are_neither_raised_nor_resolved(nights):
    with nights["engine"].connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    cars = flags[flags["rule_code"].eq("RM_CAR")]
    assert len(cars) > 0
    assert cars["status"].eq("open").all() and cars["last_seen_run"].eq(nights["good"]["run_id"]).all()


def test_a_blocked_register_keeps_its_last_accepted_snapshot(nights):
    with nights["engine"].connect() as conn:
        hukou = conn.execute(select(func.count()).select_from(warehouse.staging_tables["hukou"])).scalar()
    assert hukou == nights["good"]["sources"]["hukou"]["rows_valid"]


def test_row_level_failures_are_quarantined_with_file_row_reason_and_raw_values(nights):
    with nights["engine"].connect() as conn:
        q = pd.read_sql(select(warehouse.quarantine).where(warehouse.quarantine.c.run_id == nights["bad"]["run_id"]), conn)
    dups = q[q["reason"].str.contains("重复记录")]
    assert set(dups["source"]) == {"social_assistance"} and len(dups) == 2
    assert dups["file"].eq("social_assistance/social_assistance_99_resent.csv").all()
    for pid in nights["planted"]["duplicated_ids"]:
        assert dups["raw"].str.contains(pid).any()
    illness = q[q["source"].eq("illness")]
    assert illness["reason"].str.contains("校验位").sum() == 1
    assert (q["source"].eq("real_estate") & q["file"].eq("real_estate/bad_ids.csv")).sum() == nights["planted"]["bad_estate_rows"]
    assert q[q["source"].eq("medical_insurance")]["reason"].str.contains("insured_status").any()


def test_every_check_is_stored_with_its_counts_and_examples(nights):
    with nights["engine"].connect() as conn:
        r = pd.read_sql(select(warehouse.validation_results).where(
            warehouse.validation_results.c.run_id == nights["bad"]["run_id"]), conn)
    by = r.set_index(["source", "expectation", "column"])
    collapsed = by.loc[("hukou", "expect_row_count_not_collapsed", "")]
    assert not collapsed["success"] and collapsed["severity"] == "source"
    assert not by.loc[("students", "expect_column_to_exist", "enrollment_status"), "success"]
    codes = by.loc[("medical_insurance", "expect_codes_in_vocabulary", "insured_status")]
    assert not codes["success"] and codes["unexpected_count"] == 3 and "已参加" in codes["examples"]
    invalid = by.loc[("illness", "expect_column_values_to_be_valid_resident_id", "id_number")]
    assert invalid["success"] and invalid["unexpected_count"] == 1
    assert set(r["source"]) == set(SOURCES)


def test_the_validation_workbook_tells_the_steward_in_chinese(nights):
    path = nights["bad"]["validation_workbook"]
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames[0] == "概览" and SOURCES["hukou"].title in wb.sheetnames
    overview = [[c for c in row if c is not None] for row in wb["概览"].iter_rows(values_only=True)]
    hukou = next(row for row in overview if row and row[0] == SOURCES["hukou"].title)
    assert hukou[1] == "公安局(户政)" and "已阻断" in hukou[2] and hukou[3] == "未通过来源级检查"
    assert "请联系公安局(户政)" in hukou[-1]
    sheet = [[c for c in row if c is not None] for row in wb[SOURCES["social_assistance"].title].iter_rows(values_only=True)]
    text = "\n".join(" | ".join(map(str, row)) for row in sheet)
    assert "每人只有一行" in text and "social_assistance_99_resent.csv 第2行: 62*************" in text
    rows = "\n".join(" | ".join(map(str, r)) for r in wb[SOURCES["social_assistance"].title[:26] + "·隔离行"].iter_rows(
        values_only=True))
    assert "重复记录" in rows and "social_assistance/social_assistance_99_resent.csv" in rows
    assert "检查项" in text and "行号" in text
    assert "民政局" in text and "同一人有多行:请民政局核对并删除重复记录" in text     # what to do, whom to contact
    for name in wb.sheetnames:                      # every header a steward reads is Chinese, not a column name
        header = [c for c in next(wb[name].iter_rows(min_row=2, max_row=2, values_only=True)) if c]
        assert all(re.search(r"[\u4e00-\u9fff]", h) for h in header), (name, header)
    for row in overview[2:]:                        # the overview counts what each source's sheets list
        title, quarantined, not_data = row[0], row[7], row[8]
        listed = f"{title[:26]}·隔离行"
        if quarantined or not_data:
            rows = list(wb[listed].iter_rows(min_row=3, values_only=True))
            assert sum(r[2] == "隔离" for r in rows) == quarantined and sum(r[2] == "非数据行" for r in rows) == not_data
        else:
            assert listed not in wb.sheetnames
    shares = [c for c in wb[SOURCES["medical_insurance"].title].iter_rows(min_row=3, values_only=True)]
    assert all(r[6] is None or 0 <= r[6] <= 1 for r in shares)       # a share, shown as 0.00%


def test_the_validation_workbook_prints_on_a4_landscape(nights, tmp_path):
    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                    nights["bad"]["validation_workbook"]], check=True, timeout=180, capture_output=True)
    pdf = next(tmp_path.glob("*.pdf")).read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    sheets = len(openpyxl.load_workbook(nights["bad"]["validation_workbook"], read_only=True).sheetnames)
    assert pages >= sheets
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert all(abs(float(w) - 841.9) < 1 and abs(float(h) - 595.3) < 1 for w, h in boxes)


def _chromium() -> str:
    return required_tool("chromium", "chromium-browser", package="chromium")


def test_the_data_docs_render_in_a_headless_browser_without_internet(nights, tmp_path):
    index = nights["bad"]["data_docs"]
    html = open(index, encoding="utf-8").read()
    assert "https://code.jquery.com" not in html and "static/vendor/jquery.min.js" in html
    dom = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", f"file://{index}"],
        check=True, timeout=120, capture_output=True, text=True).stdout
    # bootstrap-table (vendored) turned the page's data into rows: one per source validated that night
    assert dom.count("<tr") > 10 and "social_assistance" in dom and "hukou" in dom
    assert "bootstrap-table" in dom
    assert nights["bad"]["run_id"] in dom and "__none__" not in dom          # each validation named by its run
    page = next(Path(index).parent.glob("validations/hukou/**/*.html"))
    assert "户籍人口 (hukou)" in page.read_text(encoding="utf-8")             # the data asset is the register


@pytest.mark.parametrize("today, quarantined", [(AS_OF, True), (AS_OF + timedelta(days=30), False)])
def test_a_date_after_the_runs_today_is_quarantined_whatever_the_wall_clock_says(tmp_path, today, quarantined):
    """The run's today is a parameter: a death dated five days after it is implausible even when the machine's
    calendar has long passed that day (and plausible for a run whose today lies after it)."""
    landing = tmp_path / "landing"
    later = AS_OF + timedelta(days=5)
    _csv(landing / "deaths" / "deaths.csv", pd.DataFrame({
        "身份证号": [valid_id("62042119500101001"), valid_id("62042119500101002")],
        "死亡日期": [str(AS_OF - timedelta(days=3)), str(later)]}))
    done = nightly(landing=str(landing), warehouse_url=f"sqlite:///{tmp_path / 'wh.sqlite'}", as_of=AS_OF,
                   today=today, work_dir=str(tmp_path / "work"))
    run_dir = Path(done["run_dir"])
    reasons = pd.read_parquet(run_dir / "staged" / "deaths.quarantine.parquet")["reason"]
    assert reasons.str.contains("日期不合理").sum() == (1 if quarantined else 0)
    with warehouse.connect(done["warehouse"]).connect() as conn:
        stored = conn.execute(select(warehouse.runs.c.parameters)).scalar_one()
    assert f'"today": "{today}"' in stored


def test_a_run_without_a_today_takes_the_real_day_in_the_policys_time_zone(tmp_path):
    """What the demo and every production night do: no today given (a run without it once failed before any work)."""
    from jingzhun import clock

    landing = tmp_path / "landing"
    _csv(landing / "deaths" / "deaths.csv", pd.DataFrame({"身份证号": [valid_id("62042119500101001")],
                                                          "死亡日期": [str(AS_OF - timedelta(days=3))]}))
    before = clock.today()
    done = nightly(landing=str(landing), warehouse_url=f"sqlite:///{tmp_path / 'wh.sqlite'}", as_of=AS_OF,
                   work_dir=str(tmp_path / "work"))
    with warehouse.connect(done["warehouse"]).connect() as conn:
        stored = conn.execute(select(warehouse.runs.c.parameters)).scalar_one()
    assert f'"today": "{before}"' in stored or f'"today": "{clock.today()}"' in stored
