"""The warehouse: the one seam for SQL dialect differences, and the run's writes.

Everything takes an SQLAlchemy ``Engine``; the embedded default is a SQLite
file, production is PostgreSQL (``postgresql+psycopg://``). Only
:func:`bulk_insert` knows which one it talks to.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text as sql_text
from sqlalchemy import (Boolean, Connection, Date, DateTime, Engine, Float, Integer, MetaData, Table,
                        case, create_engine, delete, func, insert, select, update)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from jingzhun import clock
from jingzhun.evidence import digest_body
from jingzhun.privacy import Refused, SafeError, url_secret
from jingzhun.signoff.stages import Action, first_stages

from jingzhun.schema import (
    metadata, runs, run_files, validation_results, quarantine, flags, run_rules, wap_flags,
    reviews, publicity_posts, village_indicators, regions, steps, users, sessions, api_tokens, tickets,
    audit_log, FLAG_EXPORT_COLUMNS, staging_table_name, staging_tables, DEPLOYMENT_TABLES, add_source_table, remove_source_tables)

# the tables (jingzhun/schema.py), re-exported for the clients that know them as warehouse.flags and so on
__all__ = ["metadata", "runs", "run_files", "validation_results", "quarantine", "flags", "run_rules", "wap_flags", "reviews", "publicity_posts", "village_indicators", "regions", "steps", "users", "sessions", "api_tokens", "audit_log", "tickets", "FLAG_EXPORT_COLUMNS", "staging_table_name", "staging_tables", "DEPLOYMENT_TABLES", "add_source_table", "remove_source_tables"]



def default_url(work_dir: Path) -> str:
    return f"sqlite:///{(Path(work_dir) / 'warehouse.sqlite').resolve()}"


def resolve_url(url: str | None, work_dir: str | Path) -> str:
    """The warehouse a run writes to: the URL given, else ``JINGZHUN_WAREHOUSE`` (how a deployment's worker
    is pointed at production), else the embedded file under the work folder; without its password
    (:func:`without_password`), so that what is passed on, printed or stored never holds it."""
    return without_password(url or os.environ.get("JINGZHUN_WAREHOUSE") or default_url(Path(work_dir)))


PASSWORD_VARIABLE = "JINGZHUN_WAREHOUSE_PASSWORD"


def refuse_password_parameter(url: str | None) -> None:
    """A flow's ``warehouse_url`` holding a password is refused: Prefect stores a run's parameters with it, shown
    to everyone who may see the run (the command line takes the password out before the flow starts)."""
    if url and url_secret(url)[1] is not None:
        raise Refused("warehouse_url: 流程参数中不得包含密码 (a flow parameter may not hold a password: Prefect stores "
                      "it with the run; give it through the worker's JINGZHUN_WAREHOUSE, a .pgpass or a service file)")


def without_password(url: str) -> str:
    """``url`` without its password, which is kept in this process's environment (``JINGZHUN_WAREHOUSE_PASSWORD``)
    for :func:`connect` to use: a password is never a flow parameter, a log line or a run record."""
    shown, password = url_secret(url)
    if password is not None:
        os.environ[PASSWORD_VARIABLE] = password
    return shown


MIGRATIONS = Path(__file__).resolve().parents[1] / "sql" / "migrations"
_MIGRATING = threading.Lock()  # two threads migrating at once shared one connection through alembic.context


def connect(url: str) -> Engine:
    """An engine on a warehouse whose schema is migrated to the latest revision (Alembic)."""
    from alembic import command
    from alembic.config import Config

    url = without_password(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    if parsed.password is None and os.environ.get(PASSWORD_VARIABLE) and not url.startswith("sqlite"):
        parsed = parsed.set(password=os.environ[PASSWORD_VARIABLE])
    engine = create_engine(parsed, future=True, hide_parameters=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, engine.begin() as conn:  # Alembic's context is one per process: one migration at a time
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        if DEPLOYMENT_TABLES:
            metadata.create_all(conn, tables=list(DEPLOYMENT_TABLES.values()), checkfirst=True)
            for table in DEPLOYMENT_TABLES.values():
                widen(conn, table)
    return engine


def widen(conn: Connection, table: Table) -> list[str]:
    """Add to a deployment's register table the columns its deployment has added since the table was made; say
    which. A column the deployment no longer lists is not dropped: the snapshot in the table keeps its values
    until the next one is published, in which it is empty."""
    present = {c["name"] for c in sa_inspect(conn).get_columns(table.name)}
    quote = conn.dialect.identifier_preparer.quote
    added = [c for c in table.columns if c.name not in present]
    for column in added:
        conn.execute(sql_text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} "
                          f"{column.type.compile(conn.dialect)}"))
    return [c.name for c in added]


# ---------------------------------------------------------------- the dialect seam

def bulk_insert(conn, table: Table, frame: pd.DataFrame) -> int:
    """Insert a DataFrame into ``table`` within the caller's transaction; COPY on PostgreSQL."""
    if frame.empty:
        return 0
    cols = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame[cols]
    loose_ints = [c for c in cols if isinstance(table.c[c].type, Integer) and not pd.api.types.is_integer_dtype(frame[c])]
    if loose_ints:  # counts with missing values arrive as floats or objects: write 3, not 3.0
        frame = frame.assign(**{c: pd.to_numeric(frame[c], errors="raise").astype("Int64") for c in loose_ints})
    if conn.dialect.name == "postgresql":
        _refuse_unstorable(table, frame)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep=COPY_NULL, quoting=csv.QUOTE_MINIMAL)
        names = ", ".join(f'"{c}"' for c in cols)
        with conn.connection.cursor() as cur:
            with cur.copy(f"COPY \"{table.name}\" ({names}) FROM STDIN WITH (FORMAT csv, NULL E'\\x1f')") as copy:
                copy.write(buffer.getvalue())
        return len(frame)
    sql = sqlite_insert_sql(table, cols)
    for rows in sqlite_rows(frame, table):
        conn.exec_driver_sql(sql, rows)
    return len(frame)


