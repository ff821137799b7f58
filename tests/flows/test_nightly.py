import hashlib
import shutil

import pandas as pd
import pytest
from sqlalchemy import func, select

from jingzhun.nightly import nightly
from jingzhun import warehouse
from jingzhun.synth import EXPECTED_QUARANTINE

from helpers import AS_OF

pytestmark = pytest.mark.slow


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def landing(county, tmp_path):
    target = tmp_path / "landing"
    shutil.copytree(county["landing"], target)
    return target


def run(landing, tmp_path, url=None, **kw):
    url = url or f"sqlite:///{tmp_path / 'wh.sqlite'}"
    return nightly(landing=str(landing), warehouse_url=url, as_of=AS_OF, today=AS_OF, work_dir=str(tmp_path / "work"), **kw), url


def test_nightly_loads_every_source_and_records_every_file(landing, tmp_path, county, warehouse_url):
    before = {p: sha(p) for p in landing.rglob("*.*")}
    result, url = run(landing, tmp_path, warehouse_url)
    assert result["status"] == "published"
    assert {s["status"] for s in result["sources"].values()} == {"loaded"}
    assert {p: sha(p) for p in landing.rglob("*.*")} == before  # files are only read

    engine = warehouse.connect(url)
    with engine.connect() as conn:
        record = conn.execute(select(warehouse.runs)).mappings().one()
        files = pd.read_sql(select(warehouse.run_files), conn)
        quarantined = pd.read_sql(select(warehouse.quarantine), conn)
        register_rows = conn.execute(select(func.count()).select_from(warehouse.staging_tables["poverty_register"])).scalar()
    assert record["status"] == "published" and str(record["as_of"]) == AS_OF.isoformat()
    assert len(files) == len(before)
    for _, f in files.iterrows():
        assert f["sha256"] == sha(landing / f["file"]) and f["size"] == (landing / f["file"]).stat().st_size
    assert register_rows == result["sources"]["poverty_register"]["rows_valid"]
    read = sum(s["rows_read"] for s in result["sources"].values())
    valid = sum(s["rows_valid"] for s in result["sources"].values())
    staged_out = quarantined[~quarantined["reason"].str.contains("totals row|blank row")]
    assert read == valid + len(staged_out)  # every data row is either loaded or quarantined
    planted = pd.read_csv(county["out"] / "ground_truth" / EXPECTED_QUARANTINE, dtype=str)
    for value in planted["value"]:
        assert quarantined["raw"].str.contains(value, regex=False).any()
    assert quarantined["reason"].str.contains("totals row").any()  # the register's 合计 rows, with a reason


def test_a_broken_source_is_recorded_and_the_others_still_load(landing, tmp_path):
    estate = next((landing / "real_estate").glob("*.xlsx"))
    estate.write_bytes(estate.read_bytes()[:300])
    cadres = next((landing / "cadres").glob("*.csv"))
    text = cadres.read_text(encoding="utf-8-sig").splitlines()
    cadres.write_text("\n".join(line.rsplit(",", 2)[0] for line in text), encoding="utf-8")  # drops 任职状态
    shutil.rmtree(landing / "deaths")
    regions = landing / "regions" / "区划名称.csv"
    regions.write_text(regions.read_text(encoding="utf-8-sig") + "6204211002X1,某村\n", encoding="utf-8")

    result, url = run(landing, tmp_path)
    assert "regions/区划名称.csv" in result["regions"]["message"] and "某村" not in result["regions"]["message"]
    sources = result["sources"]
    assert sources["real_estate"]["status"] == "failed" and estate.name in sources["real_estate"]["message"]
    assert sources["cadres"]["status"] == "failed" and "term_status" in sources["cadres"]["message"]
    assert sources["deaths"]["status"] == "missing"
    assert all(s["status"] == "loaded" for name, s in sources.items() if name not in {"real_estate", "cadres", "deaths"})
    with warehouse.connect(url).connect() as conn:
        files = pd.read_sql(select(warehouse.run_files), conn)
    assert files.loc[files["source"] == "real_estate", "error"].str.contains("not a readable Excel workbook").all()
    refused = files[files["source"].eq("regions")]      # a names reference that cannot be used is recorded too
    assert len(refused) == 1 and "区划代码应为6、9或12位数字" in refused["error"].iloc[0] and refused["sha256"].iloc[0]


def test_dry_run_publishes_no_registers(landing, tmp_path):
    result, url = run(landing, tmp_path, dry_run=True)
    assert result["status"] == "dry_run"
    with warehouse.connect(url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(warehouse.staging_tables["hukou"])).scalar() == 0
        assert conn.execute(select(warehouse.runs.c.status)).scalar() == "dry_run"


