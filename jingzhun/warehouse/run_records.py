"""Runs and their locks: one run at a time per warehouse, one writer of the flags at a time, and the run's
record (running, published, failed) with what it read."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import (Engine, func, insert, select, update)
from sqlalchemy.exc import OperationalError

from jingzhun import clock
from jingzhun.privacy import SafeError

from jingzhun.warehouse.connection import now
from jingzhun.warehouse.loads import SQLITE_WRITE_CACHE_KIB, drop_load_tables
from jingzhun.schema import (
    runs, staging_tables)

# ---------------------------------------------------------------- run records

class WarehouseBusy(SafeError):
    """Another run holds the warehouse: this one did nothing."""


LOCK_NAME = "jingzhun-run"


@contextmanager
def run_lock(engine: Engine, wait_seconds: float = 0.0):
    """One run at a time per warehouse: a PostgreSQL session advisory lock held on a connection of its own (the
    server releases it if this process dies), or an exclusive ``flock`` on ``<file>.lock`` beside the embedded
    SQLite file (the kernel releases it likewise). Waits up to ``wait_seconds``, then raises
    :class:`WarehouseBusy` naming the run that holds it."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    if engine.dialect.name == "postgresql":
        key = _lock_key()
        conn = engine.connect()
        try:
            while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar():
                _wait_or_refuse(engine, deadline)
            conn.commit()
            yield
        finally:
            conn.rollback()
            conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
            conn.close()
        return
    with _file_lock(Path(str(engine.url.database) + ".lock"), lambda: _wait_or_refuse(engine, deadline)):
        yield


@contextmanager
def _file_lock(path: Path, wait: Callable[[], None]):
    """An exclusive ``flock`` on ``path`` (the kernel releases it if this process dies); ``wait()`` is called while
    another holds it, and sleeps or raises."""
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                wait()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


PUBLISH_WAIT_SECONDS = 3600.0  # a publish waits this long for an import of decisions to finish


@contextmanager
def flags_transaction(engine: Engine, wait_seconds: float = PUBLISH_WAIT_SECONDS):
    """A transaction that rewrites the flags (a publish) or sets their decisions (a review import): one at a time
    per warehouse, so neither reads the flags the other is about to change. PostgreSQL: a transaction-level
    advisory lock; SQLite: an exclusive ``flock`` on ``<file>.flags.lock`` (the kernel drops it if the process
    dies). Waits up to ``wait_seconds``, then raises :class:`WarehouseBusy` (nothing done: try again)."""
    busy = WarehouseBusy("数据仓库正在发布或导入决定,本次未做任何改动,请稍后重试 (the warehouse is publishing a run or "
                         "importing decisions; nothing was done: try again in a few minutes)")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # read committed: what the lock holder committed is read after the wait
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(int(wait_seconds * 1000), 1)}ms'")
            try:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_key() ^ 1})")
            except OperationalError:
                raise busy from None
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            yield conn
        return
    deadline = time.monotonic() + max(wait_seconds, 0.0)

    def wait() -> None:
        if time.monotonic() >= deadline:
            raise busy
        time.sleep(0.2)

    with _file_lock(Path(str(engine.url.database) + ".flags.lock"), wait):
        try:
            with engine.begin() as conn:
                default_cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
                conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_WRITE_CACHE_KIB}")  # see loads.SQLITE_WRITE_CACHE_KIB
                try:
                    yield conn
                finally:
                    with suppress(OperationalError):  # the connection's own setting; a failed one is discarded
                        conn.exec_driver_sql(f"PRAGMA cache_size = {int(default_cache)}")
        except OperationalError as exc:  # another writer (a run's bookkeeping or register load) held the file
            if "locked" in str(exc.orig):
                raise busy from None
            raise


def _lock_key() -> int:
    """The advisory lock's 63-bit key, the same for every jingzhun process on a database."""
    return int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big") >> 1


def _wait_or_refuse(engine: Engine, deadline: float) -> None:
    if time.monotonic() < deadline:
        time.sleep(1.0)
        return
    with engine.connect() as conn:
        holder = conn.execute(select(runs.c.run_id, runs.c.started_at, runs.c.host).where(runs.c.status == "running")
                              .order_by(runs.c.started_at.desc()).limit(1)).first()
    who = f" (run {holder.run_id}, started {clock.local(holder.started_at):%Y-%m-%d %H:%M} on {holder.host})" if holder else ""
    raise WarehouseBusy(f"另一个运行正在使用该数据仓库,本次未做任何改动 (another run holds the warehouse{who}; "
                        f"nothing was done: run again when it has finished)")


def start_run(engine: Engine, run_id: str, as_of, landing: str, region: str | None, parameters: dict) -> list[str]:
    """Record a run as running, inside :func:`run_lock`; first mark runs whose process is gone as failed (with
    the lock held, every run still marked running is one whose process died) and drop what they left half
    written (load tables). Returns those."""
    interrupted = _interrupted_runs(engine)
    drop_load_tables(engine)
    with engine.begin() as conn:
        for old in interrupted:
            conn.execute(update(runs).where(runs.c.run_id == old).values(
                status="failed", finished_at=now(), error=f"interrupted: its process ended before it finished (seen by run {run_id})"))
        conn.execute(insert(runs).values(run_id=run_id, started_at=now(), status="running", as_of=as_of,
                                         landing=landing, region=region, host=socket.gethostname(), pid=os.getpid(),
                                         parameters=json.dumps(parameters, ensure_ascii=False, default=str)))
    return interrupted


def snapshot_rows(engine: Engine) -> dict[str, int]:
    """Rows of each register's published snapshot (the last one the gate accepted); absent when empty."""
    counts = {}
    with engine.connect() as conn:
        for name, table in staging_tables.items():
            n = conn.execute(select(func.count()).select_from(table)).scalar()
            if n:
                counts[name] = int(n)
    return counts


def _interrupted_runs(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        running = conn.execute(select(runs.c.run_id).where(runs.c.status == "running")).scalars().all()
    return list(running)


def finish_run(engine: Engine, run_id: str, status: str, timings: dict | None = None,
               sources: dict | None = None, error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(
            finished_at=now(), status=status, error=error,
            timings=json.dumps(timings or {}), sources=json.dumps(sources or {}, ensure_ascii=False)))
