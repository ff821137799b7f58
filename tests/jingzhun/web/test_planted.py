"""Planted data: a department sent a name that is markup, quotes and a right-to-left override. Every page shows it
as text (escaped, no script runs); the server's log and access log hold no identity number and no name, even when
a page fails with an exception that quotes them."""

from __future__ import annotations

import json

import httpx
import pandas as pd
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from sqlalchemy import select, update

from jingzhun import warehouse
from jingzhun.privacy import mask_id_shaped

from workbench import shot, sign_in, wait_for

PLANTED = "<script>alert(1)</script>\"'\u202e某某"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;[U+202E]某某"  # the override shown, not obeyed


def plant(bench) -> dict:
    """The flag's household: every member's name becomes PLANTED in the published registers and in the flag's
    evidence (as a department would have sent it). Returns the family's names and identity numbers as they were."""
    reg, hk = warehouse.staging_tables["poverty_register"], warehouse.staging_tables["hukou"]
    with bench.engine.begin() as conn:
        members = pd.read_sql(select(reg.c.id_number, reg.c.name, reg.c.name_norm).where(
            reg.c.household_id == bench.household_id), conn)
        hukou = pd.read_sql(select(hk.c.id_number, hk.c.name, hk.c.hukou_household_id).where(
            hk.c.id_number.in_(members["id_number"].tolist())), conn)
        names = set(members["name"]) | set(members["name_norm"]) | set(hukou["name"])
        conn.execute(update(reg).where(reg.c.household_id == bench.household_id).values(name=PLANTED, name_norm=PLANTED))
        conn.execute(update(hk).where(hk.c.id_number.in_(members["id_number"].tolist()))
                     .values(name=PLANTED, name_norm=PLANTED))
        row = conn.execute(select(warehouse.flags.c.evidence, warehouse.flags.c.evidence_text).where(
            warehouse.flags.c.flag_key == bench.flag_key)).one()
        evidence = json.loads(row.evidence)
        for record in evidence["records"]:
            for key in list(record):
                if "name" in key and record[key]:
                    names.add(record[key])
                    record[key] = PLANTED
        text = row.evidence_text
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, PLANTED)
        conn.execute(update(warehouse.flags).where(warehouse.flags.c.flag_key == bench.flag_key).values(
            evidence=json.dumps(evidence, ensure_ascii=False), evidence_text=text))
    return {"names": {n for n in names if n}, "ids": set(members["id_number"]) | set(hukou["id_number"])}


def test_a_planted_name_shows_as_text_and_nothing_personal_is_logged(workbench, driver, monkeypatch):
    bench = workbench
    family = plant(bench)
    assert family["ids"] and family["names"]
    api = httpx.Client(base_url=bench.base, headers={"Authorization": f"Bearer {bench.tokens['cun']}"}, timeout=60)
    detail = api.get(f"/api/flags/{bench.flag_key}").json()
    assert detail["evidence_text"].count(PLANTED) >= 1                 # JSON carries the text as it is
    moved = api.post(f"/api/flags/{bench.flag_key}/steps", json={
        "action": "agree", "note": PLANTED, "evidence_hash": detail["evidence_hash"],
        "state_token": detail["state_token"], "verifiers": []})
    assert moved.status_code == 200 and moved.json() == {"stage": "publicity_1"}

    sign_in(driver, bench, "cun")
    pages = [f"/flags/{bench.flag_key}", f"/households/{bench.household_id}", f"/publicity/{bench.village}"]
    for page in pages:
        driver.get(bench.base + page)
        assert "<script>alert(1)</script>" in driver.find_element(By.TAG_NAME, "main").text, page
        assert_no_alert(driver)
        shot(driver, "planted_" + page.split("/")[1])
    driver.get(f"{bench.base}/households/{bench.household_id}")
    assert not any(number in driver.page_source for number in family["ids"])  # masked until asked
    driver.find_element(By.CSS_SELECTOR, "#show-full button").click()        # the full numbers: a POST, audited
    wait_for(driver, EC.presence_of_element_located((By.ID, "full-notice")))
    assert any(number in driver.page_source for number in family["ids"])
    assert_no_alert(driver)

    # a family found by a member's identity number, typed into the form: the number never reaches a URL
    lookup = driver.find_element(By.CSS_SELECTOR, "form.lookup input[name=number]")
    lookup.send_keys(sorted(family["ids"])[0])
    driver.find_element(By.CSS_SELECTOR, "form.lookup button").click()
    wait_for(driver, lambda d: d.current_url.endswith(f"/households/{bench.household_id}"))

    session = driver.get_cookie("jz_session")["value"]
    browser_like = httpx.Client(base_url=bench.base, headers={"Cookie": f"jz_session={session}"}, timeout=60)
    for page in pages:
        html = browser_like.get(page).text
        assert ESCAPED in html and "<script>alert" not in html and "\u202e" not in html, page
        assert "<script>" not in html.replace('<script src="/static/print.js" defer></script>', ""), page

    # the indicators, runs and tickets pages read no person's cells: none of the family's names or numbers there
    for name, page in (("cun", "/indicators"), ("guanli", "/runs"), ("guanli", "/tickets"), ("xian", "/tickets")):
        cookie, _ = bench.session(name)
        text = httpx.get(bench.base + page, headers={"Cookie": f"jz_session={cookie}"}, timeout=60).text
        assert "<h1" in text and not any(v in text for v in family["names"] | family["ids"] | {PLANTED}), page

    # a page failing on an exception whose text quotes the family: a bare 500 page, a log line without the text
    from jingzhun.signoff import chain

    def failing(*args, **kwargs):
        raise ValueError(f"row of {sorted(family['names'])[0]} {sorted(family['ids'])[0]}")

    monkeypatch.setattr(chain, "flag_detail", failing)
    broken = browser_like.get(f"/flags/{bench.flag_key}")
    assert broken.status_code == 500 and "ValueError" not in broken.text
    assert not any(n in broken.text for n in family["names"] | family["ids"])
    assert "details withheld" in bench.logs.text

    logged = bench.logs.text
    assert "GET /households/" in logged and "POST /households HTTP" in logged      # the access log was captured
    for number in family["ids"]:
        assert number not in logged and mask_id_shaped(number) not in logged
    for name in family["names"] | {PLANTED, "alert(1)"}:
        assert name not in logged
    browser_like.close()
    api.close()


def assert_no_alert(driver) -> None:
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return
    raise AssertionError("a planted script ran")
