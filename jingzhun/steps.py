"""The nightly run's steps as Prefect tasks, at the grain of one source and one step.

Tasks pass file paths (Parquet under the run folder), never large frames. Every task has a time
limit; only extraction touches the outside world (files, department databases), so only it retries.
A source whose task fails is recorded as failed and the others go on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import shutil
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.states import Completed, State

from jingzhun import labels, warehouse
from jingzhun.catalogue import RULES, current
from jingzhun.contract import SOURCES
from jingzhun.engine import FLAG_COLUMNS, Engine, backend_for
from jingzhun.landing import DatabaseSource
from jingzhun.policy import Policy, load_policy
from jingzhun.privacy import contained, describe
from jingzhun.quality.gate import RESULT_COLUMNS, build_data_docs, run_gate, unreadable_source
from jingzhun.quality.suites import Tonight
from jingzhun.quality_report import write_validation_workbook
from jingzhun.readers import read_source
from jingzhun.review import write_review_workbook
from jingzhun.staging import QUARANTINE_COLUMNS, quarantine_rows, raw_rows_at, stage_file, write_usable_rows
from jingzhun.warehouse import Scope


class Stopwatch:
    """Wall-clock windows of the run's phases (epoch seconds), for the run record and the benchmark. Each phase
    ends by giving back the memory it freed (:func:`release_memory`), inside its window."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[float, float]] = {}

    @contextmanager
    def __call__(self, phase: str):
        start = time.time()
        try:
            yield
        finally:
            release_memory()
            self.windows[phase] = (start, time.time())

    def seconds(self) -> dict[str, float]:
        out = {phase: round(end - start, 3) for phase, (start, end) in self.windows.items()}
        if self.windows:
            out["total"] = round(max(e for _, e in self.windows.values()) - min(s for s, _ in self.windows.values()), 3)
        return out


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def release_memory() -> None:
    """Give back to the system what a stage freed: glibc and Arrow's allocator keep freed memory for reuse, so
    without this the next stage (the matching engine's own memory above all) starts on top of the last one's peak."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if hasattr(_LIBC, "malloc_trim"):  # glibc; other C libraries return memory their own way
        _LIBC.malloc_trim(0)


STAGE_WORDS = {"read": "读取 (read)", "normalise": "规范化 (normalise)", "validate": "校验 (validate)",
               "match": "比对 (cross-match)", "report": "报告 (reports)", "load": "入库 (load)"}


def progress(logger, clock: Stopwatch, phase: str, outcome) -> None:
    """One line per stage for the person watching: what it did to the sources (by status) or ``outcome``, and
    how long it took."""
    if isinstance(outcome, list):
        counts = Counter(item.status for item in outcome)
        outcome = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    logger.info("%s: %s (%.1f s)", STAGE_WORDS[phase], outcome, clock.seconds().get(phase, 0.0))


@dataclass
class Extracted:
    """One source as read tonight: where its raw rows are, and what was read."""

    source: str
    status: str                     # loaded | missing | failed | skipped (not asked for)
    raw_path: str = ""
    not_data_path: str = ""
    files: list[dict] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0


@dataclass
class StagedSource:
    """One source after staging (``checked_path``: every data row, typed, with its reason) and, once
    validated, after the gate (``rows_path``: the usable rows; status ``blocked`` when a source-level
    expectation failed)."""

    source: str
    status: str                     # loaded | missing | failed | skipped | blocked
    checked_path: str = ""
    rows_path: str = ""
    quarantine_path: str = ""
    results_path: str = ""
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    message: str = ""
    seconds: float = 0.0
    cleaned: dict[str, int] = field(default_factory=dict)  # per column: values whose control characters were removed


# Only extraction (files and department databases) is retried. Tasks have no time limit of their own: they run
# in worker threads, where Prefect cannot interrupt them (it warned so once per task and run); the flow's limit
# holds, and a department database gets a statement timeout in its URL (README).
EXTRACT_RETRIES, EXTRACT_RETRY_DELAYS = 2, [2, 10]


@task(name="extract", retries=EXTRACT_RETRIES, retry_delay_seconds=EXTRACT_RETRY_DELAYS,
      task_run_name="extract-{source}")
@contained("extract", lambda landing, source, *a, **k: source)
def extract_source(landing: str, source: str, run_dir: str, config: str | None = None,
                   database: DatabaseSource | None = None, wanted: bool = True) -> Extracted:
    """Read every file of one source (or its database query) into ``raw/<source>.parquet`` (text cells,
    nothing changed)."""
    if not wanted:
        return Extracted(source, "skipped", message="本次核对未要求 (not requested by this reconciliation)")
    started = time.perf_counter()
    data, not_data, records = read_source(Path(landing), SOURCES[source], database, load_policy(config).limits)
    files = [r.as_dict() for r in records]
    if not any(not r.ignored for r in records):
        return Extracted(source, "missing", files=files, message="没有收到文件 (no files tonight)")
    errors = [r.error for r in records if r.error]
    if errors:
        return Extracted(source, "failed", files=files, message="; ".join(errors),
                         seconds=time.perf_counter() - started)
    out = Path(run_dir) / "raw"
    out.mkdir(parents=True, exist_ok=True)
    raw_path, not_data_path = out / f"{source}.parquet", out / f"{source}.not_data.parquet"
    data.astype("str").to_parquet(raw_path, index=False)
    not_data.astype("str").to_parquet(not_data_path, index=False)
    return Extracted(source, "loaded", str(raw_path), str(not_data_path), files, seconds=time.perf_counter() - started)


def extract_all(landing: str, wanted: list[str], databases: dict[str, DatabaseSource], config: str | None,
                run_dir: str) -> list[Extracted]:
    """Every source extracted concurrently; one whose extraction still fails after its retries is recorded as
    failed (with the error) and the others go on."""
    futures = {s: extract_source.submit(landing, s, run_dir, config, databases.get(s), s in wanted) for s in SOURCES}
    return [settled(f, lambda error, s=s: Extracted(s, "failed", message=f"提取失败 (extraction failed after "
                                                                      f"{EXTRACT_RETRIES} retries): {error}"))
            for s, f in futures.items()]


@task(name="regions")
@contained("regions reference")
def read_regions_reference(landing: str, config: str | None, run_dir: str) -> dict:
    """The names of division codes sent tonight (the policy's ``regions_file``, the landing folder's
    ``regions/``), to ``regions.parquet``: ``{"path", "names", "message"}``. A reference that cannot be used is
    reported and the warehouse keeps the last one: names are labels, the run goes on without new ones. ``files``:
    the record of each file read, kept with the run's files."""
    policy = load_policy(config)
    files = labels.regions_files(landing, policy.regions_file)
    if not files:
        return {"path": "", "names": 0, "message": "", "files": []}
    names, records, errors = labels.read_regions_files(files, policy.limits)
    if errors:
        return {"path": "", "names": 0, "files": records,
                "message": f"区划名称未更新 (regions reference not used): {'; '.join(errors)}"}
    path = Path(run_dir) / "regions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    names.to_parquet(path, index=False)
    return {"path": str(path), "names": len(names), "message": "", "files": records}


