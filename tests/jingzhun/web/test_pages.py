"""The village indicators, a run's validation, the data-problem tickets and the audit log's pages, against the real
server on both backends: each person sees their area only; the chart's threshold is the policy's; 未评估 where a
direction was not evaluated; the blocked sources apart from the warned; a ticket opened from the run's pre-filled
words, answered and closed, audited; a planted name and identity number reach no page, no ticket and no log; the
audit log's pages follow each other to its first row."""

from __future__ import annotations

import html
import json
import re

import httpx
import pandas as pd
from sqlalchemy import insert, select

from jingzhun import audit, warehouse
from jingzhun.catalogue import RULES
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role
from jingzhun.web import routes_admin

from helpers import AS_OF, valid_id
from workbench import nightly_indicators

PLANTED_ID = valid_id("62042119700101123")
PLANTED_NAME = "王小明"


def browser_like(bench, name: str) -> httpx.Client:
    cookie, csrf = bench.session(name)
    c = httpx.Client(base_url=bench.base, headers={"Cookie": f"jz_session={cookie}"}, timeout=60)
    c.csrf = csrf
    return c


def villages_shown(page: str) -> list[str]:
    return re.findall(r'<tr data-village="(\d{12})">', page)


def test_indicators_show_my_area_with_the_policy_s_threshold_and_what_was_not_evaluated(workbench, frames):
    bench = workbench
    published = nightly_indicators(bench.engine, frames)
    codes = sorted(published["village_code"])
    exits = [c for c, r in RULES.items() if r.direction == "exit"]
    with bench.engine.begin() as conn:   # tonight's run could not evaluate the exit rules
        conn.execute(insert(warehouse.run_rules), [{"run_id": "n1", "rule_code": c, "evaluated": False,
                                                    "reason": "poverty_register: blocked", "raised": 0} for c in exits])
    pages = {name: browser_like(bench, name).get("/indicators").text
             for name in ("cun", "cun_out", "xiang", "xiang_out", "xian", "shenji_out")}
    assert villages_shown(pages["cun"]) == [bench.village]
    assert bench.village not in villages_shown(pages["cun_out"])
    assert villages_shown(pages["xiang"]) == [c for c in codes if c.startswith(bench.village[:9])]
    assert villages_shown(pages["xian"]) == codes
    for outside in ("xiang_out", "shenji_out"):
        assert villages_shown(pages[outside]) == [] and "没有村级指标" in pages[outside]
    page = pages["xian"]
    assert page.count('<svg class="chart"') == published["township_code"].nunique()
    assert page.count('<rect class="bar ') == len(codes) and 'class="threshold"' in page
    assert "退出标准 3.0%" in page and "未评估" in page
    assert len(re.findall(r'class="n not-evaluated">未评估<', page)) == len(codes) + published["township_code"].nunique()
    assert " style=" not in page and "<script>" not in page.replace('<script src="/static/print.js" defer></script>', "")

    policy = bench.app.state.policy   # the line is the policy's threshold, not a number of the page's
    bench.app.state.policy = policy.model_copy(update={"village_exit_incidence": 0.12})
    try:
        raised = browser_like(bench, "xian").get("/indicators").text
    finally:
        bench.app.state.policy = policy
    assert "退出标准 12.0%" in raised and "退出标准 3.0%" not in raised
    below = (published["unexited_persons"] / published["hukou_persons"]).lt(0.12).sum()
    assert raised.count('<rect class="bar below"') == below


def plant_run(bench) -> None:
    """A run of the seeded county: vehicles blocked (its files a month old), hukou with rows set aside; the planted
    person's name and number in the quarantined cells, the checks' examples and an observed value."""
    cells = json.dumps({"id_number": PLANTED_ID, "name": PLANTED_NAME}, ensure_ascii=False)
    examples = json.dumps([{"file": "hukou/hukou_01.csv", "row": 7, "value": PLANTED_ID}], ensure_ascii=False)
    summary = {"vehicles": {"status": "blocked", "validation": "blocked", "files": 1, "rows_read": 10},
               "hukou": {"status": "loaded", "validation": "warnings", "files": 1, "rows_read": 100},
               "deaths": {"status": "loaded", "validation": "passed", "files": 1, "rows_read": 5}}
    checks = pd.DataFrame([
        {"source": "vehicles", "expectation": "expect_files_fresh", "column": "_file_age_days", "severity": "source",
         "description": "文件修改日期距核对日期不超过 7 天", "success": False, "observed_value": "30.0",
         "examples": "[]", "outcome": "未通过: 来源被阻断 (failed: source blocked)"},
        {"source": "hukou", "expectation": "expect_column_values_to_be_valid_resident_id", "column": "id_number",
         "severity": "row", "description": "“公民身份号码”列: 无效身份证号不超过 5%", "success": False,
         "element_count": 100, "unexpected_count": 1, "unexpected_percent": 1.0, "observed_value": PLANTED_NAME,
         "examples": examples, "outcome": "未通过: 相关行已隔离 (failed: rows quarantined)"},
        {"source": "deaths", "expectation": "expect_column_present", "column": "id_number", "severity": "source",
         "description": "必填列“身份证号”存在", "success": True, "observed_value": "", "examples": "[]",
         "outcome": "通过 (passed)"}])
    with bench.engine.begin() as conn:
        conn.execute(insert(warehouse.runs).values(run_id="r9", started_at=warehouse.now(), status="published",
                                                   as_of=AS_OF, region=bench.village[:6], sources=json.dumps(summary)))
        conn.execute(insert(warehouse.quarantine), [
            {"run_id": "r9", "source": "hukou", "file": "hukou/hukou_01.csv", "row": n, "raw": cells,
             "reason": "身份证号校验位错误 (bad ISO 7064 check digit)"} for n in (7, 12)])
        warehouse.bulk_insert(conn, warehouse.validation_results, checks.assign(run_id="r9"))


