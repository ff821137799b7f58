"""The nightly run's steps as Prefect tasks, at the grain of one source and one step.

Tasks pass file paths (Parquet under the run folder), never large frames.
Only extraction touches the outside world, so only it retries.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import task

from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.policy import load_policy
from jingzhun.readers import read_source
from jingzhun.review import write_review_workbook
from transforms.flags import FLAG_COLUMNS, RULES, flags
from transforms.marts import mart_village_indicators
from transforms.staging import QUARANTINE_COLUMNS, STAGING


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
    source: str
    status: str
    rows_path: str = ""
    quarantine_path: str = ""
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
    rows_path, q_path = out / f"{extracted.source}.parquet", out / f"{extracted.source}.quarantine.parquet"
    staged.rows.to_parquet(rows_path, index=False)
    quarantined.to_parquet(q_path, index=False)
    return StagedSource(extracted.source, "loaded", str(rows_path), str(q_path), rows_read=len(raw),
                        rows_valid=len(staged.rows), rows_quarantined=len(staged.quarantine),
                        seconds=time.perf_counter() - started)


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
    quarantined = pd.concat([pd.read_parquet(s.quarantine_path) for s in loaded], ignore_index=True) \
        if loaded else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    if not dry_run:
        registers = {s.source: pd.read_parquet(s.rows_path) for s in loaded}
        villages = pd.read_parquet(matched.villages_path) if matched.villages_path else None
        warehouse.publish(warehouse.connect(url), run_id, files, quarantined, registers,
                          pd.read_parquet(matched.flags_path), pd.read_parquet(matched.rules_path), region, villages)
    return {"seconds": time.perf_counter() - started, "quarantined": len(quarantined)}


def source_summary(extracted: list[Extracted], staged: list[StagedSource]) -> dict[str, dict]:
    """Per source: status, files, rows read / valid / quarantined, and the message when not loaded."""
    by_source = {e.source: e for e in extracted}
    return {s.source: {"status": s.status, "files": len(by_source[s.source].files), "rows_read": s.rows_read,
                       "rows_valid": s.rows_valid, "rows_quarantined": s.rows_quarantined,
                       "message": s.message} for s in staged}


def parse_as_of(value: str | date | None) -> date:
    if value is None or value == "":
        return date.today()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@task(name="report")
def write_reports(url: str, run_id: str, run_dir: str) -> dict:
    """The steward's review workbook of the open flags after this run."""
    path = write_review_workbook(warehouse.connect(url), Path(run_dir) / f"review_{run_id}.xlsx")
    return {"review_workbook": str(path)}
