"""The quality gate: run a source's suite on its checked rows, and say what that means for the run.

* Row-level failures quarantine the rows with their reason (those the staging transform did not
  already quarantine: implausible dates, duplicate persons); the run goes on.
* Source-level failures (required column missing, row count collapsed, stale file, too many invalid
  identity numbers) block the source: it is not used tonight.
* Every expectation's outcome becomes one row of :data:`RESULT_COLUMNS`, the table stewards read.

The suite runs through a Great Expectations checkpoint of a file context under the run folder, which keeps
every validation result; :func:`build_data_docs` renders them as the run's Data Docs site. It runs on one of two
engines with the same suite and the same outcome: pandas in the worker's process (a county), or Spark through
GX's Spark datasource (a province), which reads the checked file where it lies and never collects the register.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine

import jingzhun.quality.custom as cx  # registers the custom metrics before any suite runs
from jingzhun.contract import SOURCES
from jingzhun.policy import Policy
from jingzhun.privacy import mask_cell, mask_id_shaped
from jingzhun.quality.suites import (FILE_AGE, ONE_ROW_PER_PERSON, Tonight, given, invalid_ids, person_key,
                                     suite_for)
from jingzhun.spark import ORDER, placed
from jingzhun.staging import CHECK_MARK

# Great Expectations fingerprints every in-memory batch under 1 GB by hashing the whole frame, a batch marker nothing
# here reads (the run id and the files' SHA-256 say what was validated): 40 % of the gate's time on hukou. Off.
pandas_execution_engine.HASH_THRESHOLD = 0

RESULT_COLUMNS = ["source", "expectation", "column", "description", "severity", "quarantined_by", "success",
                  "element_count", "unexpected_count", "unexpected_percent", "observed_value", "examples", "outcome"]
EXAMPLES = 20
RAISED = "校验出错 (the check raised an error; details withheld: they may quote the data)"
OUTCOMES = {"pass": "通过 (passed)", "blocked": "未通过: 来源被阻断 (failed: source blocked)",
            "quarantined": "未通过: 相关行已隔离 (failed: rows quarantined)"}


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided for one source: its results table, the rows it quarantines, and whether it blocks."""

    results: pd.DataFrame      # one row per expectation (RESULT_COLUMNS)
    reasons: pd.Series         # the gate's quarantine reason of each row it quarantines, indexed by the row's place
    #                            among the checked rows (increasing; rows it does not quarantine are absent)
    blocked_because: list[str]  # descriptions of the failed source-level expectations (empty: not blocked)


@dataclass(frozen=True)
class Helper:
    """A column the suite reads beside the checked ones: the checked columns it is made from, and how it is made
    on each of the gate's engines (pandas: from the frame; Spark: a column expression over the same columns)."""

    reads: list[str]
    pandas: Callable[[pd.DataFrame], pd.Series]
    spark: Callable[[], object]


def run_gate(checked_path: str | Path, source: str, file_ages: dict[str, float], policy: Policy, tonight: Tonight,
             gx_root: Path, run_name: str | None = None, spark=None) -> GateOutcome:
    """Validate one source's checked rows (the staged Parquet file) with its suite, through a checkpoint that also
    updates the Data Docs (which name the validation by ``run_name``, the run id). Without ``spark``, in this process
    on the columns the suite reads (:func:`columns_read`); with a Spark session, by Spark where the file lies: the
    register is never collected, only the counts, up to :data:`EXAMPLES` examples per expectation and the rows the
    gate quarantines come back."""
    read = columns_read(pq.read_schema(checked_path).names, source, policy, tonight)
    if spark is None:
        return gate_frame(pd.read_parquet(checked_path, columns=read), source, file_ages, policy, tonight, gx_root,
                          run_name)
    return _gate_on_spark(spark, str(checked_path), read, source, file_ages, policy, tonight, gx_root, run_name)


def gate_frame(checked: pd.DataFrame, source: str, file_ages: dict[str, float], policy: Policy, tonight: Tonight,
               gx_root: Path, run_name: str | None = None) -> GateOutcome:
    """The gate on checked rows held in this process (pandas)."""
    helpers = helper_columns(source, set(checked.columns), file_ages)
    frame = checked.assign(**{name: h.pandas(checked) for name, h in helpers.items()})
    suite = suite_for(source, set(frame.columns), policy, tonight)
    read = ["_file", "_row", *_checked_columns(suite)]
    result = _checkpoint(frame[[c for c in read if c in frame.columns]], source, suite, gx_root, run_name, "pandas")
    reasons = gate_reasons(frame, suite)
    return _outcome(flatten(result, source), reasons[reasons.ne("")])


