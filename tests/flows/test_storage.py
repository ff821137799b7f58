"""A full disk, a read-only warehouse and an embedded warehouse another process is writing: each ends a run in
one line with the exit code of its kind, no traceback, and the run's record says it failed (jingzhun.storage)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from sqlalchemy import select

from helpers import AS_OF, read_only, small_disk
from jingzhun import cli, warehouse


def _run(landing, url, tmp_path) -> tuple[int, str, str]:
    """``jingzhun run`` as a process of its own, as a night runs it: (exit code, its last line of its own on
    stderr, everything it printed)."""
    import os

    done = subprocess.run([sys.executable, "-m", "jingzhun.cli", "run", "--landing", str(landing), "--warehouse", url,
                           "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat()], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "JINGZHUN_WORK": str(tmp_path / "work")})
    ours = [line for line in done.stderr.splitlines() if line.startswith(("failed:", "refused:"))]
    assert len(ours) == 1, done.stderr[-3000:]
    return done.returncode, ours[0], done.stdout + done.stderr


def test_a_full_disk_ends_the_run_in_one_line_and_marks_it_failed(county, tmp_path):
    with small_disk(tmp_path / "disk", "400k") as disk:
        url = f"sqlite:///{disk / 'warehouse.sqlite'}"
        code, line, everything = _run(county["landing"], url, tmp_path)
        assert code == 1  # the registers do not fit in 400 KiB
        assert line.startswith("failed: publish: 磁盘空间已满") and "no space left" in line
        assert "Traceback" not in everything and "INSERT" not in everything
        engine = warehouse.connect(url)
        with engine.connect() as conn:
            [run] = conn.execute(select(warehouse.runs)).all()
        engine.dispose()
        assert run.status == "failed" and "no space left" in run.error  # marked failed, not left running



def test_a_read_only_warehouse_ends_the_run_in_one_line(tmp_path, county):
    with small_disk(tmp_path / "disk", "2m") as disk:
        url = f"sqlite:///{disk / 'warehouse.sqlite'}"
        warehouse.connect(url).dispose()  # a warehouse with its schema, then its disk turned read-only
        read_only(disk)
        code, line, everything = _run(county["landing"], url, tmp_path)
        assert code == 2
        assert line.startswith("failed: 数据仓库或工作文件夹不可写") and "cannot be written" in line
        assert "Traceback" not in everything


def test_an_embedded_warehouse_another_process_is_writing_is_busy_in_one_line(county, tmp_path):
    path = tmp_path / "warehouse.sqlite"
    warehouse.connect(f"sqlite:///{path}").dispose()
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time\n"
                               f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
                               "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        code, line, everything = _run(county["landing"], f"sqlite:///{path}", tmp_path)
        assert code == cli.EXIT_BUSY
        assert "another process is writing the embedded warehouse" in line and "Traceback" not in everything
        assert time.monotonic() - started < 120
        export = subprocess.run([sys.executable, "-m", "jingzhun.cli", "flags", "export", "--warehouse",
                                 f"sqlite:///{path}", "--out", str(tmp_path / "flags.csv")], capture_output=True,
                                text=True, timeout=300)
        assert export.returncode == cli.EXIT_BUSY, export.stderr  # not "holds no published run"
        assert "another process is writing the embedded warehouse" in export.stderr
    finally:
        holder.kill()
        holder.wait()
    with sqlite3.connect(path) as conn:  # it wrote nothing, not even a run record
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