# ---------------------------------------------------------------- Arrow-native loads of the registers

LOAD_BATCH_ROWS = 250_000


def load_table_name(run_id: str, source: str) -> str:
    """Where a run writes a register before publishing it (the table is dropped when it is published)."""
    return f"_load_{re.sub(r'[^0-9A-Za-z]', '_', run_id)}_{source}".lower()[:63]


def _stored(values: pa.Array, sql_type, dialect: str) -> pa.Array:
    """A column as the warehouse stores it, converted by Arrow (no Python value per cell): on SQLite dates as ISO
    text and booleans as 0/1, as SQLAlchemy writes them there; on PostgreSQL dates and booleans as such."""
    if isinstance(sql_type, Date):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True)
        return pc.strftime(values, format="%Y-%m-%d") if dialect == "sqlite" else pc.cast(values, pa.date32())
    if isinstance(sql_type, Boolean):
        return pc.cast(values, pa.int8() if dialect == "sqlite" else pa.bool_())
    if isinstance(sql_type, Integer):
        return pc.cast(values, pa.int64())
    if isinstance(sql_type, Float):
        return pc.cast(values, pa.float64())
    text = pc.cast(values, pa.string())
    if dialect == "postgresql" and pc.any(pc.match_substring(text, "\x00")).as_py():
        raise UnstorableValue("a text value holds a NUL, which PostgreSQL cannot store; staging should have "
                              "removed it")
    return text


def _stored_batches(register: str | Path | pd.DataFrame, table: Table, run_id: str,
                    dialect: str) -> pa.RecordBatchReader:
    """A register's rows (its Parquet file, or a frame) as the warehouse stores them, read and converted a batch
    at a time (never the whole file in memory)."""
    if isinstance(register, pd.DataFrame):
        arrow = pa.Table.from_pandas(register, preserve_index=False)
        names, read = arrow.schema, lambda columns: arrow.select(columns).to_batches(LOAD_BATCH_ROWS)
    else:
        parquet = pq.ParquetFile(register)
        names = parquet.schema_arrow
        read = lambda columns: parquet.iter_batches(batch_size=LOAD_BATCH_ROWS, columns=columns)  # noqa: E731
    cols = [c for c in table.columns if c.name in set(names.names)]
    empty = [_stored(pa.array([], type=names.field(c.name).type), c.type, dialect) for c in cols]
    schema = pa.schema([pa.field("run_id", pa.string()), *(pa.field(c.name, a.type) for c, a in zip(cols, empty))])

    def batches():
        for batch in read([c.name for c in cols]):
            if not batch.num_rows:
                continue
            run = pa.array([run_id], pa.string()).take(pa.array([0] * batch.num_rows, pa.int32()))
            yield pa.RecordBatch.from_arrays([run, *(_stored(batch.column(c.name), c.type, dialect) for c in cols)],
                                             schema=schema)
    return pa.RecordBatchReader.from_batches(schema, batches())