def stage_all(extracted: list[Extracted], config: str | None, run_dir: str) -> list[StagedSource]:
    """Every source staged concurrently; one whose staging raises is recorded as failed, the others go on."""
    futures = [stage_source.submit(e, config, run_dir) for e in extracted]
    return [settled(f, lambda error, e=e: StagedSource(e.source, "failed", message=f"整理失败 (staging failed): {error}"))
            for e, f in zip(extracted, futures)]


def check_region_tonight(staged: list[StagedSource], scope: Scope) -> None:
    """Refuse a reconciliation whose region no village of tonight's poverty register lies under (what the
    published register cannot tell before the first night)."""
    register = next((s for s in staged if s.source == "poverty_register" and s.status == "loaded"), None)
    if not scope.region or register is None:
        return
    villages = pd.read_parquet(register.checked_path, columns=["village_code"])["village_code"].dropna().astype("str")
    if not villages.str.startswith(scope.region).any():
        raise warehouse.UnknownScope(f"unknown region {scope.region!r}: no village of tonight's poverty register "
                                     f"has a code starting with it")


def validate_all(staged: list[StagedSource], extracted: list[Extracted], config: str | None, tonight: Tonight,
                 snapshots: dict[str, int], run_dir: str, engine: str = "duckdb",
                 spark_master: str | None = None) -> list[StagedSource]:
    """The quality gate for every source, one after the other (they share the run's Great Expectations project);
    one whose validation raises is recorded as failed, the others go on (``tonight``: the run's as_of and today;
    each source's last snapshot is added). With the ``spark`` engine, Spark runs the suites where the checked
    files lie."""
    return [settled(validate_source.submit(s, e, config, replace(tonight, previous_rows=snapshots.get(s.source)), run_dir,
                                           engine, spark_master),
                    lambda error, s=s: replace(s, status="failed", message=f"校验失败 (validation failed): {error}"))
            for s, e in zip(staged, extracted)]


