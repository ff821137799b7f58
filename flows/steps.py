"""The nightly run's steps as Prefect tasks, at the grain of one source and one step.

Tasks pass file paths (Parquet under the run folder), never large frames.
Only extraction touches the outside world, so only it retries.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import task

from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.policy import load_policy
from jingzhun.readers import read_source
from jingzhun.quality_report import write_validation_workbook
from jingzhun.review import write_review_workbook
from transforms.flags import FLAG_COLUMNS, RULES, flags
from transforms.marts import mart_village_indicators
from transforms.staging import QUARANTINE_COLUMNS, STAGING, quarantine_rows, usable_rows
from expectations.gate import RESULT_COLUMNS, build_data_docs, run_gate, unreadable_source
from expectations.suites import Tonight


class Stopwatch:
    """Wall-clock windows of the run's phases (epoch seconds), for the run record and the benchmark."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[float, float]] = {}

    @contextmanager
    def __call__(self, phase: str):
        start = time.time()
        try:
            yield
        finally:
            self.windows[phase] = (start, time.time())

    def seconds(self) -> dict[str, float]:
        out = {phase: round(end - start, 3) for phase, (start, end) in self.windows.items()}
        if self.windows:
            out["total"] = round(max(e for _, e in self.windows.values()) - min(s for s, _ in self.windows.values()), 3)
        return out


@dataclass
class Extracted:
    """One source as read tonight: where its raw rows are, and what was read."""

    source: str
    status: str                     # loaded | missing | failed
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
    status: str                     # loaded | missing | failed | blocked
    checked_path: str = ""
    rows_path: str = ""
    quarantine_path: str = ""
    results_path: str = ""
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    message: str = ""
    seconds: float = 0.0


@task(name="extract", retries=2, retry_delay_seconds=[2, 10], task_run_name="extract-{source}")
def extract_source(landing: str, source: str, run_dir: str) -> Extracted:
    """Read every file of one source into ``raw/<source>.parquet`` (text cells, nothing changed)."""
    started = time.perf_counter()
    data, not_data, records = read_source(Path(landing), SOURCES[source])
    files = [r.as_dict() for r in records]
    if not records:
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


@task(name="stage", task_run_name="stage-{extracted.source}")
def stage_source(extracted: Extracted, config: str | None, run_dir: str) -> StagedSource:
    """Cast and normalise one source; quarantine what cannot be used (and the non-data rows) with reasons."""
    if extracted.status != "loaded":
        return StagedSource(extracted.source, extracted.status, message=extracted.message)
    started = time.perf_counter()
    raw = pd.read_parquet(extracted.raw_path)
    raw["_row"] = raw["_row"].astype("int64")
    staged = STAGING[extracted.source](raw, load_policy(config))
    not_data = pd.read_parquet(extracted.not_data_path)
    skipped = pd.DataFrame({"source": extracted.source, "file": not_data.get("_file", pd.Series(dtype="str")),
                            "row": not_data.get("_row", pd.Series(dtype="str")).astype("int64"),
                            "reason": not_data.get("_reason", pd.Series(dtype="str")), "raw": ""},
                           columns=QUARANTINE_COLUMNS)
    quarantined = pd.concat([staged.quarantine, skipped], ignore_index=True)
    out = Path(run_dir) / "staged"
    out.mkdir(parents=True, exist_ok=True)
    checked_path, q_path = out / f"{extracted.source}.checked.parquet", out / f"{extracted.source}.quarantine.parquet"
    staged.checked.to_parquet(checked_path, index=False)
    quarantined.to_parquet(q_path, index=False)
    return StagedSource(extracted.source, "loaded", checked_path=str(checked_path), quarantine_path=str(q_path),
                        rows_read=len(raw), rows_quarantined=len(staged.quarantine),
                        seconds=time.perf_counter() - started)