def _adbc(engine: Engine):
    """An ADBC connection to the warehouse (Arrow in, C out: no row is converted in Python)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        import adbc_driver_sqlite.dbapi

        return adbc_driver_sqlite.dbapi.connect(url.database)
    import adbc_driver_postgresql.dbapi

    return adbc_driver_postgresql.dbapi.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


def write_registers(engine: Engine, run_id: str, registers: dict[str, str | Path | pd.DataFrame]) -> dict[str, int]:
    """Write (of write-audit-publish): each register's Parquet file into its load table through ADBC bulk ingest
    (COPY BINARY on PostgreSQL), outside the publish transaction; :func:`publish` publishes them inside it. On
    SQLite the load table is made exactly like the published one (its own DDL), so that publishing is a rename.
    Returns the rows written per source."""
    sqlite = engine.dialect.name == "sqlite"
    for source in registers if sqlite else ():
        load = Table(load_table_name(run_id, source), MetaData(), *(_unindexed(c) for c in staging_tables[source].columns))
        with engine.begin() as conn:
            load.drop(conn, checkfirst=True)
            load.create(conn)
    written = {}
    with _adbc(engine) as conn:
        cur = conn.cursor()
        for source, parquet in registers.items():
            name = load_table_name(run_id, source)
            if not sqlite:
                cur.execute(f'DROP TABLE IF EXISTS "{name}"')
            written[source] = cur.adbc_ingest(name, _stored_batches(parquet, staging_tables[source], run_id,
                                                                   engine.dialect.name),
                                              mode="append" if sqlite else "create")
        conn.commit()
    return written


def _unindexed(column):
    """A register's column for its load table: no index while rows stream in (the published table has them)."""
    copy = column._copy()
    copy.index = None
    return copy


def drop_load_tables(engine: Engine, run_id: str | None = None) -> None:
    """Remove load tables: a run's (it failed before publishing), or every one (left by a run that died)."""
    prefix = load_table_name(run_id, "") if run_id else "_load_"
    with engine.begin() as conn:
        for name in sa_inspect(conn).get_table_names():
            if name.startswith(prefix):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')


def _publish_register(conn, run_id: str, source: str, expected: int) -> None:
    """Publish (of write-audit-publish): the register's load table replaces its published rows, in the caller's
    transaction, checked against what was written. On SQLite the load table takes the published table's place
    (dropped and renamed: no copy); on PostgreSQL its rows are copied in, so that the table and what was granted
    on it stay."""
    table, name = staging_tables[source], load_table_name(run_id, source)
    if conn.dialect.name == "sqlite":
        moved = conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()
    else:
        cols = ", ".join(f'"{c["name"]}"' for c in sa_inspect(conn).get_columns(name))
        conn.execute(delete(table))
        moved = conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{name}"').rowcount
    if moved != expected:
        raise AuditError(f"{source}: {moved} rows published, {expected} written")
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f'DROP TABLE "{table.name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{name}" RENAME TO "{table.name}"')
        for index in table.indexes:  # built once on the loaded rows (the dropped table took its own with it)
            index.create(conn)
    else:
        conn.exec_driver_sql(f'DROP TABLE "{name}"')


# COPY's NULL marker: a control character, which staging removes from every text value and JSON escapes, so
# that no value a department sent (``\N`` as a household number, say) is ever read as NULL.
COPY_NULL = "\x1f"


class UnstorableValue(SafeError):
    """A value no warehouse can store (a NUL, or COPY's NULL marker) reached a load: a bug upstream of it."""


