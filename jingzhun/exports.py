"""Files for people: the flags export (interface.md), with cells made safe for spreadsheets."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from sqlalchemy import Engine, select

from jingzhun import warehouse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text that a spreadsheet will not run as a formula: a leading = + - @ or control character gets a quote."""
    text = values.astype(object).where(values.notna(), "").astype("str")
    risky = text.str.startswith(_FORMULA_START) | text.str.match(r"^[\x00-\x1f]")
    return text.mask(risky, "'" + text)


def flags_for_export(engine: Engine, status: str = "open") -> pd.DataFrame:
    """One row per flag: the interface columns first and in order, then the Chinese evidence text."""
    with engine.connect() as conn:
        frame = pd.read_sql(select(warehouse.flags), conn)
    if status != "all":
        frame = frame[frame["status"].eq(status)]
    frame = frame.sort_values(["village_code", "rule_code", "household_id", "hukou_household_id", "id_number"])
    return frame[[*warehouse.FLAG_EXPORT_COLUMNS, "evidence_text", "flag_key"]].reset_index(drop=True)


def write_table(frame: pd.DataFrame, out: Path, sheet: str = "flags") -> Path:
    """CSV (UTF-8 with BOM, so Excel opens it) or xlsx, chosen by the file's suffix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    safe = frame.apply(spreadsheet_safe)
    if out.suffix.lower() == ".csv":
        safe.to_csv(out, index=False, encoding="utf-8-sig")
    elif out.suffix.lower() == ".xlsx":
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet(sheet)
        ws.append(list(safe.columns))
        for row in safe.itertuples(index=False):
            ws.append(list(row))
        wb.save(out)
    else:
        raise ValueError(f"{out}: the export must end in .csv or .xlsx")
    return out