def settled(future, on_error):
    """A task's result, or ``on_error(text)`` when the task failed (its exception named, no traceback)."""
    result = future.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return on_error(describe(result))
    return result


@task(name="stage", task_run_name="stage-{extracted.source}")
@contained("staging", lambda extracted, *a, **k: extracted.source)
def stage_source(extracted: Extracted, config: str | None, run_dir: str) -> StagedSource:
    """Cast and normalise one source; quarantine what cannot be used (and the non-data rows) with reasons."""
    if extracted.status != "loaded":
        return StagedSource(extracted.source, extracted.status, message=extracted.message)
    started = time.perf_counter()
    out = Path(run_dir) / "staged"
    out.mkdir(parents=True, exist_ok=True)
    checked_path, q_path = out / f"{extracted.source}.checked.parquet", out / f"{extracted.source}.quarantine.parquet"
    staged = stage_file(extracted.raw_path, extracted.source, load_policy(config), checked_path)
    not_data = pd.read_parquet(extracted.not_data_path)
    skipped = pd.DataFrame({"source": extracted.source, "file": not_data.get("_file", pd.Series(dtype="str")),
                            "row": not_data.get("_row", pd.Series(dtype="str")).astype("int64"),
                            "reason": not_data.get("_reason", pd.Series(dtype="str")), "raw": ""},
                           columns=QUARANTINE_COLUMNS)
    pd.concat([staged.quarantine, skipped], ignore_index=True).to_parquet(q_path, index=False)
    return StagedSource(extracted.source, "loaded", checked_path=str(checked_path), quarantine_path=str(q_path),
                        rows_read=staged.rows_read, rows_quarantined=len(staged.quarantine),
                        seconds=time.perf_counter() - started, cleaned=staged.cleaned)


