"""Staging: one function per source. Rename (done by the readers), cast, normalise; no joins.

Every function takes the raw text frame of one source (as read from all its
files) and the policy, and returns a :class:`Staged`: the usable rows, typed,
and the quarantined rows with their reason and raw values. Together they hold
every data row the department sent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jingzhun import normalise as nz
from jingzhun.contract import SOURCES, Column, Source
from jingzhun.policy import Policy

QUARANTINE_COLUMNS = ["source", "file", "row", "reason", "raw"]
_PARSERS = {"date": nz.parse_dates, "money": nz.parse_money, "year": nz.parse_years,
            "number": nz.parse_numbers, "code12": nz.parse_code12}


# Columns staging adds to what the contract lists (the warehouse stores them, the rules read them): name -> kind
# (flag: true/false; code: a short code).
DERIVED: dict[str, dict[str, str]] = {"poverty_register": {"unexited": "flag"}, "vehicles": {"vehicle_class": "code"}}

CHECK_MARK = "__"   # columns named ``<column>__<what>`` exist for the quality gate only and are never loaded
CLEANED = f"{CHECK_MARK}cleaned"   # ``<column>__cleaned``: the rows whose value had control, invisible or (names)
                                   # combining characters removed


@dataclass(frozen=True)
class Staged:
    """Grain of ``checked``: one row per data row the department sent, typed, with ``_reason`` (empty when the
    row is usable) and the gate's helper columns; of ``quarantine``: one row per rejected source row."""

    checked: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def cleaned(self) -> dict[str, int]:
        """Per column, how many values had control or invisible characters removed (a recorded normalisation)."""
        return {c.removesuffix(CLEANED): int(self.checked[c].sum()) for c in self.checked.columns if c.endswith(CLEANED)}

    @property
    def rows(self) -> pd.DataFrame:
        """One row per usable source row, without the gate's helper columns."""
        return usable_rows(self.checked)


def usable_rows(checked: pd.DataFrame) -> pd.DataFrame:
    """The rows of a checked frame without a reason, and only the columns the warehouse keeps."""
    return checked.loc[checked["_reason"].eq(""), kept_columns(checked.columns)].reset_index(drop=True)


def kept_columns(names) -> list[str]:
    """Of a checked frame's columns, those the warehouse keeps: not the reason, not the gate's helper columns."""
    return [c for c in names if CHECK_MARK not in c and c != "_reason"]


def _typed_columns(raw: pd.DataFrame, source: Source, policy: Policy) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical columns cast by kind, and the row-level reasons (empty string: no problem)."""
    out = pd.DataFrame({"_file": raw["_file"].astype("str"), "_row": raw["_row"].astype("int64")}, index=raw.index)
    reasons = pd.Series("", index=raw.index, dtype="str")
    for col in source.columns:
        if col.name not in raw.columns:
            continue
        values, cleaned = nz.strip_invisible(raw[col.name], marks=col.kind == "name")
        if cleaned.any():  # a normalisation, recorded: the quality gate counts these rows
            out[f"{col.name}{CLEANED}"] = cleaned
        if col.required and col.kind != "id":
            reasons = _append(reasons, values.str.strip().eq(""), f"必填字段为空 (required value missing): {col.name}")
        typed, bad = _cast(values, col, policy, out)
        out[col.name] = typed
        if col.stored_chars is not None:  # the warehouse's column is this wide: a longer value cannot be stored
            too_long = typed.astype("str").str.len().gt(col.stored_chars).fillna(False).astype(bool)
            reasons = _append(reasons, too_long,
                              f"值超过{col.stored_chars}个字符 (longer than {col.stored_chars} characters) in {col.name}")
        if col.kind == "vocab":   # the code as sent (spaces and width folded), for the gate's value-set check
            code = nz.squeeze(values)
            out[f"{col.name}{CHECK_MARK}code"] = code.where(code.ne(""), None)
        if bad is not None:
            reasons = _append(reasons, bad, f"无法识别的值 (unreadable value) in {col.name}")
            if col.kind != "vocab":  # the text that could not be read as this column's type
                out[f"{col.name}{CHECK_MARK}unreadable"] = values.where(bad, None)
    return out, reasons


def _append(reasons: pd.Series, mask: pd.Series, text: str | pd.Series) -> pd.Series:
    """Reasons with ``text`` added (``; ``-separated) where ``mask`` holds."""
    if not mask.any():  # the usual case, without building a column of text
        return reasons
    return reasons.mask(mask, reasons.where(reasons.eq(""), reasons + "; ") + text)


def _cast(values: pd.Series, col: Column, policy: Policy, out: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
    if col.kind == "id":
        ids = nz.normalise_ids(values)
        out[f"{col.name}_valid"] = ids["id_valid"]
        out[f"{col.name}_problem"] = ids["id_problem"]
        return ids["id_number"], None
    if col.kind == "name":
        out[f"{col.name}_norm"] = nz.normalise_names(values)
        return values.str.strip(), None
    if col.kind == "vocab":
        return nz.map_vocab(values, policy.vocabulary_of(col))
    if col.kind in _PARSERS:
        return _PARSERS[col.kind](values)
    return nz.fold_width(values).str.strip(), None


def quarantine_rows(raw: pd.DataFrame, source: str, reasons: pd.Series) -> pd.DataFrame:
    """One row per raw row with a reason: where it came from, why, and every cell as sent (JSON)."""
    bad = reasons.ne("")
    cells = raw.loc[bad].drop(columns=["_file", "_sheet", "_row"], errors="ignore")
    raw_json = [json.dumps(r, ensure_ascii=False) for r in cells.to_dict(orient="records")]
    return pd.DataFrame({
        "source": source, "file": raw.loc[bad, "_file"].astype("str"), "row": raw.loc[bad, "_row"].astype("int64"),
        "reason": reasons[bad], "raw": pd.Series(raw_json, index=cells.index, dtype="str"),
    }, columns=QUARANTINE_COLUMNS).reset_index(drop=True)


def _staged(raw: pd.DataFrame, name: str, policy: Policy, *, keep_invalid_ids: bool = False,
            extra: Callable[[pd.DataFrame, Policy], tuple[pd.DataFrame, pd.Series]] | None = None) -> Staged:
    source = SOURCES[name]
    typed, reasons = _typed_columns(raw, source, policy)
    id_column = next(c.name for c in source.columns if c.kind == "id")
    if not keep_invalid_ids:
        id_reason = typed[f"{id_column}_problem"].map(nz.ID_PROBLEMS).fillna("").astype("str")
        reasons = _append(reasons, id_reason.ne(""), id_reason)
    if extra is not None:
        typed, extra_reasons = extra(typed, policy)
        reasons = _append(reasons, extra_reasons.ne(""), extra_reasons)
    return Staged(checked=typed.assign(_reason=reasons).reset_index(drop=True),
                  quarantine=quarantine_rows(raw, name, reasons))


# ---------------------------------------------------------------- one function per source

def stg_poverty_register(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per registered person. Rows with invalid identity numbers stay (they raise DQ_INVALID_ID)."""
    def exited(typed: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, pd.Series]:
        typed = typed.assign(unexited=typed["status"].isin(policy.vocab.unexited_statuses))
        return typed, pd.Series("", index=typed.index, dtype="str")
    return _staged(raw, "poverty_register", policy, keep_invalid_ids=True, extra=exited)


