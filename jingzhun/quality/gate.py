"""The quality gate: run a source's suite on its checked rows, and say what that means for the run.

* Row-level failures quarantine the rows with their reason (those the staging transform did not
  already quarantine: implausible dates, duplicate persons); the run goes on.
* Source-level failures (required column missing, row count collapsed, stale file, too many invalid
  identity numbers) block the source: it is not used tonight.
* Every expectation's outcome becomes one row of :data:`RESULT_COLUMNS`, the table stewards read.

The suite runs through a Great Expectations checkpoint of a file context under the run folder, which keeps
every validation result; :func:`build_data_docs` renders them as the run's Data Docs site.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine

import jingzhun.quality.custom as cx  # registers the custom metrics before any suite runs
from jingzhun.contract import SOURCES
from jingzhun.policy import Policy
from jingzhun.privacy import mask_cell, mask_id_shaped
from jingzhun.quality.suites import (FILE_AGE, ONE_ROW_PER_PERSON, Tonight, given, invalid_ids, person_key,
                                     suite_for)
from jingzhun.staging import CHECK_MARK

# Great Expectations fingerprints every in-memory batch under 1 GB by hashing the whole frame, a batch marker nothing
# here reads (the run id and the files' SHA-256 say what was validated): 40 % of the gate's time on hukou. Off.
pandas_execution_engine.HASH_THRESHOLD = 0

RESULT_COLUMNS = ["source", "expectation", "column", "description", "severity", "quarantined_by", "success",
                  "element_count", "unexpected_count", "unexpected_percent", "observed_value", "examples", "outcome"]
EXAMPLES = 20
OUTCOMES = {"pass": "通过 (passed)", "blocked": "未通过: 来源被阻断 (failed: source blocked)",
            "quarantined": "未通过: 相关行已隔离 (failed: rows quarantined)"}


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided for one source: its results table, the rows it quarantines, and whether it blocks."""

    results: pd.DataFrame      # one row per expectation (RESULT_COLUMNS)
    reasons: pd.Series         # per checked row: the gate's quarantine reason ("" when none)
    blocked_because: list[str]  # descriptions of the failed source-level expectations (empty: not blocked)


def validation_frame(checked: pd.DataFrame, source: str, file_ages: dict[str, float]) -> pd.DataFrame:
    """The checked rows as the suite reads them (one row per data row), with the helper columns of
    :func:`helper_columns`."""
    helpers = helper_columns(source, set(checked.columns), file_ages)
    return checked.assign(**{name: compute(checked) for name, (_, compute) in helpers.items()})


Helper = tuple[list[str], Callable[[pd.DataFrame], pd.Series]]   # the checked columns it reads, and how it is made


def helper_columns(source: str, present: set[str], file_ages: dict[str, float]) -> dict[str, Helper]:
    """The helper columns the suite reads beside the checked ones, for a checked frame holding ``present``: each
    row's file age, whether each required value was given, staging's verdict on each identity number (not decided
    again), and for registers of one row per person the key the duplicate check reads."""
    out: dict[str, Helper] = {FILE_AGE: (["_file"], lambda c: c["_file"].map(file_ages).astype("float64"))}
    for col in SOURCES[source].columns:
        if col.name not in present:
            continue
        if col.required and col.kind != "id":
            marks = [f"{col.name}{CHECK_MARK}{m}" for m in ("code", "unreadable")]
            out[given(col.name)] = ([col.name, *(m for m in marks if m in present)],
                                    lambda c, col=col: _given(c, col.name, col.kind))
        if col.kind == "id":
            out[invalid_ids(col.name)] = ([col.name, f"{col.name}_valid"], lambda c, name=col.name: (
                c[name].fillna("").astype("str").where(~c[f"{name}_valid"].astype("bool"))))
    key = person_key(source)
    if key:
        keys = ONE_ROW_PER_PERSON[source]
        out[key] = ([*keys, "_reason", f"{keys[-1]}_valid"], lambda c: _person_key(c, keys))
    return out


def _person_key(checked: pd.DataFrame, keys: tuple[str, ...]) -> pd.Series:
    """The key of usable rows whose identity number (the last key column) is valid; missing elsewhere."""
    parts = [checked[c].astype("str") for c in keys]
    text = parts[0].str.cat(parts[1:], sep="|") if len(parts) > 1 else parts[0]
    return text.where(checked["_reason"].eq("") & checked[f"{keys[-1]}_valid"].astype("bool"))


def columns_read(names: list[str], source: str, policy: Policy, tonight: Tonight) -> list[str]:
    """Of a checked file holding ``names``, the columns the gate reads: those of the suite's expectations and
    those its helper columns are made from. The rest of a register is never read."""
    present = set(names)
    helpers = helper_columns(source, present, {})
    read = {"_file", "_row", "_reason", *(c for reads, _ in helpers.values() for c in reads)}
    columns = _checked_columns(suite_for(source, present | set(helpers), policy, tonight))
    read |= set(columns) | {c.split(CHECK_MARK)[0] for c in columns}  # a column's checks exist when the column does
    return [n for n in names if n in read]