@task(name="validate", task_run_name="validate-{staged.source}")
@contained("validation", lambda staged, *a, **k: staged.source)
def validate_source(staged: StagedSource, extracted: Extracted, config: str | None, tonight: Tonight,
                    run_dir: str, engine: str = "duckdb", spark_master: str | None = None) -> StagedSource:
    """The quality gate for one source: its suite on every checked row (read once; by Spark with the ``spark``
    engine), the gate's row quarantine, and the source blocked when a source-level expectation fails. Writes the
    usable rows and the results."""
    out = Path(run_dir) / "validated"
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / f"{staged.source}.results.parquet"
    if staged.status != "loaded":
        unreadable_source(staged.source, extracted.files).to_parquet(results_path, index=False)
        return replace(staged, results_path=str(results_path))
    started = time.perf_counter()
    policy = load_policy(config)
    outcome = run_gate(staged.checked_path, staged.source, file_ages(extracted.files, tonight.as_of), policy, tonight,
                       Path(run_dir), run_name=Path(run_dir).name,
                       spark=spark_session(policy, spark_master, run_dir) if engine == "spark" else None)
    outcome.results.to_parquet(results_path, index=False)
    places = outcome.reasons.index.to_numpy()
    gated = np.zeros(pq.read_metadata(staged.checked_path).num_rows, dtype="bool")
    gated[places] = True
    if len(places):
        raw = raw_rows_at(extracted.raw_path, places, policy.engine.batch_rows)
        quarantined = pd.concat([pd.read_parquet(staged.quarantine_path),
                                 quarantine_rows(raw, staged.source, outcome.reasons)], ignore_index=True)
        quarantined.to_parquet(staged.quarantine_path, index=False)
    rows_path = out / f"{staged.source}.parquet"
    rows_valid = write_usable_rows(staged.checked_path, gated, rows_path, policy.engine.batch_rows)
    status = "blocked" if outcome.blocked_because else "loaded"
    message = "质量检查未通过 (failed the quality gate): " + "; ".join(outcome.blocked_because) if outcome.blocked_because else ""
    quarantined_here = len(places)
    del outcome, gated
    release_memory()  # before the next register is validated (in another thread, whose allocator keeps its own)
    return replace(staged, status=status, rows_path=str(rows_path), results_path=str(results_path),
                   rows_valid=rows_valid, rows_quarantined=staged.rows_quarantined + quarantined_here, message=message,
                   seconds=staged.seconds + time.perf_counter() - started)


def spark_scratch(run_dir: str) -> Path:
    """Where Spark spills: the work folder (beside the runs), which outlives any one run, as its session serves the
    process."""
    return Path(run_dir).parents[1] / "spark-local"


def spark_session(policy: Policy, spark_master: str | None, run_dir: str):
    """The process's Spark session, for the quality gate (the matching engine's backend takes the same one)."""
    from jingzhun.spark import session

    return session(policy.spark, spark_master, spark_scratch(run_dir))


def file_ages(files: list[dict], as_of: date) -> dict[str, float]:
    """Per file label: whole days from its modification date to ``as_of`` (negative: written after as_of)."""
    return {f["file"]: float((as_of - pd.Timestamp(f["modified"]).date()).days) for f in files if f.get("modified")}


@dataclass
class Matched:
    flags_path: str
    rules_path: str
    raised: int
    not_evaluated: dict[str, str]
    seconds: float
    villages_path: str = ""


@task(name="match")
@contained("cross-match")
def match_registers(staged: list[StagedSource], config: str | None, as_of: date, scope: Scope,
                    run_dir: str, engine: str = "duckdb", spark_master: str | None = None) -> Matched:
    """Cross-match the usable registers in the engine asked for (``duckdb`` in-process, or ``spark``; their
    Parquet files read where they lie, spilling to the run folder beyond the policy's memory): every rule that can
    be evaluated tonight, with evidence, and the village indicators."""
    started = time.perf_counter()
    policy = load_policy(config)
    tables = {s.source: s.rows_path for s in staged if s.status == "loaded"}
    unavailable = {s.source: f"{s.status}: {s.message}" for s in staged if s.status != "loaded"}
    out = Path(run_dir) / "flags"
    out.mkdir(parents=True, exist_ok=True)
    villages_path = ""
    backend = backend_for(engine, Path(run_dir) / "engine", policy, spark_master, spark_scratch(run_dir))
    with Engine(tables, policy, pd.Timestamp(as_of), current(), backend=backend) as running:
        if "poverty_register" in tables:
            raised, skipped = running.flags(unavailable)
        else:
            raised = pd.DataFrame({c: pd.Series(dtype="str") for c in FLAG_COLUMNS})
            skipped = {code: f"poverty_register: {unavailable.get('poverty_register', '')}" for code in RULES}
        raised = raised[scope.holds(raised)]
        if {"poverty_register", "hukou"} <= set(tables):
            villages = running.village_indicators(raised)
            if scope.region:
                villages = villages[villages["village_code"].str.startswith(scope.region)]
            villages_path = str(out / "villages.parquet")
            villages.to_parquet(villages_path, index=False)
    shutil.rmtree(Path(run_dir) / "engine", ignore_errors=True)  # its database and spill: tonight's copies only
    rules = rules_evaluated(raised, skipped)
    raised.to_parquet(out / "flags.parquet", index=False)
    rules.to_parquet(out / "rules.parquet", index=False)
    return Matched(str(out / "flags.parquet"), str(out / "rules.parquet"), len(raised), skipped,
                   time.perf_counter() - started, villages_path)