def test_a_run_s_checks_and_its_tickets_name_rows_and_columns_never_a_value(workbench):
    bench = workbench
    plant_run(bench)
    steward, county = browser_like(bench, "guanli"), browser_like(bench, "xian")
    run_page = steward.get("/runs/r9").text
    blocked = run_page.split('id="validation-blocked"')[1].split("</section>")[0]
    warned = run_page.split('id="validation-warned"')[1].split("</section>")[0]
    assert 'id="checks-vehicles"' in blocked and 'id="checks-hukou"' not in blocked
    assert 'id="checks-hukou"' in warned and "公安局(户政)" in warned and "1.00%" in warned
    assert "最旧文件早于核对日期 30 天" in blocked and "(非数值,不予显示)" in warned
    assert 'id="checks-deaths" data-state="passed"' in run_page
    assert "Data Docs" not in run_page and "data_docs" not in run_page    # not served: not linked

    words = html.unescape(re.search(r'id="problem-hukou".*?<textarea[^>]*>(.*?)</textarea>', run_page, re.S).group(1))
    assert "共 2 行未能使用" in words and "hukou/hukou_01.csv 第 7、12 行" in words
    opened = steward.post("/tickets", data={"csrf_token": steward.csrf, "run_id": "r9", "source": "hukou",
                                            "subject": words})
    assert opened.status_code == 303
    ticket_url = opened.headers["location"].split("?")[0]
    refused = steward.post("/tickets", data={"csrf_token": steward.csrf, "source": "hukou",
                                             "subject": f"第 7 行 {PLANTED_ID[:6]} {PLANTED_ID[6:]}"})
    assert refused.status_code == 422 and "不能写身份证号" in refused.text
    assert "第 7 行" in refused.text                                        # what was typed comes back
    too_long = steward.post(ticket_url + "/answer", data={"csrf_token": steward.csrf, "answer": "改" * 2001})
    assert too_long.status_code == 422 and "过长" in too_long.text
    assert county.post(ticket_url + "/answer", data={"csrf_token": county.csrf, "answer": "x"}).status_code == 403
    assert steward.post(ticket_url + "/answer", data={"csrf_token": steward.csrf, "answer": "已更正,今晚重新报送",
                                                      "answered_by": "户政科"}).status_code == 303
    assert steward.post(ticket_url + "/close", data={"csrf_token": steward.csrf}).status_code == 303
    seen = county.get(ticket_url).text
    assert 'data-status="closed"' in seen and "已更正,今晚重新报送" in seen and 'id="answer-form"' not in seen
    listed = county.get("/tickets").text
    assert "公安局(户政)" in listed and "已关闭 1" in listed
    assert browser_like(bench, "cun").get("/tickets").status_code == 403
    assert browser_like(bench, "xian_out").get(ticket_url).status_code == 404
    with bench.engine.connect() as conn:
        logged = audit.rows(conn, Actor(0, "a", Role.auditor, ""))
    assert logged.loc[logged["object_type"].eq("ticket"), "action"].tolist() == [
        "ticket_closed", "ticket_answered", "ticket_opened"]
    with bench.engine.connect() as conn:
        stored = " ".join(conn.execute(select(warehouse.tickets.c.subject, warehouse.tickets.c.answer)).one())
    for text in (run_page, listed, seen, stored, bench.logs.text):
        assert PLANTED_ID not in text and PLANTED_NAME not in text and PLANTED_ID[:14] not in text


def test_the_audit_log_pages_back_to_its_first_row(workbench, monkeypatch):
    bench = workbench
    for name in ("cun", "xiang", "xian", "guanli"):   # sign-ins: rows of the log
        bench.session(name)
    monkeypatch.setattr(routes_admin, "AUDIT_ROWS", 2)
    county = browser_like(bench, "xian")
    with bench.engine.connect() as conn:
        expected = audit.rows(conn, county_actor(bench), limit=10_000)["audit_id"].tolist()
    assert len(expected) > 4
    seen, url = [], "/audit"
    while url:
        page = county.get(url).text
        seen += [int(i) for i in re.findall(r'<tr data-audit="(\d+)">', page)]
        older = re.search(r'<a href="(/audit\?[^"]+)" id="older"', page)
        url = html.unescape(older.group(1)) if older else None
    assert seen[:len(expected)] == expected and len(seen) == len(expected)
    assert county.get("/audit", params={"before": 2**31}).status_code == 422
    for day in ("0001-01-01", "9999-12-31"):   # a day whose midnight where the policy is has no instant: refused
        assert county.get("/audit", params={"since": day}).status_code == 422
        assert "ERROR" not in bench.logs.text


def county_actor(bench) -> Actor:
    person = bench.person("xian")
    return Actor(0, person.name, Role.county, person.area)