def _refuse_unstorable(table: Table, frame: pd.DataFrame) -> None:
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.dropna().astype("str")
            if text.str.contains("[\x00\x1f]", regex=True).any():
                raise UnstorableValue(f"{table.name}.{name}: a value holds a NUL or a unit separator, which the "
                                      f"warehouse cannot store; staging should have removed it")


SQLITE_SLICE_ROWS = 100_000


def sqlite_insert_sql(table: Table, cols: list[str]) -> str:
    """The driver-level INSERT of ``cols`` into ``table`` (SQLite's ``?`` placeholders)."""
    return f'INSERT INTO "{table.name}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES ({", ".join("?" * len(cols))})'


def sqlite_rows(frame: pd.DataFrame, table: Table):
    """The frame's rows as the tuples sqlite3 binds, a slice of ``SQLITE_SLICE_ROWS`` at a time: converted
    column-wise per slice, so a register of millions of rows is never held as Python objects all at once.
    ``frame`` holds exactly the columns to insert, in order."""
    for start in range(0, len(frame), SQLITE_SLICE_ROWS):
        part = frame.iloc[start:start + SQLITE_SLICE_ROWS]
        yield list(zip(*(_sqlite_values(part[c], table.c[c].type) for c in part.columns)))


def _sqlite_values(values: pd.Series, sql_type) -> list:
    """A column as the Python values SQLAlchemy would store in SQLite (dates as ISO text), converted column-wise."""
    if isinstance(sql_type, (Date, DateTime)):
        stamps = pd.to_datetime(values, errors="coerce", utc=isinstance(sql_type, DateTime) and sql_type.timezone)
        text = stamps.dt.strftime("%Y-%m-%d" if isinstance(sql_type, Date) else "%Y-%m-%d %H:%M:%S.%f")
        return text.astype(object).where(stamps.notna(), None).tolist()
    if isinstance(sql_type, Boolean):
        ints = values.astype("boolean").astype("Int64")
        return ints.astype(object).where(ints.notna(), None).tolist()
    return values.astype(object).where(values.notna(), None).tolist()


# ---------------------------------------------------------------- run records

def now() -> datetime:
    """This instant, in UTC, as stored (:func:`jingzhun.clock.now`)."""
    return clock.now()


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
                yield conn
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


# ---------------------------------------------------------------- write, audit, publish

class AuditError(RuntimeError):
    """The run's staged output failed a check: nothing of it is published."""


def publish(engine: Engine, run_id: str, files: pd.DataFrame, quarantined: pd.DataFrame,
            registers: dict[str, str | Path | pd.DataFrame], raised: pd.DataFrame, rules: pd.DataFrame,
            scope: Scope | None, villages: pd.DataFrame | None = None,
            validation: pd.DataFrame | None = None, before_commit: Callable | None = None,
            region_names: pd.DataFrame | None = None) -> None:
    """Write the run's registers and flags, audit them, and publish everything in one transaction.

    The registers (Parquet files, or frames) are written first, through ADBC into load tables
    (:func:`write_registers`), then moved into the published tables inside the transaction. A crash or failed audit anywhere rolls the whole transaction back: the published registers and
    flags stay as the previous run left them. A register not loaded tonight keeps its previous
    snapshot; flags of rules not evaluated keep their state; ``region_names`` (code, name) replaces the regions
    reference when the run has one. ``before_commit(conn)`` writes what must exist
    with the published state (the review workbook): if it fails, nothing is published.
    """
    staged = raised.assign(run_id=run_id, flag_key=flag_keys(raised), evidence_hash=evidence_hashes(raised))
    try:
        written = write_registers(engine, run_id, registers)                      # write (registers)
        _publish(engine, run_id, files, quarantined, written, staged, rules, scope, villages, validation,
                 before_commit, region_names)
    finally:
        drop_load_tables(engine, run_id)


