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

flags = Table(
    "flags", metadata,
    Column("flag_key", String(48), primary_key=True),  # stable identity: rule and household / person
    Column("rule_code", String(32), nullable=False, index=True),
    Column("direction", String(8), nullable=False),
    Column("household_id", String(64), nullable=False),
    Column("hukou_household_id", String(64), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("village_code", String(12), nullable=False, index=True),
    Column("evidence", Text, nullable=False),
    Column("evidence_text", Text),
    Column("evidence_hash", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # open | confirmed | dismissed | resolved
    Column("first_seen_run", String(40), nullable=False),
    Column("last_seen_run", String(40), nullable=False),
    Column("resolved_run", String(40)),
)

run_rules = Table(
    "run_rules", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("rule_code", String(32), nullable=False),
    Column("evaluated", Boolean, nullable=False),
    Column("reason", Text),
    Column("raised", Integer),
)

FLAG_EXPORT_COLUMNS = ["rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
                       "evidence", "status", "first_seen_run", "last_seen_run"]

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
            registers: dict[str, pd.DataFrame], raised: pd.DataFrame, rules: pd.DataFrame,
            region: str | None) -> None:
    """In one transaction: the run's files, quarantine, rule outcomes, the new snapshot of each loaded
    register and the flags. A register not loaded tonight keeps its previous snapshot; flags of rules
    not evaluated keep their state.
    """
    with engine.begin() as conn:
        bulk_insert(conn, run_rules, rules.assign(run_id=run_id))
        publish_flags(conn, run_id, raised, set(rules.loc[rules["evaluated"], "rule_code"]), region)
        bulk_insert(conn, run_files, files.assign(run_id=run_id))
        bulk_insert(conn, quarantine, quarantined.assign(run_id=run_id))
        for name, frame in registers.items():
            table = staging_tables[name]
            conn.execute(delete(table))
            bulk_insert(conn, table, frame.assign(run_id=run_id))


def flag_keys(frame: pd.DataFrame) -> pd.Series:
    """The stable identity of a flag: its rule and whom it is about (household or person)."""
    text = frame["rule_code"] + "|" + frame["household_id"] + "|" + frame["hukou_household_id"] + "|" + frame["id_number"]
    return _digest(text)


def evidence_hashes(frame: pd.DataFrame) -> pd.Series:
    """A digest of what the evidence says, without the date it was computed on."""
    body = frame["evidence"].str.replace(r'^\{"as_of": "[^"]*", ', "{", regex=True)
    return _digest(body)


def _digest(text: pd.Series) -> pd.Series:
    """128-bit digests of strings, computed column-wise: two keyed 64-bit hashes, written in decimal."""
    if text.empty:
        return pd.Series([], index=text.index, dtype="str")
    a, b = (pd.util.hash_pandas_object(text.astype(object), index=False, hash_key=key).to_numpy().astype(str)
            for key in ("jingzhun-flag-01", "jingzhun-flag-02"))
    return pd.Series(a, index=text.index, dtype="str") + "-" + pd.Series(b, index=text.index, dtype="str")


def merge_flags(current: pd.DataFrame, raised: pd.DataFrame, run_id: str, evaluated: set[str],
                region: str | None) -> pd.DataFrame:
    """The flags table after this run: raised flags opened or refreshed; open flags of evaluated rules in
    scope that were not raised become resolved; everything else keeps its state."""
    raised = raised.assign(flag_key=flag_keys(raised), evidence_hash=evidence_hashes(raised))
    old = current.set_index("flag_key")
    new = raised.set_index("flag_key")
    seen = new.index.intersection(old.index)
    fresh = new.loc[new.index.difference(old.index)].assign(
        status="open", first_seen_run=run_id, last_seen_run=run_id, resolved_run=None)
    kept = new.loc[seen].assign(first_seen_run=old.loc[seen, "first_seen_run"], last_seen_run=run_id,
                                status=old.loc[seen, "status"].replace({"resolved": "open"}), resolved_run=None)
    rest = old.loc[old.index.difference(new.index)].copy()
    in_scope = rest["rule_code"].isin(evaluated) & rest["status"].eq("open")
    if region:
        in_scope &= rest["village_code"].str.startswith(region)
    rest.loc[in_scope, "status"] = "resolved"
    rest.loc[in_scope, "resolved_run"] = run_id
    return pd.concat([fresh, kept, rest]).reset_index()


def publish_flags(conn, run_id: str, raised: pd.DataFrame, evaluated: set[str], region: str | None) -> None:
    current = pd.read_sql(select(flags), conn)
    merged = merge_flags(current, raised, run_id, evaluated, region)
    conn.execute(delete(flags))
    bulk_insert(conn, flags, merged)


def read_run(engine: Engine, run_id: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one()
    return dict(row)