def test_flags_are_published_and_a_second_identical_run_changes_nothing(landing, tmp_path, county, warehouse_url):
    first, url = run(landing, tmp_path, warehouse_url)
    engine = warehouse.connect(url)
    with engine.connect() as conn:
        after_first = pd.read_sql(select(warehouse.flags), conn).sort_values("flag_key").reset_index(drop=True)
        rules = pd.read_sql(select(warehouse.run_rules), conn)
    expected = pd.read_csv(county["out"] / "ground_truth" / "expected_flags.csv", dtype=str)
    assert len(after_first) == len(expected) == first["flags_raised"]
    assert set(after_first["status"]) == {"open"} and set(after_first["first_seen_run"]) == {first["run_id"]}
    assert rules["evaluated"].all() and len(rules) == 21

    second, _ = run(landing, tmp_path, warehouse_url)
    with engine.connect() as conn:
        after_second = pd.read_sql(select(warehouse.flags), conn).sort_values("flag_key").reset_index(drop=True)
    same = ["flag_key", "rule_code", "household_id", "hukou_household_id", "id_number", "evidence_hash", "status",
            "first_seen_run"]
    pd.testing.assert_frame_equal(after_first[same], after_second[same])
    assert set(after_second["last_seen_run"]) == {second["run_id"]}
    with engine.connect() as conn:
        villages = pd.read_sql(select(warehouse.village_indicators), conn)
    assert set(villages["run_id"]) == {first["run_id"], second["run_id"]}
    assert villages["register_households"].gt(0).all() and villages["poverty_incidence"].between(0, 1).all()


def test_missing_source_resolves_nothing_and_a_fixed_case_is_resolved(landing, tmp_path):
    first, url = run(landing, tmp_path)
    engine = warehouse.connect(url)
    shutil.rmtree(landing / "vehicles")          # RM_CAR cannot be evaluated tonight
    with engine.connect() as conn:
        uninsured = pd.read_sql(select(warehouse.flags).where(warehouse.flags.c.rule_code == "REFER_INSURANCE"), conn)
    fix = landing / "medical_insurance" / "late_enrolments.csv"  # the health department enrolled them
    fix.write_text("身份证号,参保年度,参保状态\n" + "".join(f"{n},{AS_OF.year},参保\n" for n in uninsured["id_number"]),
                   encoding="utf-8")
    second, _ = run(landing, tmp_path)
    assert "RM_CAR" in second["not_evaluated"] and "vehicles" in second["not_evaluated"]["RM_CAR"]
    with engine.connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
        rules = pd.read_sql(select(warehouse.run_rules).where(warehouse.run_rules.c.run_id == second["run_id"]), conn)
    car = flags[flags["rule_code"].isin(["RM_CAR", "RV_CAR_ACQUIRED"])]
    assert len(car) and set(car["status"]) == {"open"} and set(car["last_seen_run"]) == {first["run_id"]}
    assert not rules.set_index("rule_code").loc["RM_CAR", "evaluated"]
    fixed = flags[flags["rule_code"].eq("REFER_INSURANCE")]
    assert len(fixed) == len(uninsured) > 0
    assert set(fixed["status"]) == {"resolved"} and set(fixed["resolved_run"]) == {second["run_id"]}
    others = flags[~flags["rule_code"].isin(["RM_CAR", "RV_CAR_ACQUIRED", "REFER_INSURANCE"])]
    assert set(others["status"]) == {"open"} and set(others["last_seen_run"]) == {second["run_id"]}


def test_two_nights_through_the_command_line_are_quiet_and_count_what_they_did(landing, tmp_path):
    """As a person runs it (its own process and console): no library warning (none repeated per task), one
    progress line per stage and none per task; the summary counts the flags a night raised for the first time,
    raised again, opened again and resolved, and those awaiting a decision; run ids sort by start time."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "jingzhun"), "run", "--landing", str(landing),
               "--warehouse", f"sqlite:///{tmp_path / 'wh.sqlite'}", "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat()]
    env = {**os.environ, "JINGZHUN_WORK": str(tmp_path / "work")}
    nights = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=600) for _ in range(2)]
    for night in nights:
        assert night.returncode == 0, night.stderr[-2000:]
        assert "WARNING" not in night.stderr, [line for line in night.stderr.splitlines() if "WARNING" in line][:3]
        assert "Task run" not in night.stderr                                   # not a line per task and source...
        for stage in ("读取 (read)", "规范化 (normalise)", "校验 (validate)", "比对 (cross-match)", "报告 (reports)",
                      "入库 (load)"):
            assert night.stderr.count(f" - {stage}: ") == 1, stage              # ...but one per stage
    first, second = (night.stdout for night in nights)
    raised = int(first.split("flags raised: ")[1].split()[0])
    assert f"flags: {raised} new (新增), 0 still raised (持续), 0 reopened (重新打开), 0 resolved (解除); " \
           f"{raised} awaiting a decision" in first
    assert f"flags: 0 new (新增), {raised} still raised (持续), 0 reopened" in second
    assert first.rstrip().splitlines()[-3] == "下一步 (next):" and "jingzhun serve --warehouse sqlite:///" in first
    ids = [text.split("run ")[1].split(":")[0] for text in (first, second)]
    assert ids == sorted(ids) and ids[0] != ids[1]
