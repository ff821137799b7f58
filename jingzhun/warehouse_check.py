"""Is the warehouse a command names the one the person meant? Checked before any work, in one line, exit 2.

Only ``run`` (and ``demo``) may create an embedded SQLite warehouse, in a folder that exists, and say so; ``users``
takes one that exists before its first published run (accounts are made before the first night); every other
command refuses a warehouse that does not exist or holds no published run (a mistyped path must not publish
into, or blame every row of, a new empty database). A malformed URL, an unknown database kind or an unreachable
server is one line naming the host and port, never the password, and no traceback.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from jingzhun.privacy import Refused
from jingzhun.storage import StorageBusy, storage_problem

CONNECT_TIMEOUT_SECONDS = 10


class WarehouseUnusable(Refused):
    """The warehouse a command names cannot be the one meant (names the file or host and port, not the password)."""


def check_warehouse(url: str, may_create: bool, default: bool = False, unpublished: bool = False) -> str | None:
    """Refuse a warehouse URL that cannot be meant; returns a line to print when a new one will be created
    (``may_create``: the command is ``run``; ``default``: the URL is the work folder's own, whose folder is made;
    ``unpublished``: one that exists need not hold a published run yet — accounts are made before the first night)."""
    parsed = parse_url(url)
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        return _sqlite(Path(parsed.database or ""), may_create, default, unpublished)
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise WarehouseUnusable(f"--warehouse: 未知的数据库类型 {parsed.drivername!r} (unknown database kind; "
                                f"PostgreSQL is postgresql+psycopg://…)") from None
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
    engine = create_engine(parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with engine.connect() as conn:
            published = _published(conn) if not (may_create or unpublished) else 1
    except OperationalError:
        raise WarehouseUnusable(f"--warehouse: 无法连接数据库 {where} (cannot reach the warehouse at {where})") from None
    finally:
        engine.dispose()
    if not published:
        raise WarehouseUnusable(f"--warehouse: {where} 中没有已发布的运行 (holds no published run; run "
                                f"`jingzhun run` first, or check the name)")
    return None


def parse_url(url: str):
    """The URL parsed, or refused in one line (a malformed URL is never echoed: it may hold a password)."""
    try:
        return make_url(url)
    except ArgumentError:
        raise WarehouseUnusable("--warehouse: 不是数据库地址 (not a database URL; e.g. sqlite:///path/warehouse.sqlite "
                                "or postgresql+psycopg://user@host:5432/name)") from None


def _sqlite(path: Path, may_create: bool, default: bool, unpublished: bool = False) -> str | None:
    if path.is_file():
        if may_create:
            return None
        engine = create_engine(f"sqlite:///{path}")
        try:
            with engine.connect() as conn:
                published = _published(conn)
                schema = published or conn.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'").scalar()
        except DatabaseError:  # not a database jingzhun can read
            published = schema = 0
        finally:
            engine.dispose()
        if unpublished and not schema:
            raise WarehouseUnusable(f"--warehouse: {path} 不是精准数据仓库 (not a jingzhun warehouse: check the path)")
        if not (published or unpublished):
            raise WarehouseUnusable(f"--warehouse: {path} 中没有已发布的运行 (holds no published run)")
        return None
    if not may_create:
        raise WarehouseUnusable(f"--warehouse: 数据仓库 {path} 不存在,请检查路径 (no warehouse at {path}: check the path)")
    if not default and not path.parent.is_dir():
        raise WarehouseUnusable(f"--warehouse: 文件夹 {path.parent} 不存在,不新建数据仓库 (no folder {path.parent}: no new "
                                f"warehouse is created there)")
    return f"新建数据仓库 (new warehouse created at) {path}"


def _published(conn) -> int:
    """How many runs published into the database (each writes its rules' outcome in the publish transaction; 0
    where it is no jingzhun warehouse)."""
    from jingzhun.warehouse import run_rules

    try:
        return int(conn.execute(select(func.count(run_rules.c.run_id.distinct()))).scalar())
    except Exception as exc:  # noqa: BLE001 - no runs table: not a warehouse (yet), unless it is being written
        busy = storage_problem(exc, "--warehouse")
        if isinstance(busy, StorageBusy):
            raise busy from None
        return 0
