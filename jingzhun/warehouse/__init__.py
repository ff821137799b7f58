"""The warehouse: where every run's registers, flags and decisions are kept, on SQLite (embedded, the default)
or PostgreSQL (``postgresql+psycopg://``), reached only through an SQLAlchemy ``Engine``.

Split by concern; its clients know it as one module (``warehouse.connect``, ``warehouse.flags``, …):

- :mod:`~jingzhun.warehouse.connection` — the URL (never its password), the engine on a migrated schema;
- :mod:`~jingzhun.warehouse.loads` — the one dialect seam (bulk inserts; Arrow into load tables through ADBC);
- :mod:`~jingzhun.warehouse.run_records` — one run at a time, one writer of the flags, each run's record;
- :mod:`~jingzhun.warehouse.flag_state` — a flag's identity and digest, and tonight's flags merged into the chain's;
- :mod:`~jingzhun.warehouse.publishing` — write, audit, publish in one transaction; the checks before a run;
- the tables themselves are :mod:`jingzhun.schema`'s.
"""

from __future__ import annotations

from jingzhun.schema import (  # noqa: F401 - the tables, known to clients as warehouse.flags and so on
    metadata, runs, run_files, validation_results, quarantine, flags, run_rules, wap_flags, reviews,
    publicity_posts, village_indicators, regions, steps, users, sessions, api_tokens, audit_log, tickets,
    FLAG_EXPORT_COLUMNS, staging_table_name, staging_tables, DEPLOYMENT_TABLES, add_source_table,
    remove_source_tables)
from jingzhun.warehouse.connection import (  # noqa: F401
    default_url, resolve_url, PASSWORD_VARIABLE, refuse_password_parameter, without_password, MIGRATIONS, connect,
    SQLITE_BUSY_SECONDS, widen, now)
from jingzhun.warehouse.loads import (  # noqa: F401
    AuditError, bulk_insert, LOAD_BATCH_ROWS, load_table_name, _adbc, write_registers, drop_load_tables, COPY_NULL,
    UnstorableValue, SQLITE_SLICE_ROWS, sqlite_insert_sql, sqlite_rows)
from jingzhun.warehouse.run_records import (  # noqa: F401
    WarehouseBusy, LOCK_NAME, run_lock, PUBLISH_WAIT_SECONDS, flags_transaction, start_run, snapshot_rows,
    finish_run)
from jingzhun.warehouse.flag_state import (  # noqa: F401
    FLAG_KEY_CHARS, flag_identities, flag_keys, evidence_hashes, sha256_hex, FLAG_STATE, Scope, merge_flags,
    publish_flags, record_moves, flag_movements, flag_summary)
from jingzhun.warehouse.publishing import (  # noqa: F401
    publish, audit, EarlierThanPublished, latest_as_of_published, check_as_of, UnknownScope, check_scope,
    register_scope)

__all__ = [
    'metadata', 'runs', 'run_files', 'validation_results', 'quarantine', 'flags', 'run_rules', 'wap_flags',
    'reviews', 'publicity_posts', 'village_indicators', 'regions', 'steps', 'users', 'sessions', 'api_tokens',
    'audit_log', 'tickets', 'FLAG_EXPORT_COLUMNS', 'staging_table_name', 'staging_tables', 'DEPLOYMENT_TABLES',
    'add_source_table', 'remove_source_tables', 'default_url', 'resolve_url', 'PASSWORD_VARIABLE',
    'refuse_password_parameter', 'without_password', 'MIGRATIONS', 'connect', 'SQLITE_BUSY_SECONDS', 'widen', 'now',
    'AuditError', 'bulk_insert', 'LOAD_BATCH_ROWS', 'load_table_name', '_adbc', 'write_registers',
    'drop_load_tables', 'COPY_NULL', 'UnstorableValue', 'SQLITE_SLICE_ROWS', 'sqlite_insert_sql', 'sqlite_rows',
    'WarehouseBusy', 'LOCK_NAME', 'run_lock', 'PUBLISH_WAIT_SECONDS', 'flags_transaction', 'start_run',
    'snapshot_rows', 'finish_run', 'FLAG_KEY_CHARS', 'flag_identities', 'flag_keys', 'evidence_hashes',
    'sha256_hex', 'FLAG_STATE', 'Scope', 'merge_flags', 'publish_flags', 'record_moves', 'flag_movements',
    'flag_summary', 'publish', 'audit', 'EarlierThanPublished', 'latest_as_of_published', 'check_as_of',
    'UnknownScope', 'check_scope', 'register_scope'
]