def _gate_on_spark(spark, checked_path: str, read: list[str], source: str, file_ages: dict[str, float],
                   policy: Policy, tonight: Tonight, gx_root: Path, run_name: str | None) -> GateOutcome:
    """The gate run by Spark: the checked file read where it lies (``_ord``: each row's place in it), the helper
    columns made there, the frame kept by Spark (memory, then disk) while every expectation reads it; the rows the
    gate quarantines are written beside the file and read back, never the register."""
    from pyspark.sql import functions as F

    checked = placed(spark, checked_path, read)
    helpers = helper_columns(source, set(read), file_ages)
    frame = checked.select("*", *(h.spark().alias(name) for name, h in helpers.items()))
    suite = suite_for(source, set(frame.columns), policy, tonight)
    keep = ["_file", "_row", ORDER, "_reason", *_checked_columns(suite)]
    frame = frame.select(*dict.fromkeys(c for c in keep if c in frame.columns)).persist()
    try:
        result = _checkpoint(frame, source, suite, gx_root, run_name, "spark")
        gated = f"{checked_path}.gated"
        (frame.select(ORDER, _spark_reasons(suite).alias("reason")).where(F.col("reason") != "")
         .write.mode("overwrite").parquet(gated))
    finally:
        frame.unpersist()
    rows = pq.read_table(gated).sort_by(ORDER)
    shutil.rmtree(gated, ignore_errors=True)
    reasons = pd.Series(rows["reason"].to_pandas().to_numpy(), index=rows[ORDER].to_numpy(), dtype="str")
    return _outcome(flatten(result, source), reasons)


def _outcome(results: pd.DataFrame, reasons: pd.Series) -> GateOutcome:
    failed_source = results[results["severity"].eq("source") & ~results["success"]]
    return GateOutcome(results, reasons, failed_source["description"].tolist())


def helper_columns(source: str, present: set[str], file_ages: dict[str, float]) -> dict[str, Helper]:
    """The helper columns the suite reads beside the checked ones, for a checked frame holding ``present``: each
    row's file age, whether each required value was given, staging's verdict on each identity number (not decided
    again), and for registers of one row per person the key the duplicate check reads."""
    out = {FILE_AGE: Helper(["_file"], lambda c: c["_file"].map(file_ages).astype("float64"),
                            lambda: _spark_lookup("_file", file_ages))}
    for col in SOURCES[source].columns:
        if col.name not in present:
            continue
        if col.required and col.kind != "id":
            marks = [f"{col.name}{CHECK_MARK}{m}" for m in ("code", "unreadable")]
            out[given(col.name)] = Helper([col.name, *(m for m in marks if m in present)],
                                          lambda c, col=col: _given(c, col.name, col.kind),
                                          lambda col=col: _given_spark(col.name, col.kind, present))
        if col.kind == "id":
            out[invalid_ids(col.name)] = Helper(
                [col.name, f"{col.name}_valid"],
                lambda c, name=col.name: c[name].fillna("").astype("str").where(~c[f"{name}_valid"].astype("bool")),
                lambda name=col.name: _invalid_ids_spark(name))
    key = person_key(source)
    if key:
        keys = ONE_ROW_PER_PERSON[source]
        out[key] = Helper([*keys, "_reason", f"{keys[-1]}_valid"], lambda c: _person_key(c, keys),
                          lambda: _person_key_spark(keys))
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
    read = {"_file", "_row", "_reason", *(c for h in helpers.values() for c in h.reads)}
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


# Python's whitespace (what str.strip removes) as a Java regular expression's character class: Spark's trim removes
# only the space, so a cell of full-width spaces (U+3000) would count as given there and not here.
_BLANK = "^[" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace()) + "]*$"


def _given_spark(column: str, kind: str, present: set[str]):
    """:func:`_given` as a Spark column."""
    from pyspark.sql import functions as F

    if kind == "vocab":
        filled = F.col(f"{column}{CHECK_MARK}code").isNotNull()
    elif f"{column}{CHECK_MARK}unreadable" in present:
        filled = F.col(column).isNotNull() | F.col(f"{column}{CHECK_MARK}unreadable").isNotNull()
    else:
        filled = F.col(column).isNotNull() & ~F.col(column).cast("string").rlike(_BLANK)
    return F.when(filled, F.lit("1"))


def _invalid_ids_spark(column: str):
    """The number where staging found it invalid (an empty one as empty text), missing where valid."""
    from pyspark.sql import functions as F

    valid = F.coalesce(F.col(f"{column}_valid").cast("boolean"), F.lit(False))
    return F.when(~valid, F.coalesce(F.col(column).cast("string"), F.lit("")))