def _checked_columns(suite) -> list[str]:
    """The columns the suite's expectations check, in order, each once."""
    return list(dict.fromkeys(e.column for e in suite.expectations if getattr(e, "column", None)))


def _given(checked: pd.DataFrame, column: str, kind: str) -> pd.Series:
    """"1" where the department filled the column in (even with a value that could not be read), else missing."""
    if kind == "vocab":
        present = checked[f"{column}{CHECK_MARK}code"].notna()
    elif f"{column}{CHECK_MARK}unreadable" in checked.columns:
        present = checked[column].notna() | checked[f"{column}{CHECK_MARK}unreadable"].notna()
    else:
        present = checked[column].notna() & checked[column].astype("str").str.strip().ne("")
    return pd.Series("1", index=checked.index, dtype="str").where(present)


def run_gate(checked: pd.DataFrame, source: str, file_ages: dict[str, float], policy: Policy, tonight: Tonight,
             gx_root: Path, run_name: str | None = None) -> GateOutcome:
    """Validate one source's checked rows with its suite (a checkpoint that also updates the Data Docs); the
    Data Docs name the validation by ``run_name`` (the run id)."""
    frame = validation_frame(checked, source, file_ages)
    suite = suite_for(source, set(frame.columns), policy, tonight)
    read = ["_file", "_row", *_checked_columns(suite)]
    result = _checkpoint(frame[[c for c in read if c in frame.columns]], source, suite, gx_root, run_name)
    results = flatten(result, source)
    failed_source = results[results["severity"].eq("source") & ~results["success"]]
    return GateOutcome(results, gate_reasons(frame, suite), failed_source["description"].tolist())


def _checkpoint(frame: pd.DataFrame, source: str, suite, gx_root: Path, run_name: str | None):
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_or_update_pandas("jingzhun")
    asset = next((a for a in datasource.assets if a.name == source), None) or datasource.add_dataframe_asset(source)
    batch = next((b for b in asset.batch_definitions if b.name == "tonight"), None) \
        or asset.add_batch_definition_whole_dataframe("tonight")
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=source, data=batch, suite=suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=source, validation_definitions=[definition], actions=[],
        result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["_file", "_row"],
                       "partial_unexpected_count": EXAMPLES}))
    # run_time given: without it GX parses the run name as a date, and a run id such as 20261123T234537Z-3142ad reads
    # as a time with an offset of 31 hours (ValueError)
    run = checkpoint.run(batch_parameters={"dataframe": frame},
                         run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc)) if run_name else None)
    return next(iter(run.run_results.values()))


def flatten(result, source: str) -> pd.DataFrame:
    """One row per expectation: what was checked, how serious, the counts, and example rows (file, row, value)."""
    rows = []
    for r in result.results:
        config, res = r.expectation_config, dict(r.result or {})
        meta = config.meta or {}
        column = config.kwargs.get("column", "")
        shown = mask_cell if _personal(source, column) else _plain  # run records hold no identity number or name
        examples = [{"file": e.get("_file"), "row": _plain(e.get("_row")), "value": shown(e.get(column))}
                    for e in res.get("partial_unexpected_index_list") or []]
        raised = (r.exception_info or {}).get("raised_exception")
        success = bool(r.success) and not raised
        outcome = "pass" if success else ("blocked" if meta.get("severity") == "source" else "quarantined")
        rows.append({
            "source": source, "expectation": config.type, "column": column.split(CHECK_MARK)[0],
            "description": config.description or "", "severity": meta.get("severity", "row"),
            "quarantined_by": meta.get("quarantined_by", ""), "success": success,
            "element_count": res.get("element_count"), "unexpected_count": res.get("unexpected_count"),
            "unexpected_percent": res.get("unexpected_percent"),
            "observed_value": "" if res.get("observed_value") is None else mask_id_shaped(str(_plain(res["observed_value"]))),
            "examples": json.dumps(examples, ensure_ascii=False, default=str), "outcome": OUTCOMES[outcome],
        })
        if raised:  # the library's message may quote a value: only its kind is kept
            rows[-1]["observed_value"] = "校验出错 (the check raised an error)"
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _personal(source: str, column: str) -> bool:
    """Whether a checked column holds identity numbers or names (helper columns count as their base column)."""
    base = column.split(CHECK_MARK)[0]
    spec = next((c for c in SOURCES[source].columns if c.name == base), None)
    return spec is not None and spec.kind in ("id", "name")


