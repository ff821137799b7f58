"""Where the warehouse is and how to reach it: its URL (a password never in it), the engine on a
migrated schema (Alembic), and a deployment's register tables widened to its columns."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text as sql_text
from sqlalchemy import (Connection, Engine, Table, create_engine)
from sqlalchemy.engine import make_url

from jingzhun import clock
from jingzhun.privacy import Refused, url_secret

from jingzhun.schema import metadata, DEPLOYMENT_TABLES


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


MIGRATIONS = Path(__file__).resolve().parents[2] / "sql" / "migrations"
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
    sqlite = parsed.get_backend_name() == "sqlite"
    engine = create_engine(parsed, future=True, hide_parameters=True,
                           connect_args={"timeout": SQLITE_BUSY_SECONDS} if sqlite else {})
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


# how long a statement on an embedded warehouse waits for another process's write (a publish's swap holds SQLite's
# lock for seconds on a large county) before it is refused as busy. No write-ahead log: the registers are written
# through ADBC's own copy of SQLite, and two copies of SQLite in one process must not share a WAL (the first to close
# removes it under the other).
SQLITE_BUSY_SECONDS = 15.0


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


def now() -> datetime:
    """This instant, in UTC, as stored (:func:`jingzhun.clock.now`)."""
    return clock.now()
