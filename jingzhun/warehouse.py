"""The warehouse: schema, the one seam for SQL dialect differences, and the run's writes.

Everything takes an SQLAlchemy ``Engine``; the embedded default is a SQLite
file, production is PostgreSQL (``postgresql+psycopg://``). Only
:func:`bulk_insert` knows which one it talks to.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import (Boolean, Column, Date, DateTime, Engine, Float, Integer, MetaData, String, Table, Text,
                        create_engine, delete, insert, select, update)

from jingzhun.contract import SOURCES, Source

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(40), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running | published | dry_run | failed
    Column("as_of", Date, nullable=False),
    Column("landing", Text),
    Column("region", String(12)),
    Column("parameters", Text),     # JSON
    Column("timings", Text),        # JSON: stage -> seconds
    Column("sources", Text),        # JSON: source -> status and counts
    Column("error", Text),
)

run_files = Table(
    "run_files", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("source", String(40), nullable=False),
    Column("file", Text, nullable=False),
    Column("size", Integer), Column("sha256", String(64)), Column("format", String(8)),
    Column("encoding", String(16)), Column("sheet", Text), Column("header_row", Integer),
    Column("rows_read", Integer), Column("rows_not_data", Integer), Column("columns", Text), Column("error", Text),
)

quarantine = Table(
    "quarantine", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("source", String(40), nullable=False),
    Column("file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text),
)

_KIND_TYPES = {"id": String(32), "name": Text, "text": Text, "vocab": String(32), "code12": String(12),
               "date": Date, "money": Float, "number": Float, "year": Integer}
_DERIVED = {"poverty_register": [Column("unexited", Boolean)], "vehicles": [Column("vehicle_class", String(8))]}


def staging_table_name(source: str) -> str:
    return f"stg_{source}"


def _staging_table(source: Source) -> Table:
    cols = [Column("run_id", String(40), nullable=False), Column("_file", Text), Column("_row", Integer)]
    for c in source.columns:
        cols.append(Column(c.name, _KIND_TYPES[c.kind]))
        if c.kind == "id":
            cols += [Column(f"{c.name}_valid", Boolean), Column(f"{c.name}_problem", String(16))]
        if c.kind == "name":
            cols.append(Column(f"{c.name}_norm", Text))
    cols += [Column(c.name, c.type) for c in _DERIVED.get(source.name, [])]
    return Table(staging_table_name(source.name), metadata, *cols)


staging_tables = {name: _staging_table(source) for name, source in SOURCES.items()}


def default_url(work_dir: Path) -> str:
    return f"sqlite:///{(Path(work_dir) / 'warehouse.sqlite').resolve()}"


def connect(url: str) -> Engine:
    """An engine with the schema in place."""
    engine = create_engine(url, future=True)
    metadata.create_all(engine)
    return engine


# ---------------------------------------------------------------- the dialect seam

def bulk_insert(conn, table: Table, frame: pd.DataFrame) -> int:
    """Insert a DataFrame into ``table`` within the caller's transaction; COPY on PostgreSQL."""
    if frame.empty:
        return 0
    cols = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame[cols]
    if conn.dialect.name == "postgresql":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="\\N", quoting=csv.QUOTE_MINIMAL)
        names = ", ".join(f'"{c}"' for c in cols)
        with conn.connection.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv, NULL \'\\N\')') as copy:
                copy.write(buffer.getvalue())
        return len(frame)
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for start in range(0, len(records), 50_000):
        conn.execute(insert(table), records[start:start + 50_000])
    return len(frame)


# ---------------------------------------------------------------- run records

def now() -> datetime:
    return datetime.now(timezone.utc)


def start_run(engine: Engine, run_id: str, as_of, landing: str, region: str | None, parameters: dict) -> None:
    with engine.begin() as conn:
        conn.execute(insert(runs).values(run_id=run_id, started_at=now(), status="running", as_of=as_of,
                                         landing=landing, region=region,
                                         parameters=json.dumps(parameters, ensure_ascii=False, default=str)))


def finish_run(engine: Engine, run_id: str, status: str, timings: dict | None = None,
               sources: dict | None = None, error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(
            finished_at=now(), status=status, error=error,
            timings=json.dumps(timings or {}), sources=json.dumps(sources or {}, ensure_ascii=False)))


def publish(engine: Engine, run_id: str, files: pd.DataFrame, quarantined: pd.DataFrame,
            registers: dict[str, pd.DataFrame]) -> None:
    """In one transaction: the run's files and quarantine, and the new snapshot of each loaded register.

    A register that was not loaded tonight (missing or blocked) keeps its previous snapshot.
    """
    with engine.begin() as conn:
        bulk_insert(conn, run_files, files.assign(run_id=run_id))
        bulk_insert(conn, quarantine, quarantined.assign(run_id=run_id))
        for name, frame in registers.items():
            table = staging_tables[name]
            conn.execute(delete(table))
            bulk_insert(conn, table, frame.assign(run_id=run_id))


def read_run(engine: Engine, run_id: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one()
    return dict(row)