def stg_public_security__hukou(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per person in household registration."""
    return _staged(raw, "hukou", policy)


def stg_public_security__vehicles(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per registered vehicle, with its GA 802 class code (``vehicle_class``)."""
    def classify(typed: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, pd.Series]:
        text = nz.fold_width(typed["vehicle_type"]).str.replace(r"\s+", "", regex=True).str.upper()
        code = text.where(text.str.fullmatch(r"[A-Z][0-9]{2}"), text.map(policy.vehicle_type_names))
        unknown = code.isna()
        typed = typed.assign(vehicle_class=code.astype("str"),
                             **{f"vehicle_type{CHECK_MARK}unreadable": typed["vehicle_type"].where(unknown, None)})
        return typed, unknown.map({True: "未知车辆类型 (unknown vehicle type)", False: ""}).astype("str")
    return _staged(raw, "vehicles", policy, extra=classify)


def stg_housing__real_estate(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per property right."""
    return _staged(raw, "real_estate", policy)


def stg_housing__housing_safety(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per housing-safety appraisal."""
    return _staged(raw, "housing_safety", policy)


def stg_civil_affairs__social_assistance(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per assisted person."""
    return _staged(raw, "social_assistance", policy)


def stg_civil_affairs__deaths(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per death record."""
    return _staged(raw, "deaths", policy)


def stg_education__students(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per student status record."""
    return _staged(raw, "students", policy)


def stg_health__medical_insurance(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per person and insured year."""
    return _staged(raw, "medical_insurance", policy)


def stg_health__illness(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per illness record."""
    return _staged(raw, "illness", policy)


def stg_organisation__cadres(raw: pd.DataFrame, policy: Policy) -> Staged:
    """One row per village committee member and term."""
    return _staged(raw, "cadres", policy)


def generic_staging(name: str) -> Callable[[pd.DataFrame, Policy], Staged]:
    """The staging of a deployment's own source: one row per record, cast by its contract (deployment.py)."""
    def stage(raw: pd.DataFrame, policy: Policy) -> Staged:
        return _staged(raw, name, policy)
    stage.__name__ = f"stg_{name}"
    return stage


STAGING: dict[str, Callable[[pd.DataFrame, Policy], Staged]] = {
    "poverty_register": stg_poverty_register,
    "hukou": stg_public_security__hukou,
    "vehicles": stg_public_security__vehicles,
    "real_estate": stg_housing__real_estate,
    "housing_safety": stg_housing__housing_safety,
    "social_assistance": stg_civil_affairs__social_assistance,
    "deaths": stg_civil_affairs__deaths,
    "students": stg_education__students,
    "medical_insurance": stg_health__medical_insurance,
    "illness": stg_health__illness,
    "cadres": stg_organisation__cadres,
}


# ---------------------------------------------------------------- a register a batch at a time

@dataclass(frozen=True)
class StagedFile:
    """What staging one source's file gave: the rows read, the rows it quarantined (one row per rejected source
    row, :data:`QUARANTINE_COLUMNS`) and per column the values cleaned of control characters."""

    rows_read: int
    quarantine: pd.DataFrame
    cleaned: dict[str, int]


def stage_file(raw_path: str | Path, name: str, policy: Policy, checked_path: str | Path) -> StagedFile:
    """Stage one source's raw rows (Parquet, text) into ``checked_path``, ``policy.engine.batch_rows`` rows at a time.

    Grain of the file written: one row per data row sent, as :attr:`Staged.checked` (the ``__cleaned`` marks
    counted, not kept). Staging has no joins: a row's outcome never depends on another row, so the batches give
    exactly what the whole register would, while only one batch's text and its intermediates are in memory.
    """
    stage = STAGING[name]
    quarantined, cleaned, rows_read = [], Counter(), 0
    with _CheckedWriter(Path(checked_path), name) as writer:
        for raw in _raw_batches(Path(raw_path), policy.engine.batch_rows):
            staged = stage(raw, policy)
            rows_read += len(raw)
            quarantined.append(staged.quarantine)
            cleaned.update(staged.cleaned)
            writer.write(staged.checked)
    quarantine = pd.concat(quarantined, ignore_index=True) if len(quarantined) > 1 else quarantined[0]
    return StagedFile(rows_read, quarantine, {c: n for c, n in cleaned.items() if n})


def _raw_batches(raw_path: Path, batch_rows: int) -> Iterator[pd.DataFrame]:
    """The raw text rows of one source, ``batch_rows`` at a time (one empty frame when nothing was sent)."""
    file = pq.ParquetFile(raw_path)
    yielded = False
    for batch in file.iter_batches(batch_size=batch_rows):
        yielded = True
        yield _raw_frame(batch.to_pandas())
    if not yielded:
        yield _raw_frame(file.schema_arrow.empty_table().to_pandas())


def _raw_frame(raw: pd.DataFrame) -> pd.DataFrame:
    raw["_row"] = raw["_row"].astype("int64")
    return raw


class _CheckedWriter:
    """Writes the checked batches of one source to one Parquet file, every batch with the first one's columns
    and types (a column missing from every row of a batch reads as text, never as Arrow's null type)."""

    def __init__(self, path: Path, source: str) -> None:
        self.path, self.source, self.writer = path, source, None

    def write(self, checked: pd.DataFrame) -> None:
        kept = checked.drop(columns=[c for c in checked.columns if c.endswith(CLEANED)])
        table = pa.Table.from_pandas(kept, preserve_index=False)
        if self.writer is None:
            schema = pa.schema([f.with_type(pa.large_string()) if pa.types.is_null(f.type) else f for f in table.schema],
                               metadata=table.schema.metadata)
            self.writer = pq.ParquetWriter(self.path, schema)
        names = self.writer.schema.names
        if sorted(table.column_names) != sorted(names):  # a staging function that is not one shape for every row
            raise RuntimeError(f"staging of {self.source} gave different columns for different batches")
        self.writer.write_table(table.select(names).cast(self.writer.schema))

    def __enter__(self) -> _CheckedWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()


def write_usable_rows(checked_path: str | Path, rejected: np.ndarray, rows_path: str | Path, batch_rows: int) -> int:
    """Write the usable rows of a checked file to ``rows_path``, a batch at a time, and say how many: those staging
    gave no reason and ``rejected`` (one boolean per checked row: the quality gate's quarantine) does not hold,
    with only the columns the warehouse keeps (as :func:`usable_rows`)."""
    file = pq.ParquetFile(checked_path)
    keep = kept_columns(file.schema_arrow.names)
    offset = written = 0
    with pq.ParquetWriter(rows_path, pa.schema([file.schema_arrow.field(n) for n in keep],
                                               metadata=file.schema_arrow.metadata)) as writer:
        for batch in file.iter_batches(batch_size=batch_rows):
            usable = pc.and_(pc.equal(batch["_reason"], ""), pa.array(~rejected[offset:offset + batch.num_rows]))
            offset += batch.num_rows
            kept = batch.filter(usable).select(keep)
            written += kept.num_rows
            writer.write_batch(kept)
    return written


def raw_rows_at(raw_path: str | Path, positions: np.ndarray, batch_rows: int) -> pd.DataFrame:
    """The raw rows at ``positions`` (increasing places in the raw file), indexed by those places; read a batch
    at a time, so only the rows asked for are held."""
    file, parts, offset = pq.ParquetFile(raw_path), [], 0
    for batch in file.iter_batches(batch_size=batch_rows):
        lo, hi = np.searchsorted(positions, [offset, offset + batch.num_rows])
        if hi > lo:
            parts.append(batch.take(pa.array(positions[lo:hi] - offset)).to_pandas().set_axis(positions[lo:hi]))
        offset += batch.num_rows
    return pd.concat(parts) if parts else file.schema_arrow.empty_table().to_pandas()
