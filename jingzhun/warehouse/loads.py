"""The dialect seam and the registers' loads: rows into a table within the caller's transaction (COPY on
PostgreSQL), registers from Arrow into load tables through ADBC, and a load table published in place of its
register."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import (Boolean, Date, DateTime, Engine, Float, Integer, MetaData, Table, delete)

from jingzhun.privacy import SafeError

from jingzhun.schema import (
    staging_tables)

# ---------------------------------------------------------------- the dialect seam

class AuditError(RuntimeError):
    """The run's staged output failed a check: nothing of it is published."""


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
        if sqlite:  # a register's pages stay in memory until its commit: readers are kept out only while it writes
            cur.execute(f"PRAGMA cache_size = -{SQLITE_WRITE_CACHE_KIB}")
        for source, parquet in registers.items():
            name = load_table_name(run_id, source)
            if not sqlite:
                cur.execute(f'DROP TABLE IF EXISTS "{name}"')
            written[source] = cur.adbc_ingest(name, _stored_batches(parquet, staging_tables[source], run_id,
                                                                   engine.dialect.name),
                                              mode="append" if sqlite else "create")
            if sqlite:  # one register a transaction: SQLite's lock is held for one register's commit at a time
                conn.commit()
        conn.commit()
    return written


# SQLite's page cache for a run's big writes (KiB): a transaction whose pages outgrow the cache spills them into the
# file under an exclusive lock, and the workbench's readers wait for the rest of it; within the cache they wait only
# for the commit. Memory is taken as pages are written, not reserved.
SQLITE_WRITE_CACHE_KIB = 512 * 1024


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
