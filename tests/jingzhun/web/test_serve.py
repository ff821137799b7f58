"""``jingzhun serve`` as a person starts it: the command in its own process on a published warehouse (both
backends), signing in through the form, the cookie's flags (Secure behind an https proxy on this machine), the access
log on its console without personal data, and a clean stop on SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
from sqlalchemy import insert

from jingzhun import auth, warehouse

from workbench import PASSWORD, seeded_warehouse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jingzhun_serve_runs_signs_in_and_stops(warehouse_url, county, frames, tmp_path):
    engine, chosen = seeded_warehouse(warehouse_url, frames, county["landing"])
    with engine.begin() as conn:  # what `jingzhun run` leaves: serve opens only a warehouse with a published run
        conn.execute(insert(warehouse.runs).values(run_id="r1", started_at=warehouse.now(), status="published",
                                                   as_of=pd.Timestamp("2026-11-22").date(), sources="{}"))
    auth.add_user(engine, "cun", "village", chosen["village_code"], PASSWORD)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jingzhun.cli", "serve", "--port", str(port),
                               "--warehouse", warehouse_url], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "jingzhun serve did not start"
            time.sleep(0.3)
        for proxied in (False, True):
            with httpx.Client(base_url=base, follow_redirects=False, timeout=30,
                              headers={"X-Forwarded-Proto": "https"} if proxied else {}) as web:
                form = web.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
                pre = form.headers["set-cookie"].split(";")[0]   # (a client keeps a Secure cookie for https only)
                signed = web.post("/login", data={"username": "cun", "password": PASSWORD, "csrf_token": token},
                                  headers={"Cookie": pre})
                assert signed.status_code == 303 and signed.headers["location"] == "/"
                cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("jz_session="))
                flags = {part.strip().lower() for part in cookie.split(";")[1:]}
                assert {"httponly", "path=/", "samesite=strict"} <= flags and ("secure" in flags) == proxied
                secret = cookie.split(";")[0].split("=", 1)[1]
                assert web.get("/", headers={"Cookie": f"jz_session={secret}"}).status_code == 200
                assert web.get(f"/flags/{chosen['flag_key']}", headers={"Cookie": f"jz_session={secret}"}).status_code == 200
                again = web.get("/login", headers={"Cookie": ""})
                token = re.search(r'name="csrf_token" value="([^"]+)"', again.text).group(1)
                wrong = web.post("/login", data={"username": "cun", "password": "not it", "csrf_token": token},
                                 headers={"Cookie": again.headers["set-cookie"].split(";")[0]})
                assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text and "not it" not in wrong.text
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err[-2000:]
    assert '"GET /flags/' in err and '"POST /login HTTP/1.1" 303' in err        # the access log, on the console
    assert "Traceback" not in err and "Logging error" not in err
    assert PASSWORD not in out + err