def _publish(engine: Engine, run_id: str, files: pd.DataFrame, quarantined: pd.DataFrame, written: dict[str, int],
             staged: pd.DataFrame, rules: pd.DataFrame, scope: Scope | None, villages: pd.DataFrame | None,
             validation: pd.DataFrame | None, before_commit: Callable | None, region_names: pd.DataFrame | None) -> None:
    with flags_transaction(engine) as conn:  # never interleaved with another publish or an import of decisions
        bulk_insert(conn, run_files, files.assign(run_id=run_id))
        bulk_insert(conn, quarantine, quarantined.assign(run_id=run_id))
        bulk_insert(conn, run_rules, rules.assign(run_id=run_id))
        if validation is not None:
            bulk_insert(conn, validation_results, validation.assign(run_id=run_id))
        bulk_insert(conn, wap_flags, staged)                                       # write
        audit(conn, run_id, expected=len(staged), rules=rules)                     # audit
        _test_hook("before_publish")
        for source, rows in written.items():                                       # publish
            _publish_register(conn, run_id, source, rows)
        evaluated = set(rules.loc[rules["evaluated"], "rule_code"])
        publish_flags(conn, run_id, evaluated, scope)
        conn.execute(delete(wap_flags).where(wap_flags.c.run_id == run_id))
        if villages is not None:
            bulk_insert(conn, village_indicators, villages.assign(run_id=run_id))
        if region_names is not None and len(region_names):  # a run without a reference keeps the last one
            conn.execute(delete(regions))
            bulk_insert(conn, regions, region_names.assign(run_id=run_id))
        if before_commit is not None:
            before_commit(conn)


def audit(conn, run_id: str, expected: int, rules: pd.DataFrame) -> None:
    """Checks on what the run wrote, before anything is published."""
    w = wap_flags.c
    mine = select(wap_flags).where(w.run_id == run_id).subquery()
    count, distinct, empty = conn.execute(select(
        func.count(), func.count(mine.c.flag_key.distinct()),
        func.sum(case((func.length(mine.c.evidence) < 20, 1), else_=0)))).one()
    problems = []
    if count != expected:
        problems.append(f"{count} flags written, {expected} raised")
    if distinct != count:
        problems.append(f"{count - distinct} duplicate flag identities")
    if empty:
        problems.append(f"{empty} flags without evidence")
    not_evaluated = set(rules.loc[~rules["evaluated"], "rule_code"])
    raised_rules = {r for (r,) in conn.execute(select(mine.c.rule_code).distinct())}
    if raised_rules & not_evaluated:
        problems.append(f"flags of rules not evaluated: {sorted(raised_rules & not_evaluated)}")
    if problems:
        raise AuditError(f"run {run_id} failed its audit: " + "; ".join(problems))


def _test_hook(point: str) -> None:
    """``JINGZHUN_TEST_KILL_AT=<point>`` kills this process there (used by the crash test)."""
    if os.environ.get("JINGZHUN_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


FLAG_KEY_CHARS = 48  # the flag key: the first 48 hex digits (192 bits) of SHA-256, the width flags.flag_key holds


def flag_identities(frame: pd.DataFrame) -> pd.Series:
    """The canonical text a flag's key digests: what the flag is about, and nothing another register supplies.

    ``flag/v2|<rule>|register|<register household>|<identity number, for a person-level rule; else empty>`` for a
    flag about a register household (or one of its members), ``flag/v2|<rule>|hukou|<hukou household>`` for a
    family not on the register. The hukou household number and names of a register family are attributes
    refreshed each night, never its identity: a 户号 that changes (分户, 迁移) keeps the flag and its decisions."""
    household = frame["household_id"].fillna("").astype("str")
    person = frame["id_number"].fillna("").astype("str")
    hukou = frame["hukou_household_id"].fillna("").astype("str")
    about = ("register|" + household + "|" + person).where(household.ne(""), "hukou|" + hukou)
    return "flag/v2|" + frame["rule_code"].astype("str") + "|" + about


def flag_keys(frame: pd.DataFrame) -> pd.Series:
    """The stable identity of a flag: the SHA-256 of :func:`flag_identities`, its first 48 hex digits."""
    return sha256_hex(flag_identities(frame)).str[:FLAG_KEY_CHARS]


def evidence_hashes(frame: pd.DataFrame) -> pd.Series:
    """A digest of what the evidence says: the SHA-256 (hex) of its records without the date, file names or row
    numbers they came with (a new export of the same facts is the same evidence; :func:`digest_body`)."""
    return sha256_hex(digest_body(frame["evidence"]))


def sha256_hex(text: pd.Series) -> pd.Series:
    """SHA-256 of each string's UTF-8 bytes, in hex, computed column-wise (DuckDB's ``sha256``): a standard digest
    whose value no library upgrade changes."""
    import duckdb

    if text.empty:
        return pd.Series([], index=text.index, dtype="str")
    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"t": pa.array(text.astype("str"), pa.string())}))
        digests = con.sql("SELECT sha256(t) AS h FROM texts").to_arrow_table().column("h").to_pandas()
    finally:
        con.close()
    return pd.Series(digests.to_numpy(), index=text.index, dtype="str")


