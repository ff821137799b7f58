"""Dates people read are local: stored in UTC, shown in the policy's time zone (Asia/Shanghai by default). A
decision taken in Beijing at 07:30 reads that day, not the day before."""

from __future__ import annotations

from datetime import date, datetime, timezone

import openpyxl
import pandas as pd
from sqlalchemy import insert

from jingzhun import clock, warehouse
from jingzhun.exports import flags_for_export
from jingzhun.policy import Policy, PolicyError, load_policy
from jingzhun.review import HEADERS, write_review_workbook

from helpers import flag, raised

BEIJING_MORNING = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)  # 2026-12-01 07:30 in Beijing


def test_a_decision_taken_before_eight_in_beijing_reads_that_day(warehouse_url, tmp_path):
    engine = warehouse.connect(warehouse_url)
    flags = raised(flag())
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [1]})
    warehouse.publish(engine, "r1", pd.DataFrame(), pd.DataFrame(), {}, flags, rules, None)
    with engine.begin() as conn:
        conn.execute(insert(warehouse.reviews).values(
            flag_key=flags["flag_key"].iloc[0], decision="待核实", note="下周入户", reviewer="张三",
            decided_at=BEIJING_MORNING, evidence_hash=flags["evidence_hash"].iloc[0], workbook="w.xlsx",
            workbook_sha256="x"))
    book = write_review_workbook(engine, tmp_path / "review.xlsx")
    ws = openpyxl.load_workbook(book)["核实清单"]
    assert "2026-12-01" in ws.cell(2, HEADERS.index("上次决定") + 1).value
    assert flags_for_export(engine, "all")["decided_at"].tolist() == ["2026-12-01 07:30"]


def test_the_clock_reads_the_policys_time_zone():
    assert clock.local(BEIJING_MORNING).date() == date(2026, 12, 1)
    assert clock.local(BEIJING_MORNING, "Europe/London").date() == date(2026, 11, 30)
    assert clock.local_times(pd.Series([BEIJING_MORNING.replace(tzinfo=None)])).dt.day.tolist() == [1]  # naive is UTC
    assert Policy().time_zone == "Asia/Shanghai"


def test_an_unknown_time_zone_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("time_zone: Asia/Beijing\n", encoding="utf-8")
    try:
        load_policy(path)
    except PolicyError as exc:
        assert "time_zone" in str(exc) and "Asia/Beijing" in str(exc)
    else:
        raise AssertionError("an unknown time zone was accepted")
