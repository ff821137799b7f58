"""The workbench as its tests meet it: a county published into a real warehouse, people of every role inside and
outside its area, the real server (uvicorn, in a thread, on a free port) with its logs captured, and a real browser
(Debian's Chromium through Selenium)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select, update

from helpers import publish_county

PASSWORD = "correct-horse-电池-42"


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    area: str
    inside: bool   # whether the seeded village lies in the area


def people(village: str) -> list[Person]:
    """One person of each role whose area holds ``village``, and one whose area does not."""
    other_village = village[:-1] + ("1" if village[-1] != "1" else "2")
    return [
        Person("cun", "village", village, True), Person("cun_out", "village", other_village, False),
        Person("xiang", "township", village[:9], True), Person("xiang_out", "township", "620421199", False),
        Person("xian", "county", village[:6], True), Person("xian_out", "county", "620422", False),
        Person("guanli", "steward", village[:4], True), Person("guanli_out", "steward", "6205", False),
        Person("shenji", "auditor", "", True), Person("shenji_out", "auditor", "63", False),
    ]


class Captured(logging.Handler):
    """Every record the server's loggers emit, formatted as the console would show it (exceptions included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "jingzhun", "jingzhun.web", "fastapi")


@dataclass
class Workbench:
    """A served workbench: its address, warehouse, the seeded flag (a car flag of a register household) and its
    village, the people and their API tokens, and what the server logged."""

    base: str
    engine: object
    app: object
    flag_key: str
    household_id: str
    village: str
    persons: list[Person]
    tokens: dict[str, str]
    logs: Captured
    server: object = None
    thread: threading.Thread | None = None
    sessions: dict = field(default_factory=dict)

    def person(self, name: str) -> Person:
        return next(p for p in self.persons if p.name == name)

    def session(self, name: str) -> tuple[str, str]:
        """A fresh browser session of ``name`` (cookie secret, CSRF token), signed in the way the form does."""
        from jingzhun import auth

        _, secret, csrf = auth.login(self.engine, name, PASSWORD, "127.0.0.1", self.app.state.policy.signoff)
        return secret, csrf

    def flag(self) -> dict:
        from jingzhun import warehouse

        with self.engine.connect() as conn:
            return dict(conn.execute(select(warehouse.flags).where(
                warehouse.flags.c.flag_key == self.flag_key)).mappings().one())

    def end_period(self) -> None:
        """The 公示 the flag is in has lasted its days: its stage began ``publicity_days`` whole days before today
        (flags is not append-only: the chain counts the period from ``stage_since``)."""
        from jingzhun import warehouse

        days = self.app.state.policy.signoff.publicity_days
        since = pd.Timestamp(self.flag()["stage_since"]).to_pydatetime()
        with self.engine.begin() as conn:
            conn.execute(update(warehouse.flags).where(warehouse.flags.c.flag_key == self.flag_key)
                         .values(stage_since=since - timedelta(days=days + 1)))

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=20)
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.logs)


def seeded_warehouse(url: str, frames: dict, landing, plant=None):
    """The county published into ``url`` (``plant(frames)`` may change the department data first); the car flag of
    a register household chosen for the walk: (engine, flag row)."""
    from jingzhun import warehouse

    if plant is not None:
        frames = plant(dict(frames))
    engine, _ = publish_county(url, frames, landing)
    with engine.connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    chosen = flags[flags["rule_code"].eq("RM_CAR") & flags["household_id"].ne("")].sort_values("flag_key").iloc[0]
    return engine, chosen


def serve(url: str, frames: dict, landing, plant=None, policy=None, period_seconds=None) -> Workbench:
    """Publish the county, add the people, start the real server on a free port: the :class:`Workbench`."""
    import uvicorn

    from jingzhun import auth
    from jingzhun.policy import Policy
    from jingzhun.web import create_app
    from jingzhun.web.app import LOG_CONFIG

    engine, chosen = seeded_warehouse(url, frames, landing, plant)
    persons = people(chosen["village_code"])
    tokens = {}
    for p in persons:
        auth.add_user(engine, p.name, p.role, p.area, PASSWORD)
        tokens[p.name] = auth.new_token(engine, p.name)
    app = create_app(url, policy or Policy(), period_seconds=period_seconds)
    logs = Captured()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=LOG_CONFIG, access_log=True,
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="workbench", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the workbench did not start")
        time.sleep(0.05)
    for name in LOGGERS:  # after uvicorn configured its loggers
        logging.getLogger(name).addHandler(logs)
    bench = Workbench(f"http://127.0.0.1:{port}", engine, app, chosen["flag_key"], chosen["household_id"],
                      chosen["village_code"], persons, tokens, logs, server, thread)
    return bench


# ---------------------------------------------------------------- the browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser(profile: Path):
    """Headless Chromium driven by Debian's chromedriver, with a fresh profile, nothing fetched from anywhere."""
    from helpers import required_tool

    required_tool("chromium", package="chromium")
    required_tool("chromedriver", package="chromium-driver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager may not look for drivers or browsers online
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,1000", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver


def sign_in(driver, bench: Workbench, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(bench.base + "/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url.rstrip("/") == bench.base)


def sign_out(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(driver, lambda d: d.current_url.endswith("/login"))


def wait_for(driver, condition, seconds: float = 20):
    """``condition(driver)`` once it holds; asked again while a navigation replaces the page under it."""
    from selenium.common.exceptions import (JavascriptException, NoSuchElementException,
                                            StaleElementReferenceException, WebDriverException)
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException, JavascriptException, WebDriverException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored).until(condition)


def print_pdf(driver, out: Path) -> Path:
    """The page as Chromium prints it (A4, the page's own print CSS), written to ``out``."""
    import base64

    printed = driver.execute_cdp_cmd("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                                         "preferCSSPageSize": True, "printBackground": False})
    out.write_bytes(base64.b64decode(printed["data"]))
    return out


SHOTS = os.environ.get("JINGZHUN_SHOTS")  # a folder: the browser tests leave screenshots and PDFs there too


def shot(driver, name: str, pdf: Path | None = None) -> None:
    """A screenshot of the page (and the PDF printed of it) for a person to look at, when JINGZHUN_SHOTS says where."""
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))
    if pdf is not None:
        (folder / f"{name}.pdf").write_bytes(pdf.read_bytes())


def pdf_text(path: Path) -> str:
    import subprocess

    from helpers import required_tool

    tool = required_tool("pdftotext", package="poppler-utils")
    return subprocess.run([tool, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def nightly_indicators(engine, frames: dict, run_id: str = "n1") -> pd.DataFrame:
    """A published nightly run record with the village indicators the engine computes from the county's registers
    (what ``/indicators`` and the officials' workbook read; :func:`helpers.publish_county` writes neither)."""
    from sqlalchemy import insert

    from helpers import AS_OF
    from jingzhun import warehouse
    from jingzhun.catalogue import current
    from jingzhun.engine import Engine
    from jingzhun.policy import Policy

    with Engine(frames, Policy(), pd.Timestamp(AS_OF), current()) as running:
        raised, _ = running.flags({})
        villages = running.village_indicators(raised)
    with engine.begin() as conn:
        conn.execute(insert(warehouse.runs).values(run_id=run_id, started_at=warehouse.now(), status="published",
                                                   as_of=AS_OF, region=None, sources="{}"))
        warehouse.bulk_insert(conn, warehouse.village_indicators, villages.assign(run_id=run_id))
    return villages