FLAG_STATE = ["flag_key", "rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
              "evidence", "evidence_text", "evidence_hash", "status", "first_seen_run", "last_seen_run", "resolved_run",
              "opened_run", "stage", "stage_since", "step_seq"]


@dataclass(frozen=True)
class Scope:
    """What a run may raise and resolve: every flag (the nightly run), or those of villages under a region
    prefix and, optionally, of some households (register or hukou household ids): a reconciliation."""

    region: str | None = None
    households: tuple[str, ...] = ()
    keep_decisions: bool = False  # a deliberate re-run for an earlier as_of: decided flags are left as they are

    def holds(self, frame: pd.DataFrame) -> pd.Series:
        """Which flags (rows with village_code, household_id, hukou_household_id) are inside the scope."""
        inside = pd.Series(True, index=frame.index)
        if self.region:
            inside &= frame["village_code"].astype("str").str.startswith(self.region)
        if self.households:
            inside &= frame["household_id"].isin(self.households) | frame["hukou_household_id"].isin(self.households)
        return inside


def merge_flags(current: pd.DataFrame, raised: pd.DataFrame, run_id: str, evaluated: set[str],
                scope: Scope | None, when: datetime | None = None) -> pd.DataFrame:
    """The flags table after this run.

    Raised and new: open. Raised again: keeps its state and takes tonight's evidence, except that a
    dismissed flag stays dismissed (with the evidence the steward saw) while its evidence is unchanged,
    and opens again when it changes; a resolved flag opens again. Not raised by a rule evaluated tonight
    (within ``scope`` for a reconciliation): open and confirmed flags become resolved. Everything else
    keeps its state. A flag opened again, or whose evidence changed while it walks the sign-off chain, goes back to
    its direction's first stage at ``when`` (its steps stay: :func:`publish_flags` records the move).
    """
    when = when or now()
    old = current.set_index("flag_key")
    new = raised.set_index("flag_key")
    seen = new.index.intersection(old.index)
    fresh = new.loc[new.index.difference(old.index)]
    fresh = fresh.assign(status="open", first_seen_run=run_id, last_seen_run=run_id, resolved_run=None, opened_run=run_id,
                         stage=first_stages(fresh["direction"]), stage_since=when, step_seq=0)
    was = old.loc[seen, "status"]
    same_evidence = old.loc[seen, "evidence_hash"].eq(new.loc[seen, "evidence_hash"])
    still_dismissed = was.eq("dismissed") & same_evidence
    status = was.mask(was.isin(["resolved", "dismissed"]), "open").mask(still_dismissed, "dismissed")
    reopened = was.isin(["resolved", "dismissed"]) & status.eq("open")
    opened = old.loc[seen, "opened_run"].fillna(old.loc[seen, "first_seen_run"]).mask(reopened, run_id)
    again = new.loc[seen].assign(first_seen_run=old.loc[seen, "first_seen_run"], last_seen_run=run_id,
                                 status=status, resolved_run=None, opened_run=opened)
    evidence_cols = ["evidence", "evidence_text", "evidence_hash"]
    keep = scope is not None and scope.keep_decisions  # a re-run for an earlier date changes no decided flag
    if keep:
        still_dismissed = was.eq("dismissed")
        again["status"] = again["status"].mask(still_dismissed, "dismissed")
        again["opened_run"] = again["opened_run"].mask(was.isin(["confirmed", "dismissed"]), old.loc[seen, "opened_run"])
    again.loc[still_dismissed, evidence_cols] = old.loc[still_dismissed[still_dismissed].index, evidence_cols]
    # the chain (signoff.md, "Nightly runs and the chain"): opened again, or evidence changed mid-chain: back to the
    # first stage with its history kept; unchanged facts never move a flag backwards
    start = first_stages(new.loc[seen, "direction"])
    chain = old.loc[seen, ["stage", "stage_since", "step_seq"]].copy()
    chain["stage_since"] = pd.to_datetime(chain["stage_since"], utc=True)  # SQLite gives back naive UTC
    back = again["status"].eq("open") & (reopened | (was.eq("open") & ~same_evidence & chain["stage"].ne(start)))
    if keep:
        back &= ~was.isin(["confirmed", "dismissed"]) & ~was.eq("open")
    chain.loc[back, "stage"] = start[back]
    chain.loc[back, "stage_since"] = pd.Timestamp(when)
    chain["step_seq"] = chain["step_seq"].fillna(0).astype("int64") + back.astype("int64")
    again[["stage", "stage_since", "step_seq"]] = chain
    rest = old.loc[old.index.difference(new.index)].copy()
    in_scope = rest["rule_code"].isin(evaluated) & rest["status"].isin(["open"] if keep else ["open", "confirmed"])
    if scope is not None:
        in_scope &= scope.holds(rest)
    rest.loc[in_scope, "status"] = "resolved"
    rest.loc[in_scope, "resolved_run"] = run_id
    return pd.concat([fresh, again, rest]).reset_index().reindex(columns=FLAG_STATE)


