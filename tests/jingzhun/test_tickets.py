"""Data-problem tickets (jingzhun/tickets.py) on both backends: migration 0010 up and down, the lifecycle with its
audit rows, who reads and writes, another county's ticket answering as an unknown one, typed words refused with a
reason and never cut, and the words a run pre-fills (counts per reason, files and rows, no value)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from jingzhun import run_report, tickets, warehouse
from jingzhun.signoff.access import Actor, Unknown
from jingzhun.signoff.stages import Role

from helpers import AS_OF, valid_id

STEWARD = Actor(1, "guanli", Role.steward, "620421")
OTHER = Actor(2, "guanli_2", Role.steward, "620422")
COUNTY = Actor(3, "xian", Role.county, "620421")
AUDITOR = Actor(4, "shenji", Role.auditor, "")
VILLAGE = Actor(5, "cun", Role.village, "620421100201")
NUMBER = valid_id("62042119700101123")
NAME = "王小明"


def _run(engine, run_id: str, region: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(warehouse.runs).values(run_id=run_id, started_at=warehouse.now(), status="published",
                                                   as_of=AS_OF, region=region, sources="{}"))


def _open(engine, actor=STEWARD, **kwargs) -> int:
    with engine.begin() as conn:
        return tickets.open_ticket(conn, actor, kwargs.pop("source", "hukou"),
                                   kwargs.pop("subject", "户籍人口 hukou_01.csv 第 12 行 身份证号校验位错误"), **kwargs)


def _audited(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(select(warehouse.audit_log.c.action).where(warehouse.audit_log.c.object_type == "ticket")
                            .order_by(warehouse.audit_log.c.audit_id)).scalars().all()


def test_migration_0010_adds_the_tickets_table_and_takes_it_away(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _open(engine)
    config = Config()
    config.set_main_option("script_location", str(warehouse.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    assert "tickets" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), warehouse.metadata) == []
        assert conn.execute(select(func.count()).select_from(warehouse.tickets)).scalar_one() == 0
    assert _open(engine) == 1


def test_a_ticket_is_opened_answered_and_closed_each_step_audited(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _run(engine, "r1", "620421")
    ticket_id = _open(engine, run_id="r1", origin="10.0.0.7")
    with engine.begin() as conn:
        got = tickets.ticket(conn, STEWARD, ticket_id)
        assert (got["status"], got["department"], got["area"], got["run_id"]) == ("open", "公安局(户政)", "620421", "r1")
        tickets.answer_ticket(conn, STEWARD, ticket_id, "已更正,今晚重新报送", answered_by="户政科 经办人")
    with pytest.raises(tickets.Changed):
        with engine.begin() as conn:
            tickets.answer_ticket(conn, STEWARD, ticket_id, "再答一次")
    for reader in (COUNTY, AUDITOR):
        with pytest.raises(tickets.NotAllowed):
            with engine.begin() as conn:
                tickets.close_ticket(conn, reader, ticket_id)
    with engine.begin() as conn:
        tickets.close_ticket(conn, STEWARD, ticket_id)
        got = tickets.ticket(conn, COUNTY, ticket_id)
    assert (got["status"], got["answer"], got["answered_by"], got["closed_by"]) == (
        "closed", "已更正,今晚重新报送", "户政科 经办人", "guanli")
    assert [h["action"] for h in got["history"]] == ["ticket_opened", "ticket_answered", "ticket_closed"]
    with pytest.raises(tickets.Changed):
        with engine.begin() as conn:
            tickets.close_ticket(conn, STEWARD, ticket_id)
    assert _audited(engine) == ["ticket_opened", "ticket_answered", "ticket_closed"]
    unanswered = _open(engine, source="vehicles", subject="机动车登记 第 3 行 车辆类型无法识别")
    with engine.begin() as conn:
        tickets.close_ticket(conn, STEWARD, unanswered)   # withdrawn without an answer
        assert tickets.counts(conn, AUDITOR).set_index("department").to_dict("index") == {
            "公安局(户政)": {"open": 0, "answered": 0, "closed": 1},
            "公安局交警大队(车管所)": {"open": 0, "answered": 0, "closed": 1}}


def test_another_county_s_ticket_answers_as_one_that_does_not_exist(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    theirs = _open(engine, actor=OTHER)
    ours = _open(engine)
    for reader in (STEWARD, COUNTY):
        with engine.begin() as conn:
            assert tickets.listing(conn, reader)["ticket_id"].tolist() == [ours]
            assert tickets.counts(conn, reader)["open"].sum() == 1
            with pytest.raises(Unknown) as outside:
                tickets.ticket(conn, reader, theirs)
            with pytest.raises(Unknown) as unknown:
                tickets.ticket(conn, reader, 9999)
            assert str(outside.value) == str(unknown.value)
    with pytest.raises(Unknown):
        with engine.begin() as conn:
            tickets.answer_ticket(conn, STEWARD, theirs, "答复")
    with engine.begin() as conn:
        assert set(tickets.listing(conn, AUDITOR)["ticket_id"]) == {ours, theirs}
        assert tickets.listing(conn, VILLAGE).empty and tickets.of_run(conn, VILLAGE, "r1") == {}
        with pytest.raises(Unknown):
            tickets.ticket(conn, VILLAGE, ours)
    _run(engine, "r2", "620422")   # another county's run: not one to open a ticket from
    with pytest.raises(Unknown):
        _open(engine, run_id="r2")
    with pytest.raises(tickets.NotAllowed):
        _open(engine, actor=COUNTY)


def test_a_ticket_s_area_is_its_run_s_part_of_the_steward_s_area(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    province = Actor(6, "sheng", Role.steward, "62")
    _run(engine, "county_run", "620421")
    _run(engine, "whole_run", None)
    from_run = _open(engine, actor=province, run_id="county_run")
    whole = _open(engine, actor=province, run_id="whole_run")
    named = _open(engine, actor=province, area="620422")
    with engine.connect() as conn:
        assert tickets.listing(conn, COUNTY)["ticket_id"].tolist() == [from_run]   # the county's run's, only
        assert tickets.ticket(conn, province, whole)["area"] == "62"
        assert tickets.ticket(conn, province, named)["area"] == "620422"
        logged = conn.execute(select(warehouse.audit_log.c.area).where(
            warehouse.audit_log.c.object_key == str(from_run))).scalars().all()
    assert logged == ["620421"]
    for outside in ("63", "6204x", "620421100201999"):
        with pytest.raises(tickets.Malformed, match="辖区"):
            _open(engine, area=outside)


@pytest.mark.parametrize("typed, refused", [
    (f"户籍人口 第 12 行 身份证号 {NUMBER} 校验位错误", "身份证号"),
    (f"第 12 行 {NUMBER[:6]} {NUMBER[6:14]}-{NUMBER[14:]}", "身份证号"),      # spaced and dashed
    (f"户籍人口 第 12 行 ID{NUMBER} 重复", "身份证号"),                         # a Latin word before it
    (f"户籍人口 第 12 行 {NUMBER}abc", "身份证号"),                             # letters after it
    (f"第 12 行 ID {NUMBER[:6]}-{NUMBER[6:]}x", "身份证号"),                    # both, dashed
    ("\u200b\u2060 \u3000", "请填写"),                                       # nothing but invisible characters
    ("行" * (tickets.SUBJECT_CHARS + 1), "过长"),                             # refused, not cut
])
def test_typed_words_are_refused_with_a_reason_never_cut(warehouse_url, typed, refused):
    engine = warehouse.connect(warehouse_url)
    with pytest.raises(tickets.Malformed, match=refused):
        _open(engine, subject=typed)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(warehouse.tickets)).scalar_one() == 0
    assert _audited(engine) == []


def test_a_register_household_number_next_to_its_letter_is_no_identity_number(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    ticket_id = _open(engine, subject="建档立卡户 P62042110020190197 户主姓名列为空")
    with engine.connect() as conn:
        assert "P62042110020190197" in tickets.ticket(conn, STEWARD, ticket_id)["subject"]


def test_cleaning_keeps_the_lines_and_refuses_unknown_places(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    ticket_id = _open(engine, subject="  户籍人口\u200b 第 12 行\r\n\r\n第 13 行 出生日期 \u2066缺失\u2069  ")
    with engine.connect() as conn:
        assert tickets.ticket(conn, STEWARD, ticket_id)["subject"] == "户籍人口 第 12 行\n\n第 13 行 出生日期 缺失"
    for kwargs, refused in (({"source": "nothing"}, "数据源"), ({"department": "某某公司"}, "部门")):
        with pytest.raises(tickets.Malformed, match=refused):
            _open(engine, **kwargs)


def test_a_run_s_problems_are_counted_per_reason_with_rows_never_values(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _run(engine, "r1", None)
    raw = json.dumps({"id_number": NUMBER, "name": NAME}, ensure_ascii=False)
    rows = [("hukou", "hukou/hukou_01.csv", n, "身份证号校验位错误 (bad ISO 7064 check digit)") for n in (112, 103, 140, 107, 109, 130)]
    rows += [("hukou", "hukou/hukou_02.csv", 5, "必填字段为空 (required value missing): name"),
             ("hukou", "hukou/hukou_02.csv", 6, "合计行 (totals row)"),        # not data: no problem of theirs
             ("deaths", "deaths/d.csv", 2, "合计行 (totals row)")]
    checks = pd.DataFrame([{"source": "vehicles", "expectation": "expect_files_fresh", "column": "_file_age_days",
                            "description": "文件修改日期距核对日期 2026-11-22 不超过 7 天", "severity": "source",
                            "success": False, "observed_value": "30.0", "examples": json.dumps([{"value": NUMBER}]),
                            "outcome": "未通过: 来源被阻断 (failed: source blocked)"}])
    with engine.begin() as conn:
        conn.execute(insert(warehouse.quarantine), [{"run_id": "r1", "source": s, "file": f, "row": n, "reason": why,
                                                     "raw": raw} for s, f, n, why in rows])
        warehouse.bulk_insert(conn, warehouse.validation_results, checks.assign(run_id="r1"))
        said = run_report.problems(conn, "r1", AS_OF)
    assert set(said) == {"hukou", "vehicles"}
    assert said["hukou"].startswith("户籍人口:共 7 行未能使用(已隔离)(运行 r1,核对日期 2026-11-22)。\n")
    assert "1. 身份证号校验位错误:6 行,见 hukou/hukou_01.csv 第 103、107、109、112、130 行等" in said["hukou"]
    assert "2. 必填字段为空(“姓名”列):1 行,见 hukou/hukou_02.csv 第 5 行" in said["hukou"]
    assert said["vehicles"].startswith("机动车登记:来源级检查未通过,本次未使用该来源的数据(运行 r1")
    assert "- 文件修改日期距核对日期 2026-11-22 不超过 7 天" in said["vehicles"]
    for text in said.values():
        assert NUMBER not in text and NAME not in text and "totals" not in text and "合计行" not in text
        assert tickets.clean(text, tickets.SUBJECT_CHARS, "问题说明") == text   # a ticket takes them as they are
