"""A run killed between writing and publishing leaves the published warehouse as it was."""

import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import select

from jingzhun import warehouse

from helpers import AS_OF

pytestmark = pytest.mark.slow


def jingzhun(*args, env=None):
    """The command line in its own process, talking to the test's Prefect server (a killed process must
    not leave a temporary server of its own behind)."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "jingzhun.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything it started
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def published(url):
    with warehouse.connect(url).connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn).sort_values("flag_key").reset_index(drop=True)
        runs = pd.read_sql(select(warehouse.runs), conn).set_index("run_id")
        register = pd.read_sql(select(warehouse.staging_tables["poverty_register"]), conn)
    return flags, runs, register


def test_killed_before_publish_changes_nothing_and_is_marked_failed(county, tmp_path, warehouse_url):
    landing = tmp_path / "landing"
    shutil.copytree(county["landing"], landing)
    args = ["run", "--landing", str(landing), "--warehouse", warehouse_url, "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat()]
    work = {"JINGZHUN_WORK": str(tmp_path / "work")}
    first = jingzhun(*args, env=work)
    assert first.returncode == 0, first.stderr[-2000:]
    flags_before, runs_before, register_before = published(warehouse_url)

    shutil.rmtree(landing / "vehicles")  # tonight would resolve nothing of RM_CAR, but change other things
    (landing / "medical_insurance" / "extra.csv").write_text("身份证号,参保年度,参保状态\n", encoding="utf-8")
    killed = jingzhun(*args, env={**work, "JINGZHUN_TEST_KILL_AT": "before_publish"})
    assert killed.returncode == -signal.SIGKILL

    flags_after, runs_after, register_after = published(warehouse_url)
    pd.testing.assert_frame_equal(flags_before, flags_after)
    assert len(register_after) == len(register_before) and set(register_after["run_id"]) == set(register_before["run_id"])
    dead_run = (set(runs_after.index) - set(runs_before.index)).pop()
    assert runs_after.loc[dead_run, "status"] == "running"

    again = jingzhun(*args, env=work)
    assert again.returncode == 0, again.stderr[-2000:]
    _, runs_final, _ = published(warehouse_url)
    assert runs_final.loc[dead_run, "status"] == "failed"
    assert "interrupted" in runs_final.loc[dead_run, "error"]