def publish_flags(conn, run_id: str, evaluated: set[str], scope: Scope | None) -> None:
    """Merge the run's audited flags (``wap_flags``) into the published ``flags``. On PostgreSQL the table is
    locked against writers first: a step taken while the run merges waits, then finds the flag as the run left it
    (and is refused if that moved it), instead of being overwritten by the run's older read. (SQLite's publish
    already holds the database's write lock.)"""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE flags IN EXCLUSIVE MODE")
    current = pd.read_sql(select(flags), conn)
    raised = pd.read_sql(select(wap_flags).where(wap_flags.c.run_id == run_id), conn)
    when = now()
    merged = merge_flags(current, raised, run_id, evaluated, scope, when)
    conn.execute(delete(flags))
    bulk_insert(conn, flags, merged)
    record_moves(conn, current, merged, when)


def record_moves(conn, before: pd.DataFrame, after: pd.DataFrame, when: datetime) -> int:
    """One ``reopened`` step (via ``nightly``) per flag the run sent back to its first stage: the chain's record
    says why a flag someone had moved on is back."""
    was = before.set_index("flag_key")[["stage", "step_seq"]]
    moved = after.join(was, on="flag_key", rsuffix="_before")
    moved = moved[moved["step_seq_before"].notna() & moved["step_seq"].gt(moved["step_seq_before"])]
    if moved.empty:
        return 0
    conn.execute(insert(steps), [
        {"flag_key": k, "action": Action.reopened.value, "stage_before": b, "stage_after": a, "actor": "system",
         "role": "system", "acted_at": when, "note": "证据已变化或重新触发 (evidence changed, or raised again)",
         "evidence_hash": h, "state_token": f"{b}|{int(q) - 1}", "via": "nightly"}
        for k, b, a, h, q in zip(moved["flag_key"], moved["stage_before"], moved["stage"], moved["evidence_hash"],
                                 moved["step_seq"])])
    return len(moved)


def flag_movements(engine: Engine, run_id: str) -> pd.DataFrame:
    """Per rule and direction, what the run did to the published flags: raised for the first time, raised
    again (still there), and resolved. Counts only: no identity number or name."""
    f = flags.c
    with engine.connect() as conn:
        touched = pd.read_sql(select(f.rule_code, f.direction, f.first_seen_run, f.last_seen_run, f.resolved_run).where(
            (f.last_seen_run == run_id) | (f.resolved_run == run_id)), conn)
    counts = touched.assign(
        new=touched["first_seen_run"].eq(run_id),
        still_open=touched["last_seen_run"].eq(run_id) & touched["first_seen_run"].ne(run_id),
        resolved=touched["resolved_run"].eq(run_id),
    ).groupby(["rule_code", "direction"], as_index=False)[["new", "still_open", "resolved"]].sum()
    return counts.astype({"new": "int64", "still_open": "int64", "resolved": "int64"})


