"""The nightly flow: extract → normalise → cross-match → load, for every source at once.

The body reads as a table of contents; each step lives in ``flows/steps.py``.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger

from flows import steps
from jingzhun import warehouse
from expectations.suites import Tonight
from jingzhun.contract import SOURCES


@flow(name="nightly", log_prints=False, timeout_seconds=6 * 3600)
def nightly(landing: str, warehouse_url: str | None = None, as_of: date | str | None = None,
            config: str | None = None, region: str | None = None, dry_run: bool = False,
            work_dir: str = "jingzhun-work") -> dict:
    """Run every source of a landing folder into the warehouse; returns the run summary."""
    logger = get_run_logger()
    as_of = steps.parse_as_of(as_of)
    run_id = f"{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    run_dir = str(Path(work_dir) / "runs" / run_id)
    url = warehouse_url or warehouse.default_url(Path(work_dir))
    engine = warehouse.connect(url)
    parameters = {"landing": landing, "as_of": as_of, "config": config, "region": region, "dry_run": dry_run}
    warehouse.start_run(engine, run_id, as_of, landing, region, parameters)
    clock = steps.Stopwatch()
    try:
        with clock("read"):
            extracted = [f.result() for f in [steps.extract_source.submit(landing, s, run_dir) for s in SOURCES]]
        with clock("normalise"):
            staged = [f.result() for f in [steps.stage_source.submit(e, config, run_dir) for e in extracted]]
        with clock("validate"):
            snapshots = warehouse.snapshot_rows(engine)
            validated = [steps.validate_source(s, e, config, Tonight(as_of, date.today(), snapshots.get(s.source)),
                                               run_dir) for s, e in zip(staged, extracted)]
        with clock("match"):
            matched = steps.match_registers(validated, config, as_of, region, run_dir)
        with clock("load"):
            published = steps.publish_run(url, run_id, extracted, validated, matched, region, dry_run)
        with clock("report"):
            reports = steps.write_reports(url, run_id, run_dir, validated, dry_run)
    except Exception as exc:
        warehouse.finish_run(engine, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    sources = steps.source_summary(extracted, validated)
    timings = clock.seconds()
    status = "dry_run" if dry_run else "published"
    warehouse.finish_run(engine, run_id, status, timings, sources)
    failed = sorted(s for s, v in sources.items() if v["status"] == "failed")
    logger.info("run %s %s; sources failed: %s", run_id, status, ", ".join(failed) or "none")
    return {"run_id": run_id, "status": status, "warehouse": url, "run_dir": run_dir,
            "sources": sources, "timings": timings, "quarantined": published["quarantined"],
            "phases": clock.windows, "flags_raised": matched.raised,
            "task_seconds": {"read": sum(e.seconds for e in extracted), "normalise": sum(s.seconds for s in staged),
                             "validate": sum(v.seconds for v in validated) - sum(s.seconds for s in staged),
                             "match": matched.seconds, "load": published["seconds"]}, "flags_path": matched.flags_path, "not_evaluated": matched.not_evaluated,
            **reports}