@task(name="validate", task_run_name="validate-{staged.source}")
def validate_source(staged: StagedSource, extracted: Extracted, config: str | None, tonight: Tonight,
                    run_dir: str) -> StagedSource:
    """The quality gate for one source: its suite on every checked row (read once), the gate's row quarantine,
    and the source blocked when a source-level expectation fails. Writes the usable rows and the results."""
    out = Path(run_dir) / "validated"
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / f"{staged.source}.results.parquet"
    if staged.status != "loaded":
        unreadable_source(staged.source, extracted.files).to_parquet(results_path, index=False)
        return replace(staged, results_path=str(results_path))
    started = time.perf_counter()
    checked = pd.read_parquet(staged.checked_path)
    outcome = run_gate(checked, staged.source, file_ages(extracted.files, tonight.as_of), load_policy(config),
                       tonight, Path(run_dir))
    outcome.results.to_parquet(results_path, index=False)
    gated = outcome.reasons.ne("")
    quarantined = pd.read_parquet(staged.quarantine_path)
    if gated.any():
        raw = pd.read_parquet(extracted.raw_path).iloc[gated[gated].index]
        quarantined = pd.concat([quarantined, quarantine_rows(raw, staged.source, outcome.reasons[gated])],
                                ignore_index=True)
        quarantined.to_parquet(staged.quarantine_path, index=False)
        checked["_reason"] = checked["_reason"].mask(gated, outcome.reasons)
    rows = usable_rows(checked)
    rows_path = out / f"{staged.source}.parquet"
    rows.to_parquet(rows_path, index=False)
    status = "blocked" if outcome.blocked_because else "loaded"
    message = "质量检查未通过 (failed the quality gate): " + "; ".join(outcome.blocked_because) if outcome.blocked_because else ""
    return replace(staged, status=status, rows_path=str(rows_path), results_path=str(results_path),
                   rows_valid=len(rows), rows_quarantined=int(staged.rows_quarantined + gated.sum()), message=message,
                   seconds=staged.seconds + time.perf_counter() - started)


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
def match_registers(staged: list[StagedSource], config: str | None, as_of: date, region: str | None,
                    run_dir: str) -> Matched:
    """Cross-match the usable registers: every rule that can be evaluated tonight, with evidence."""
    started = time.perf_counter()
    frames = {s.source: pd.read_parquet(s.rows_path) for s in staged if s.status == "loaded"}
    unavailable = {s.source: f"{s.status}: {s.message}" for s in staged if s.status != "loaded"}
    if "poverty_register" in frames:
        raised, skipped = flags(frames, load_policy(config), pd.Timestamp(as_of), unavailable)
    else:
        raised = pd.DataFrame(columns=FLAG_COLUMNS)
        skipped = {code: f"poverty_register: {unavailable.get('poverty_register', '')}" for code in RULES}
    if region:
        raised = raised[raised["village_code"].str.startswith(region)]
    rules = pd.DataFrame({"rule_code": list(RULES)})
    rules["evaluated"] = ~rules["rule_code"].isin(skipped)
    rules["reason"] = rules["rule_code"].map(skipped).fillna("")
    rules["raised"] = rules["rule_code"].map(raised["rule_code"].value_counts()).fillna(0).astype("int64")
    out = Path(run_dir) / "flags"
    out.mkdir(parents=True, exist_ok=True)
    raised.to_parquet(out / "flags.parquet", index=False)
    rules.to_parquet(out / "rules.parquet", index=False)
    villages_path = ""
    if {"poverty_register", "hukou"} <= set(frames):
        villages = mart_village_indicators(frames["poverty_register"], frames["hukou"], frames.get("deaths"),
                                           raised, pd.Timestamp(as_of))
        if region:
            villages = villages[villages["village_code"].str.startswith(region)]
        villages_path = str(out / "villages.parquet")
        villages.to_parquet(villages_path, index=False)
    return Matched(str(out / "flags.parquet"), str(out / "rules.parquet"), len(raised), skipped,
                   time.perf_counter() - started, villages_path)


@task(name="publish")
def publish_run(url: str, run_id: str, extracted: list[Extracted], staged: list[StagedSource], matched: Matched,
                region: str | None, dry_run: bool) -> dict:
    """Write the run's files, quarantine, registers and flags to the warehouse in one transaction."""
    started = time.perf_counter()
    files = pd.DataFrame([f for e in extracted for f in e.files])
    loaded = [s for s in staged if s.status == "loaded"]
    quarantines = [pd.read_parquet(s.quarantine_path) for s in staged if s.quarantine_path]  # blocked ones too
    quarantined = pd.concat(quarantines, ignore_index=True) if quarantines else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    if not dry_run:
        registers = {s.source: pd.read_parquet(s.rows_path) for s in loaded}
        villages = pd.read_parquet(matched.villages_path) if matched.villages_path else None
        warehouse.publish(warehouse.connect(url), run_id, files, quarantined, registers,
                          pd.read_parquet(matched.flags_path), pd.read_parquet(matched.rules_path), region, villages,
                          validation_results(staged))
    return {"seconds": time.perf_counter() - started, "quarantined": len(quarantined)}


def validation_results(staged: list[StagedSource]) -> pd.DataFrame:
    """Every source's expectation results of the run, one row per source and expectation."""
    frames = [pd.read_parquet(s.results_path) for s in staged if s.results_path]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)


def source_summary(extracted: list[Extracted], staged: list[StagedSource]) -> dict[str, dict]:
    """Per source: status, files, rows read / valid / quarantined, and the message when not loaded."""
    by_source = {e.source: e for e in extracted}
    return {s.source: {"status": s.status, "files": len(by_source[s.source].files), "rows_read": s.rows_read,
                       "rows_valid": s.rows_valid, "rows_quarantined": s.rows_quarantined,
                       "validation": _validation_outcome(s), "message": s.message} for s in staged}


def _validation_outcome(s: StagedSource) -> str:
    """passed | warnings (rows quarantined) | blocked | not validated (no file, or none readable)."""
    if s.status == "blocked" or (s.status == "failed" and s.results_path):
        return "blocked"
    if not s.results_path or s.status == "missing":
        return "not validated"
    results = pd.read_parquet(s.results_path, columns=["success"])
    return "passed" if results["success"].all() else "warnings"


def parse_as_of(value: str | date | None) -> date:
    if value is None or value == "":
        return date.today()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@task(name="report")
def write_reports(url: str, run_id: str, run_dir: str, staged: list[StagedSource], dry_run: bool) -> dict:
    """The steward's reports: the validation workbook and the Data Docs of the gate, and (unless a dry run)
    the review workbook of the open flags after this run."""
    quarantines = [pd.read_parquet(s.quarantine_path) for s in staged if s.quarantine_path]
    quarantined = pd.concat(quarantines, ignore_index=True) if quarantines else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    summary = {s.source: {"status": s.status, "validation": _validation_outcome(s), "rows_read": s.rows_read,
                          "rows_valid": s.rows_valid, "rows_quarantined": s.rows_quarantined, "message": s.message}
               for s in staged}
    reports = {"validation_workbook": str(write_validation_workbook(
        Path(run_dir) / f"validation_{run_id}.xlsx", summary, validation_results(staged), quarantined))}
    docs = build_data_docs(Path(run_dir))
    if docs:
        reports["data_docs"] = str(docs)
    if not dry_run:
        reports["review_workbook"] = str(write_review_workbook(warehouse.connect(url), Path(run_dir) / f"review_{run_id}.xlsx"))
    return reports