def flag_summary(engine: Engine, run_id: str) -> dict[str, int]:
    """What a run did to the published flags, for its summary: raised for the first time, raised again, opened
    again (after being resolved, or dismissed on evidence that has since changed), resolved; and how many flags
    of the whole warehouse await a steward's decision after it."""
    f = flags.c
    with engine.connect() as conn:
        new, again, reopened, resolved, awaiting = conn.execute(select(
            func.sum(case((f.first_seen_run == run_id, 1), else_=0)),
            func.sum(case(((f.last_seen_run == run_id) & (f.first_seen_run != run_id)
                           & (func.coalesce(f.opened_run, "") != run_id), 1), else_=0)),
            func.sum(case(((f.opened_run == run_id) & (f.first_seen_run != run_id), 1), else_=0)),
            func.sum(case((f.resolved_run == run_id, 1), else_=0)),
            func.sum(case((f.status == "open", 1), else_=0)))).one()
    return {"new": int(new or 0), "still_raised": int(again or 0), "reopened": int(reopened or 0),
            "resolved": int(resolved or 0), "awaiting_decision": int(awaiting or 0)}


class EarlierThanPublished(Refused):
    """A run dated before the last published one, not asked for as a dry run or a deliberate re-run."""


def latest_as_of_published(engine: Engine):
    """The latest as_of any published run was for (None: nothing published yet). Not the as_of of the run that
    finished last (:func:`jingzhun.preview.last_published_as_of`): after an --earlier re-run they differ."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(runs.c.as_of)).where(runs.c.status == "published")).scalar()


def check_as_of(engine: Engine, as_of, earlier: bool = False, dry_run: bool = False) -> None:
    """Refuse a run dated before the last published one: its registers would undo what later nights found and
    resolve decided flags. A dry run publishes nothing; ``earlier`` (a deliberate re-run) keeps every decision."""
    last = latest_as_of_published(engine)
    if last is None or dry_run or earlier or as_of >= last:
        return
    raise EarlierThanPublished(
        f"--as-of {as_of} 早于最近一次已发布运行的日期 {last},未运行;只查看请加 --dry-run,确需按较早日期重新运行且保留"
        f"所有决定请加 --earlier (as_of {as_of} is before the last published run's {last}: nothing was run; "
        f"--dry-run to look, --earlier to re-run keeping every decision)")


class UnknownScope(Refused):
    """A reconciliation asked for a region or households the register does not hold."""


def check_scope(engine: Engine, scope: Scope) -> None:
    """Refuse a region no village of the published register lies in, and households it does not hold. (Before
    the first published register, the run checks the region against tonight's register instead.)"""
    known = register_scope(engine, scope)
    if known is None:
        return
    villages, households = known
    if villages == 0:
        raise UnknownScope(f"unknown region {scope.region!r}: no village of the published poverty register "
                           f"has a code starting with it")
    unknown = sorted(set(scope.households) - households)
    if unknown:
        raise UnknownScope(f"unknown households in region {scope.region!r}: {', '.join(unknown[:20])}"
                           + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""))


def register_scope(engine: Engine, scope: Scope) -> tuple[int, set[str]] | None:
    """Of the published poverty register and hukou: how many villages lie under ``scope.region``, and which
    of ``scope.households`` they hold (register or hukou household ids there). None: nothing published yet."""
    register, hukou = staging_tables["poverty_register"].c, staging_tables["hukou"].c
    with engine.connect() as conn:
        if not conn.execute(select(func.count()).select_from(staging_tables["poverty_register"])).scalar():
            return None
        prefix = scope.region or ""
        villages = conn.execute(select(func.count(register.village_code.distinct())).where(
            register.village_code.startswith(prefix, autoescape=True))).scalar()
        held: set[str] = set()
        wanted = list(scope.households)
        for start in range(0, len(wanted), 1000):
            part = wanted[start:start + 1000]
            held |= set(conn.execute(select(register.household_id).distinct().where(
                register.household_id.in_(part), register.village_code.startswith(prefix, autoescape=True))).scalars())
            held |= set(conn.execute(select(hukou.hukou_household_id).distinct().where(
                hukou.hukou_household_id.in_(part), hukou.address_code.startswith(prefix, autoescape=True))).scalars())
    return int(villages), held