def gate_reasons(frame: pd.DataFrame, suite) -> pd.Series:
    """Per row, the reasons of the gate's own row checks (``quarantined_by: gate``), computed as the
    expectations compute them; rows the staging transform already rejected are left to their reason."""
    reasons = pd.Series("", index=frame.index, dtype="str")
    open_rows = frame["_reason"].eq("")
    for e in suite.expectations:
        meta = e.meta or {}
        if meta.get("severity") != "row" or meta.get("quarantined_by") != "gate":
            continue
        bad = open_rows & _unexpected(frame, e)
        reasons = reasons.mask(bad, reasons.where(reasons.eq(""), reasons + "; ") + meta["reason"])
    return reasons


def _unexpected(frame: pd.DataFrame, e) -> pd.Series:
    values = frame[e.column]
    if isinstance(e, cx.ExpectColumnValuesToBeFirstOccurrence):
        return cx.later_repeats(values)
    if isinstance(e, cx.ExpectDatesPlausible):
        return cx.dates_outside(values, e.min_value, e.max_value)
    raise TypeError(f"{type(e).__name__} does not quarantine rows")


def unreadable_source(source: str, files: list[dict]) -> pd.DataFrame:
    """Results for a source whose files could not be used at all (a missing required column, a broken file)."""
    rows = [{"source": source, "expectation": "expect_column_to_exist" if f.get("missing_column") else "file_readable",
             "column": f.get("missing_column", ""), "description": f["error"], "severity": "source",
             "quarantined_by": "reader", "success": False, "element_count": None, "unexpected_count": None,
             "unexpected_percent": None, "observed_value": "", "examples": json.dumps([{"file": f["file"]}], ensure_ascii=False),
             "outcome": OUTCOMES["blocked"]} for f in files if f.get("error")]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def build_data_docs(gx_root: Path) -> Path | None:
    """Render the Data Docs site of every validation stored under ``gx_root``; its index page (None: nothing validated)."""
    if not (Path(gx_root) / "gx").is_dir():
        return None
    mask_stored_results(Path(gx_root) / "gx" / "uncommitted" / "validations")
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    context.build_data_docs()
    site = Path(gx_root) / "gx" / "uncommitted" / "data_docs" / "local_site"
    if not (site / "index.html").exists():
        return None
    localise_assets(site)
    return site / "index.html"


def mask_stored_results(validations: Path) -> None:
    """Mask the values of personal columns (identity numbers, names) in the stored validation results, which the
    Data Docs site shows to anyone who opens it, as the run records show them (:func:`mask_cell`); and anything
    else shaped like an identity number."""
    for path in validations.rglob("*.json"):
        source = path.relative_to(validations).parts[0]
        stored = json.loads(path.read_text(encoding="utf-8"))
        if source in SOURCES:  # the page's "Data asset": the register, as stewards name it
            stored.setdefault("meta", {}).setdefault("batch_spec", {})["data_asset_name"] = \
                f"{SOURCES[source].title} ({source})"
        for r in stored.get("results", []):
            column = (r.get("expectation_config") or {}).get("kwargs", {}).get("column", "")
            res = r.get("result") or {}
            if source not in SOURCES or not column or not _personal(source, column):
                continue
            for key in ("partial_unexpected_list", "unexpected_list"):
                if key in res:
                    res[key] = [mask_cell(v) for v in res[key]]
            for entry in res.get("partial_unexpected_counts") or []:
                entry["value"] = mask_cell(entry.get("value"))
            for entry in res.get("partial_unexpected_index_list") or []:
                if column in entry:
                    entry[column] = mask_cell(entry[column])
        path.write_text(mask_id_shaped(json.dumps(stored, ensure_ascii=False)), encoding="utf-8")


ASSETS = Path(__file__).resolve().parents[2] / "expectations" / "docs_assets"  # vendored, with their licences
# The Data Docs pages load these from public CDNs; the vendored copies serve them offline.
CDN_ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "status-icons.css",
}
_OTHER_REMOTE = re.compile(r'<script[^>]*src="https://[^"]*"[^>]*>\s*</script>|<link[^>]*href="https://[^"]*\.css"[^>]*/?>')
_REMOTE_LOGO = re.compile(r'src="https://great-expectations-web-assets[^"]*"')


def localise_assets(site: Path) -> None:
    """Make the site work without internet: vendored copies of the scripts and styles its pages load from
    CDNs, the remote logo replaced by the local one, and the remaining remote scripts and styles (charts,
    icons, dark theme) left out."""
    vendor = site / "static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    for name in set(CDN_ASSETS.values()):
        shutil.copyfile(ASSETS / name, vendor / name)
    for page in site.rglob("*.html"):
        up = os.path.relpath(site, page.parent)
        html = page.read_text(encoding="utf-8")
        for url, name in CDN_ASSETS.items():
            html = html.replace(f'"{url}"', f'"{up}/static/vendor/{name}"')
        html = _OTHER_REMOTE.sub("", html)
        html = _REMOTE_LOGO.sub(f'src="{up}/static/images/logo-long.png"', html)
        page.write_text(html, encoding="utf-8")


def _plain(value):
    """numpy scalars and timestamps as plain JSON-able values."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