def rules_evaluated(raised: pd.DataFrame, skipped: dict[str, str]) -> pd.DataFrame:
    """One row per rule of the catalogue: evaluated tonight or not (and why), and how many flags it raised."""
    rules = pd.DataFrame({"rule_code": list(RULES)})
    rules["evaluated"] = ~rules["rule_code"].isin(skipped)
    rules["reason"] = rules["rule_code"].map(skipped).fillna("")
    rules["raised"] = rules["rule_code"].map(raised["rule_code"].value_counts()).fillna(0).astype("int64")
    return rules


@task(name="publish")
@contained("publish")
def publish_run(url: str, run_id: str, run_dir: str, extracted: list[Extracted], staged: list[StagedSource],
                matched: Matched, scope: Scope, dry_run: bool, regions: dict | None = None) -> dict:
    """Write the run's files, quarantine, registers and flags to the warehouse in one transaction, and the review
    workbook of the open flags after it before that transaction commits: a run is published with its review
    workbook or not at all."""
    started = time.perf_counter()
    regions = regions or {}
    files = pd.DataFrame([f for e in extracted for f in e.files] + regions.get("files", []))
    loaded = [s for s in staged if s.status == "loaded"]
    quarantined = run_quarantine(staged)
    reports = {}
    if not dry_run:
        registers = {s.source: s.rows_path for s in loaded}  # Parquet files, loaded through Arrow
        villages = pd.read_parquet(matched.villages_path) if matched.villages_path else None
        scoped = f"_reconciliation_{scope.region}" if scope is not None and scope.region else ""
        review = Path(run_dir) / f"review_{run_id}{scoped}.xlsx"  # a reconciliation's is not named like a night's
        partial = review.with_name(f".{review.name}.partial")
        try:
            warehouse.publish(warehouse.connect(url), run_id, files, quarantined, registers,
                              pd.read_parquet(matched.flags_path), pd.read_parquet(matched.rules_path), scope, villages,
                              validation_results(staged), before_commit=lambda conn: write_review_workbook(conn, partial, scope),
                              region_names=pd.read_parquet(regions["path"]) if regions.get("path") else None)
        except BaseException:
            partial.unlink(missing_ok=True)  # not published: no review workbook either
            raise
        reports["review_workbook"] = str(partial.replace(review))
    return {"seconds": time.perf_counter() - started, "quarantined": len(quarantined), "reports": reports}


def run_quarantine(staged: list[StagedSource]) -> pd.DataFrame:
    """Every quarantined row of the run (of blocked sources too: their problems are real)."""
    frames = [pd.read_parquet(s.quarantine_path) for s in staged if s.quarantine_path]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=QUARANTINE_COLUMNS)


def validation_results(staged: list[StagedSource]) -> pd.DataFrame:
    """Every source's expectation results of the run, one row per source and expectation."""
    frames = [pd.read_parquet(s.results_path) for s in staged if s.results_path]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)


