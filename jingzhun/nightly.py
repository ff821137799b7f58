"""The nightly flow: extract → normalise → validate → cross-match → load → report, for every source at once.

:func:`run_landing` wires the steps (each lives in ``jingzhun/steps.py``) and reads as a table of contents;
the ``nightly`` flow runs it on everything, the ``reconcile`` flow (``jingzhun/reconcile.py``) on a scope.
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.states import State

from jingzhun import clock, deployment, steps, warehouse
from jingzhun.contract import SOURCES
from jingzhun.landing import load_database_sources
from jingzhun.policy import PolicyError, load_policy
from jingzhun.privacy import describe, install_log_masking, private_files
from jingzhun.storage import said_plainly, storage_problem
from jingzhun.warehouse import Scope

FLOW_TIMEOUT_SECONDS = 6 * 3600
EngineName = Literal["duckdb", "spark"]  # where the gate and the rules run (jingzhun.engine.backend_for)
install_log_masking()  # a worker started by a deployment masks identity numbers in its logs too
deployment.install_file()  # a worker's own sources and rules (JINGZHUN_DEPLOYMENT), before flows read the contract


def work_folder(work_dir: str | None) -> str:
    """Where runs keep their files: the folder given, else ``JINGZHUN_WORK``, else ``jingzhun-work``."""
    return work_dir or os.environ.get("JINGZHUN_WORK") or "jingzhun-work"


@flow(name="nightly", log_prints=False, timeout_seconds=FLOW_TIMEOUT_SECONDS)
def nightly(landing: str, warehouse_url: str | None = None, as_of: date | None = None, config: str | None = None,
            region: str | None = None, dry_run: bool = False, work_dir: str | None = None,
            sources_config: str | None = None, lock_wait_seconds: float = 0,
            deployment_file: str | None = None, engine: EngineName = "duckdb", spark_master: str | None = None,
            today: date | None = None, earlier: bool = False) -> dict:
    """Run every source of a landing folder into the warehouse; returns the run summary. Another run on the same
    warehouse is waited for up to ``lock_wait_seconds``, then this one is refused (:class:`WarehouseBusy`).
    ``today``: the run's day (no record may be dated after the later of it and ``as_of``); by default the real day
    in the policy's time zone (:func:`jingzhun.clock.today`). A run dated before the last published one is refused
    (:class:`jingzhun.warehouse.EarlierThanPublished`) unless it is a dry run or ``earlier`` is given: a deliberate
    re-run that changes no decided flag.
    ``engine``: where the quality gate and the rules run, in-process (``duckdb``) or on Spark (``spark``, at
    ``spark_master``, else ``JINGZHUN_SPARK_MASTER``, else the policy's ``spark.master``)."""
    warehouse.refuse_password_parameter(warehouse_url)
    return run_landing(landing, warehouse_url=warehouse_url, as_of=as_of, config=config,
                       scope=Scope(region or None, keep_decisions=earlier),
                       dry_run=dry_run, work_dir=work_dir, sources_config=sources_config,
                       lock_wait_seconds=lock_wait_seconds, deployment_file=deployment_file, engine=engine,
                       spark_master=spark_master, today=today)


@said_plainly()  # a full disk, a read-only or busy warehouse: one line, also from the run's own bookkeeping
def run_landing(landing: str, *, warehouse_url: str | None, as_of: date | None, config: str | None, scope: Scope,
                dry_run: bool, work_dir: str | None, sources_config: str | None,
                sources: list[str] | None = None, lock_wait_seconds: float = 0,
                deployment_file: str | None = None, engine: EngineName = "duckdb", spark_master: str | None = None,
                today: date | None = None) -> State:
    """One run: the sources asked for (all by default) from the landing folder or their databases, the flags
    inside ``scope``. Ends Completed, named "Partially loaded" when a source failed or was blocked."""
    private_files()  # before anything is written: the run folder, the staged registers, the warehouse file
    logger = get_run_logger()
    deployment.install_file(deployment_file)  # its sources and rules (refused, naming the field, if unusable)
    policy = load_policy(config)  # the whole policy file checked before any work (PolicyError names the key)
    today = today or clock.today(policy.time_zone)
    as_of = as_of or today
    if not any(year <= as_of.year for year in policy.income_line):
        raise PolicyError(f"as_of {as_of}: the policy has no income_line for {as_of.year} or earlier")
    work_dir = work_folder(work_dir)
    run_id = f"{clock.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"  # sorts by start time
    run_dir = str(Path(work_dir) / "runs" / run_id)
    url = warehouse.resolve_url(warehouse_url, work_dir)
    db = warehouse.connect(url)
    warehouse.check_as_of(db, as_of, scope.keep_decisions, dry_run)  # time does not run backwards by accident
    databases = load_database_sources(sources_config)
    parameters = {"landing": landing, "as_of": as_of, "config": config, "region": scope.region,
                  "households": list(scope.households), "sources": sources, "dry_run": dry_run,
                  "sources_config": sources_config, "deployment_file": deployment_file, "engine": engine,
                  "spark_master": spark_master, "today": today}
    with warehouse.run_lock(db, lock_wait_seconds):
        warehouse.start_run(db, run_id, as_of, landing, scope.region, parameters)
        stopwatch = steps.Stopwatch()
        try:
            with stopwatch("read"):
                extracted = steps.extract_all(landing, sources or list(SOURCES), databases, config, run_dir)
                regions = steps.read_regions_reference(landing, config, run_dir)
            steps.progress(logger, stopwatch, "read", extracted)
            with stopwatch("normalise"):
                staged = steps.stage_all(extracted, config, run_dir)
            steps.progress(logger, stopwatch, "normalise", staged)
            steps.check_region_tonight(staged, scope)
            with stopwatch("validate"):
                validated = steps.validate_all(staged, extracted, config, steps.Tonight(as_of, today),
                                               warehouse.snapshot_rows(db), run_dir, engine, spark_master)
            steps.progress(logger, stopwatch, "validate", validated)
            with stopwatch("match"):
                matched = steps.match_registers(validated, config, as_of, scope, run_dir, engine, spark_master)
            steps.progress(logger, stopwatch, "match", f"{matched.raised} flags raised, {len(matched.not_evaluated)} rules "
                                                   f"not evaluated")
            sources_done = steps.source_summary(extracted, validated)
            with stopwatch("report"):
                reports = steps.write_reports(run_id, run_dir, validated, sources_done)
            steps.progress(logger, stopwatch, "report", "validation workbook and Data Docs written")
            with stopwatch("load"):
                published = steps.publish_run(url, run_id, run_dir, extracted, validated, matched, scope, dry_run,
                                               regions)
            steps.progress(logger, stopwatch, "load", "dry run: nothing published" if dry_run else "published")
        except Exception as exc:
            _mark_failed(db, run_id, storage_problem(exc) or exc, logger)
            raise
        status, timings = ("dry_run" if dry_run else "published"), stopwatch.seconds()
        warehouse.finish_run(db, run_id, status, timings, sources_done)
    reports = {**reports, **published["reports"]}
    movements = {} if dry_run else warehouse.flag_summary(db, run_id)
    steps.publish_artifacts(url, run_id, sources_done, reports, dry_run)
    result = {"run_id": run_id, "status": status, "warehouse": url, "run_dir": run_dir, "sources": sources_done,
              "timings": timings, "quarantined": published["quarantined"], "phases": stopwatch.windows,
              "flags_raised": matched.raised, "flags": movements, "flags_path": matched.flags_path, "not_evaluated": matched.not_evaluated,
              "regions": regions,
              "task_seconds": {"read": sum(e.seconds for e in extracted), "normalise": sum(s.seconds for s in staged),
                               "validate": sum(v.seconds for v in validated) - sum(s.seconds for s in staged),
                               "match": matched.seconds, "load": published["seconds"]}, **reports}
    state = steps.final_state(result)
    logger.info("run %s %s: %s", run_id, status, state.message)
    return state


def _mark_failed(db, run_id: str, exc: BaseException, logger) -> None:
    """The run's record marked failed, saying why; when even that cannot be written (the disk is still full),
    a line says so and the next run marks it (:func:`jingzhun.warehouse.start_run`)."""
    try:
        warehouse.finish_run(db, run_id, "failed", error=describe(exc))
    except Exception as again:  # noqa: BLE001 - described, and the run's own error is what is raised
        logger.error("run %s could not be marked failed (%s); the next run marks it", run_id,
                     describe(storage_problem(again) or again))
