"""The workbench under load (``jingzhun bench --workbench``): concurrent people on the queue, flag and household
pages of a generated county while a nightly run publishes into the same warehouse. Measured, never a timed test.

Grain: one row per page kind (queue, flag, household): requests, errors, p50 and p95 latency in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
from sqlalchemy import select

from jingzhun import auth, clock, warehouse

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ("queue", "flag", "household")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accounts(engine, flags: pd.DataFrame, users: int) -> list[tuple[str, str, list[str], list[str]]]:
    """``users`` accounts, spread over the villages with the most open flags (village, township and county in turn):
    each with the flag keys and household ids its pages will ask for."""
    villages = flags["village_code"].value_counts().index.tolist()
    out = []
    for i in range(users):
        role, digits = (("village", 12), ("township", 9), ("county", 6))[i % 3]
        area = villages[i % len(villages)][:digits]
        name = f"bench_{role}_{i}"
        known = set(auth.list_users(engine)["username"])
        password = auth.set_password(engine, name, by="bench") if name in known else auth.add_user(
            engine, name, role, area, by="bench")
        mine = flags[flags["village_code"].str.startswith(area)]
        out.append((name, password, mine["flag_key"].tolist()[:200], mine["household_id"].replace("", None).dropna()
                    .unique().tolist()[:200]))
    return out


async def _person(base: str, name: str, password: str, keys: list[str], households: list[str], until: float,
                  latencies: dict[str, list[float]], errors: dict[str, int], think: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as client:
        form = await client.get("/login")
        token = TOKEN.search(form.text).group(1)
        signed = await client.post("/login", data={"username": name, "password": password, "csrf_token": token})
        if signed.status_code != 303:
            errors["login"] = errors.get("login", 0) + 1
            return
        rng = random.Random(name)
        while time.monotonic() < until:
            page = rng.choice(PAGES)
            path = {"queue": "/", "flag": f"/flags/{rng.choice(keys)}" if keys else "/",
                    "household": f"/households/{rng.choice(households)}" if households else "/"}[page]
            started = time.perf_counter()
            try:
                answer = await client.get(path)
                failed = answer.status_code >= 400
            except httpx.HTTPError:
                failed = True
            latencies[page].append((time.perf_counter() - started) * 1000)
            errors[page] = errors.get(page, 0) + int(failed)
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)   # a person reads the page before the next


def workbench_load(url: str, landing: Path, as_of: date, work_dir: Path, users: int = 20, seconds: float = 60,
                   think: float = 0.0, nightly_nice: int = 0) -> dict:
    """Start ``jingzhun serve`` on ``url`` (a published warehouse), sign ``users`` people in, and let them read for
    ``seconds`` while a nightly run of ``landing`` publishes into the same warehouse (``think``: the mean seconds a
    person reads a page before the next; 0, each asks again at once; ``nightly_nice``: the run's CPU niceness, as a
    machine serving people beside its batch work would start it — ``nice -n 10 jingzhun run …``)."""
    landing, work_dir = Path(landing).resolve(), Path(work_dir).resolve()
    engine = warehouse.connect(url)
    f = warehouse.flags.c
    with engine.connect() as conn:
        flags = pd.read_sql(select(f.flag_key, f.village_code, f.household_id).where(f.status == "open"), conn)
    accounts = _accounts(engine, flags, users)
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "jingzhun.cli", "serve", "--warehouse", url, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        log = open(Path(work_dir) / "bench" / "workbench-nightly.log", "w", encoding="utf-8")  # its own lines only
        nightly = subprocess.Popen([sys.executable, "-m", "jingzhun.cli", "run", "--landing", str(landing), "--warehouse",
                                    url, "--as-of", as_of.isoformat(), "--today", as_of.isoformat()],
                                   stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work_dir),
                                   preexec_fn=(lambda: os.nice(nightly_nice)) if nightly_nice else None)
        latencies = {page: [] for page in PAGES}
        errors: dict[str, int] = {}
        until = time.monotonic() + seconds

        async def everyone():
            await asyncio.gather(*(_person(base, n, p, k, h, until, latencies, errors, think)
                                   for n, p, k, h in accounts))

        started = time.monotonic()
        asyncio.run(everyone())
        elapsed = time.monotonic() - started
        returned = nightly.wait(timeout=3600)
        log.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = [{"page": page, "requests": len(values), "errors": errors.get(page, 0),
             "p50_ms": round(float(pd.Series(values).quantile(0.5)), 1) if values else None,
             "p95_ms": round(float(pd.Series(values).quantile(0.95)), 1) if values else None} for page, values in latencies.items()]
    every = [v for values in latencies.values() for v in values]
    return {"date": clock.today().isoformat(), "users": users, "think_seconds": think, "seconds": round(elapsed, 1),
            "warehouse": url.split("://")[0], "nightly_nice": nightly_nice,
            "login_errors": errors.get("login", 0), "nightly_exit_code": returned, "pages": rows,
            "all": {"requests": len(every), "errors": sum(errors.get(p, 0) for p in PAGES),
                    "p50_ms": round(float(pd.Series(every).quantile(0.5)), 1) if every else None,
                    "p95_ms": round(float(pd.Series(every).quantile(0.95)), 1) if every else None}}
