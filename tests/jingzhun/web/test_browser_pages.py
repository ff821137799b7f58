"""The village indicators in a real browser (Debian's Chromium) against the real server, on both backends: the
county's person follows the navigation to the page, finds the SVG chart drawn with one bar per village, coloured by
the stylesheet under the CSP (no inline style anywhere), the threshold line, and prints it on A4."""

from __future__ import annotations

import re
import subprocess

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from workbench import nightly_indicators, pdf_text, print_pdf, shot, sign_in, wait_for

COLOURS = {"rgb(63, 143, 95)", "rgb(200, 118, 63)"}  # style.css: below and above the exit threshold


def test_the_indicators_page_shows_its_chart(workbench, frames, driver, tmp_path):
    bench = workbench
    published = nightly_indicators(bench.engine, frames)
    sign_in(driver, bench, "xian")
    driver.find_element(By.LINK_TEXT, "村级指标").click()
    chart = wait_for(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, "figure.chart svg.chart")))
    assert chart.size["width"] > 300 and chart.size["height"] > 60
    bars = driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert len(bars) == len(published)
    assert {driver.execute_script("return getComputedStyle(arguments[0]).fill", b) for b in bars} <= COLOURS
    threshold = driver.find_element(By.CSS_SELECTOR, "svg.chart line.threshold")
    assert driver.execute_script("return arguments[0].getBBox().height", threshold) > 20   # drawn across the bars
    assert driver.execute_script("return getComputedStyle(arguments[0]).stroke", threshold) == "rgb(155, 28, 28)"
    assert "退出标准 3.0%" in driver.find_element(By.CSS_SELECTOR, "svg.chart").text
    assert driver.execute_script("return document.querySelectorAll('[style]').length") == 0
    rows = driver.find_elements(By.CSS_SELECTOR, "#villages tbody tr")
    assert sorted(r.get_attribute("data-village") for r in rows) == sorted(published["village_code"])
    shot(driver, "indicators")
    pdf = print_pdf(driver, tmp_path / "indicators.pdf")
    printed = pdf_text(pdf)
    assert "村级指标" in printed and "退出标准" in printed and "打印" not in printed
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"^Page size:.*\(A4\)$", info, re.M), info
    shot(driver, "indicators_printed", pdf)