def _person_key_spark(keys: tuple[str, ...]):
    """:func:`_person_key` as a Spark column (missing where any key part is)."""
    from pyspark.sql import functions as F

    parts = [p for c in keys for p in (F.lit("|"), F.col(c).cast("string"))][1:]
    usable = (F.col("_reason") == "") & F.coalesce(F.col(f"{keys[-1]}_valid").cast("boolean"), F.lit(False))
    return F.when(usable, F.concat(*parts))


def _spark_lookup(column: str, values: dict[str, float]):
    """Each row's value of ``values`` for its ``column`` (missing where it has none), as a Spark column."""
    from pyspark.sql import functions as F

    if not values:
        return F.lit(None).cast("double")
    return F.create_map(*(F.lit(v) for kv in values.items() for v in kv))[F.col(column)].cast("double")


def _checkpoint(frame, source: str, suite, gx_root: Path, run_name: str | None, engine: str):
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = (context.data_sources.add_or_update_spark("jingzhun_spark") if engine == "spark"
                  else context.data_sources.add_or_update_pandas("jingzhun"))
    asset = next((a for a in datasource.assets if a.name == source), None) or datasource.add_dataframe_asset(source)
    batch = next((b for b in asset.batch_definitions if b.name == "tonight"), None) \
        or asset.add_batch_definition_whole_dataframe("tonight")
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=source, data=batch, suite=suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=source, validation_definitions=[definition], actions=[],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES,
                       # on Spark, also each example's place in the file: examples are put in file order by it
                       "unexpected_index_column_names": ["_file", "_row", *([ORDER] if engine == "spark" else [])]}))
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
        personal = _personal(source, column)  # run records hold no identity number or name
        shown = (lambda v: mask_cell(_plain(v))) if personal else _plain
        found = sorted(res.get("partial_unexpected_index_list") or [], key=lambda e: e.get(ORDER, 0))
        examples = [{"file": e.get("_file"), "row": _plain(e.get("_row")), "value": shown(e.get(column))}
                    for e in found]
        raised = _raised(r.exception_info)
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
            rows[-1]["observed_value"] = RAISED
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _raised(info) -> bool:
    """Whether a result's check raised: GX gives one ``exception_info``, or one per metric that failed."""
    info = info or {}
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


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
    for e in _quarantining(suite):
        bad = open_rows & e.unexpected(frame[e.column])
        reasons = reasons.mask(bad, reasons.where(reasons.eq(""), reasons + "; ") + e.meta["reason"])
    return reasons


def _spark_reasons(suite):
    """:func:`gate_reasons` as a Spark column: per row, the reasons of the gate's own row checks joined by "; "
    (empty where none), computed as the expectations' Spark metrics compute them."""
    from pyspark.sql import functions as F

    parts = [F.when((F.col("_reason") == "") & e.unexpected_spark(F.col(e.column)), F.lit(e.meta["reason"]))
             for e in _quarantining(suite)]
    return F.concat_ws("; ", *parts) if parts else F.lit("")


def _quarantining(suite) -> list:
    """The suite's expectations whose failing rows the gate itself quarantines (each says which rows:
    ``unexpected``, ``unexpected_spark``)."""
    return [e for e in suite.expectations
            if (e.meta or {}).get("severity") == "row" and (e.meta or {}).get("quarantined_by") == "gate"]


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
    Data Docs site shows to anyone who opens it, as the run records show them (:func:`mask_cell`); anything
    else shaped like an identity number; and the message and traceback of a check that raised (Spark's quote the
    value that failed a cast), as the run records keep only that it raised."""
    for path in validations.rglob("*.json"):
        source = path.relative_to(validations).parts[0]
        stored = json.loads(path.read_text(encoding="utf-8"))
        if source in SOURCES:  # the page's "Data asset": the register, as stewards name it
            stored.setdefault("meta", {}).setdefault("batch_spec", {})["data_asset_name"] = \
                f"{SOURCES[source].title} ({source})"
        for r in stored.get("results", []):
            if _raised(r.get("exception_info")):
                r["exception_info"] = {"raised_exception": True, "exception_message": RAISED,
                                       "exception_traceback": None}
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
    """numpy scalars and timestamps (pandas' or Spark's) as plain JSON-able values: a day as its date, a missing
    value as None (JSON's null; json.dumps would write NaN, which is not JSON)."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        value = pd.Timestamp(value)
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
