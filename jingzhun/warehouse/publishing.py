"""Write, audit, publish: a run's registers, flags and reports made visible in one transaction, or nothing of
them; and the checks before a run (its date against the last published one, a reconciliation's scope)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import (Engine, case, delete, func, select)

from jingzhun.privacy import Refused

from jingzhun.warehouse.flag_state import Scope, evidence_hashes, flag_keys, publish_flags
from jingzhun.warehouse.loads import AuditError, _publish_register, bulk_insert, drop_load_tables, write_registers
from jingzhun.warehouse.run_records import flags_transaction
from jingzhun.schema import (
    runs, run_files, validation_results, quarantine, run_rules, wap_flags, village_indicators, regions,
    staging_tables)

# ---------------------------------------------------------------- write, audit, publish

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