def source_summary(extracted: list[Extracted], staged: list[StagedSource]) -> dict[str, dict]:
    """Per source: status, files, rows read / valid / quarantined, and the message when not loaded."""
    by_source = {e.source: e for e in extracted}
    return {s.source: {"status": s.status, "files": sum(not f.get("ignored") for f in by_source[s.source].files),
                       "rows_read": s.rows_read or _rows_in_files(by_source[s.source].files),
                       "rows_valid": s.rows_valid, "rows_quarantined": s.rows_quarantined,
                       "validation": _validation_outcome(s), "message": s.message, "cleaned": s.cleaned,
                       "ignored": sum(bool(f.get("ignored")) for f in by_source[s.source].files)} for s in staged}


def _rows_in_files(files: list[dict]) -> int:
    """Data rows read from the files a source could read (of a failed source too: they are counted somewhere)."""
    return int(sum((f.get("rows_read") or 0) - (f.get("rows_not_data") or 0) for f in files if not f.get("error")))


def _validation_outcome(s: StagedSource) -> str:
    """passed | warnings (rows quarantined) | blocked | not validated (no file, or none readable) | not read (a
    reconciliation did not ask for it)."""
    if s.status == "skipped":
        return "not read"
    if s.status == "blocked" or (s.status == "failed" and s.results_path):
        return "blocked"
    if not s.results_path or s.status == "missing":
        return "not validated"
    results = pd.read_parquet(s.results_path, columns=["success"])
    return "passed" if results["success"].all() else "warnings"


@task(name="report")
@contained("reports")
def write_reports(run_id: str, run_dir: str, staged: list[StagedSource], summary: dict[str, dict]) -> dict:
    """The steward's validation reports, written before anything is published: the validation workbook
    (``summary``: :func:`source_summary`) and the Data Docs of the gate. (The review workbook is written
    inside the publish transaction: :func:`publish_run`.)"""
    reports = {"validation_workbook": str(write_validation_workbook(
        Path(run_dir) / f"validation_{run_id}.xlsx", summary, validation_results(staged), run_quarantine(staged)))}
    docs = build_data_docs(Path(run_dir))
    if docs:
        reports["data_docs"] = str(docs)
    return reports


@task(name="artifacts")
@contained("artifacts")
def publish_artifacts(url: str, run_id: str, summary: dict[str, dict], reports: dict[str, str], dry_run: bool) -> None:
    """What the Prefect UI shows of the run: sources, flag movements by rule and direction, links to the
    reports. Counts and paths only: no identity number or name is ever written to an artifact or a log."""
    create_table_artifact(key="jingzhun-sources", description=f"Run {run_id}: what each department sent",
                          table=[{"source": name, **{k: v for k, v in s.items() if k != "message"}}
                                 for name, s in summary.items()])
    movements = pd.DataFrame() if dry_run else warehouse.flag_movements(warehouse.connect(url), run_id)
    create_table_artifact(key="jingzhun-flags", table=movements.to_dict(orient="records"),
                          description=f"Run {run_id}: flags by rule and direction (new, still open, resolved)"
                                      + (" — dry run, nothing published" if dry_run else ""))
    for name, path in reports.items():
        create_link_artifact(key=f"jingzhun-{name.replace('_', '-')}", link=Path(path).resolve().as_uri(),
                             link_text=_REPORT_NAMES.get(name, name), description=f"Run {run_id}")


_REPORT_NAMES = {"validation_workbook": "数据质量校验报告 (validation workbook)", "data_docs": "Data Docs",
                 "review_workbook": "核查工作簿 (review workbook)"}


def final_state(result: dict) -> State:
    """Completed; named "Partially loaded" with the sources that failed or were blocked when there are any."""
    problems = {status: sorted(n for n, s in result["sources"].items() if s["status"] == status)
                for status in ("failed", "blocked")}
    message = "; ".join(f"{status}: {', '.join(names)}" for status, names in problems.items() if names)
    if message:
        return Completed(name="Partially loaded", message=message, data=result)
    return Completed(message="every source asked for loaded" + (" (dry run)" if result["status"] == "dry_run" else ""),
                     data=result)
