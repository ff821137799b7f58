"""The whole sign-off chain in a real browser against the real server, on both backends: the village agrees, an
objection during the 公示 sends it back, it agrees again; after the period the township returns it once with a
reason; the village agrees again; after the period the township verifies with three names (two are refused); after
the second 公示 the county approves; the 公告 prints on A4 with its title."""

from __future__ import annotations

import json
import re
import subprocess

import pandas as pd
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from sqlalchemy import select

from jingzhun import warehouse

from workbench import pdf_text, print_pdf, shot, sign_in, sign_out, wait_for

def open_flag(driver, bench) -> str:
    """From my queue (filtered to the village, as a person clicks it) to the flag's page: its stage."""
    driver.get(f"{bench.base}/?village={bench.village}")
    driver.find_element(By.CSS_SELECTOR, f"tr[data-flag='{bench.flag_key}'] a.open").click()
    wait_for(driver, EC.presence_of_element_located((By.ID, "stage")))
    return stage(driver)


def stage(driver) -> str:
    """The stage the loaded page shows (asked again while a navigation replaces the document)."""
    return wait_for(driver, lambda d: d.execute_script(
        "return document.readyState === 'complete' && document.getElementById('stage') "
        "? document.getElementById('stage').dataset.stage : null"))


def act(driver, action: str, note: str = "", verifiers=()) -> str:
    """Fill and send the action's form; the stage the page shows afterwards."""
    form = driver.find_element(By.CSS_SELECTOR, f"form.step[data-action='{action}']")
    if note:
        form.find_element(By.NAME, "note").send_keys(note)
    for box, name in zip(form.find_elements(By.NAME, "verifier"), verifiers):
        box.clear()  # a refused form comes back with what was typed
        box.send_keys(name)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(driver, EC.staleness_of(form))
    return stage(driver)


def test_the_whole_chain_in_the_browser(workbench, driver, tmp_path):
    bench = workbench
    sign_in(driver, bench, "cun")
    shot(driver, "queue")
    assert driver.find_element(By.CSS_SELECTOR, f"tr[data-village='{bench.village}']")
    assert open_flag(driver, bench) == "pending_village"
    assert driver.find_elements(By.CSS_SELECTOR, "#records article.record"), "the departments' records side by side"
    shot(driver, "flag")

    assert act(driver, "agree") == "publicity_1"
    driver.get(f"{bench.base}/publicity/{bench.village}")
    listed = driver.find_elements(By.CSS_SELECTOR, "#list tbody tr td.id")
    assert listed and all("*" in cell.text for cell in listed), "the 公示 masks identity numbers"
    publicity = pdf_text(print_pdf(driver, tmp_path / "publicity.pdf"))
    assert "对象公示" in publicity and "公示期" in publicity and "12317" in publicity  # title, period, contact
    shot(driver, "publicity", tmp_path / "publicity.pdf")

    assert open_flag(driver, bench) == "publicity_1"
    assert act(driver, "object", note="有村民反映该户车辆已转卖") == "pending_village"
    assert act(driver, "agree") == "publicity_1"

    bench.end_period()
    sign_out(driver)
    sign_in(driver, bench, "xiang")
    assert open_flag(driver, bench) == "pending_township"      # the 公示 ended without objection
    assert act(driver, "return", note="请补充车辆转让的证明材料") == "pending_village"

    sign_out(driver)
    sign_in(driver, bench, "cun")
    assert open_flag(driver, bench) == "pending_village"
    assert "请补充车辆转让的证明材料" in driver.find_element(By.ID, "steps").text  # the reason reached the village
    assert act(driver, "agree", note="已补充材料") == "publicity_1"

    bench.end_period()
    sign_out(driver)
    sign_in(driver, bench, "xiang")
    assert open_flag(driver, bench) == "pending_township"
    assert act(driver, "verify", verifiers=["张核查", "李核查"]) == "pending_township"   # two names: refused
    assert "至少需要 3 人" in driver.find_element(By.ID, "refused").text
    kept = [b.get_attribute("value") for b in driver.find_elements(By.CSS_SELECTOR, "form[data-action=verify] input[name=verifier]")]
    assert kept[:3] == ["张核查", "李核查", ""]                                  # what was typed is not lost
    assert act(driver, "verify", verifiers=["张核查", "李核查", "王核查"]) == "publicity_2"

    bench.end_period()
    sign_out(driver)
    sign_in(driver, bench, "xian")
    assert open_flag(driver, bench) == "pending_county"
    assert act(driver, "approve") == "approved"
    assert not driver.find_elements(By.CSS_SELECTOR, "form.step"), "nothing left to do"

    driver.get(f"{bench.base}/announcement/{bench.village}")
    title = driver.find_element(By.CSS_SELECTOR, "h1.sheet-title").text
    assert "公告" in title and len(driver.find_elements(By.CSS_SELECTOR, "#list tbody tr td.id")) >= 1
    pdf = print_pdf(driver, tmp_path / "announcement.pdf")
    printed = pdf_text(pdf)
    assert "动态调整对象公告" in printed and title.split(" ")[0] in printed.replace(" ", "")
    assert "负责人签字" in printed and "12317" in printed
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"^Page size:.*\(A4\)$", info, re.M) and re.search(r"^Pages:\s+1$", info, re.M), info
    shot(driver, "announcement", pdf)
    try:
        driver.switch_to.alert
        raise AssertionError("a page opened an alert")
    except NoAlertPresentException:
        pass

    with bench.engine.connect() as conn:
        steps = pd.read_sql(select(warehouse.steps).where(warehouse.steps.c.flag_key == bench.flag_key)
                            .order_by(warehouse.steps.c.step_id), conn)
    assert steps["action"].tolist() == ["agree", "object", "agree", "period_ended", "return", "agree", "period_ended",
                                        "verify", "period_ended", "approve"]
    assert json.loads(steps.loc[steps["action"].eq("verify"), "verifiers"].iloc[0]) == ["张核查", "李核查", "王核查"]
    assert steps.loc[steps["action"].eq("return"), "note"].iloc[0] == "请补充车辆转让的证明材料"
    people_steps = steps[steps["actor"].ne("system")]
    assert people_steps["via"].eq("web").all()
    assert people_steps["actor"].tolist() == ["cun", "cun", "cun", "xiang", "cun", "xiang", "xian"]
    assert bench.flag()["status"] == "confirmed"
