"""Files for people: the flags export (interface.md), with cells made safe for spreadsheets."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from sqlalchemy import Engine, select

from jingzhun import clock, warehouse
from jingzhun.privacy import Refused
from jingzhun.written import save_workbook, write_whole

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text that a spreadsheet will not run as a formula: a leading = + - @ or control character gets a quote."""
    text = values.astype(object).where(values.notna(), "").astype("str")
    risky = text.str.startswith(_FORMULA_START) | text.str.match(r"^[\x00-\x1f]")
    return text.mask(risky, "'" + text)


def flags_for_export(engine: Engine, status: str = "open") -> pd.DataFrame:
    """One row per flag: the interface columns first and in order, then the Chinese evidence text and, for a flag
    a steward decided, the latest decision (decision, reviewer, when, note)."""
    from jingzhun.review import latest_reviews

    with engine.connect() as conn:
        frame = pd.read_sql(select(warehouse.flags), conn)
        latest = latest_reviews(conn)
    if status != "all":
        frame = frame[frame["status"].eq(status)]
    frame = frame.sort_values(["village_code", "rule_code", "household_id", "hukou_household_id", "id_number"])
    decided = {"decision": "decision", "reviewer": "reviewer", "decided_at": "decided_at", "note": "decision_note"}
    for column, name in decided.items():
        values = frame["flag_key"].map(latest[column]) if not latest.empty else pd.Series(None, index=frame.index)
        frame[name] = values.astype("str").where(values.notna(), "") if column != "decided_at" else \
            clock.local_times(values).dt.strftime("%Y-%m-%d %H:%M").fillna("")  # as people read it
    return frame[[*warehouse.FLAG_EXPORT_COLUMNS, "evidence_text", *decided.values(), "flag_key"]].reset_index(drop=True)


EXPORT_SUFFIXES = (".csv", ".xlsx")
TEXT_COLUMNS = ("household_id", "hukou_household_id", "id_number", "village_code", "flag_key")  # never numbers


class ExportError(Refused):
    """An output that cannot be written as asked (an unknown file type)."""


def check_export_path(out: Path, suffixes: tuple[str, ...] = EXPORT_SUFFIXES, what: str = "导出文件") -> None:
    """Refuse an output path whose file type is not one of ``suffixes``."""
    if Path(out).suffix.lower() not in suffixes:
        raise ExportError(f"{out}: {what}须以 {' 或 '.join(suffixes)} 结尾 (must end in {' or '.join(suffixes)})")


def write_table(frame: pd.DataFrame, out: Path, sheet: str = "flags") -> Path:
    """CSV (UTF-8 with BOM, the machine contract of interface.md) or xlsx (for people: every cell text, so a
    spreadsheet keeps identity numbers whole; widths fitted, header frozen), chosen by the file's suffix."""
    out = Path(out)
    check_export_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    safe = frame.apply(spreadsheet_safe)
    if out.suffix.lower() == ".csv":
        return write_whole(out, lambda part: safe.to_csv(part, index=False, encoding="utf-8-sig"))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(list(safe.columns))
    for row in safe.itertuples(index=False):
        ws.append(list(row))
    for j, name in enumerate(safe.columns, start=1):
        letter = openpyxl.utils.get_column_letter(j)
        longest = int(safe[name].str.len().max()) if len(safe) else 0
        ws.column_dimensions[letter].width = min(max(len(str(name)), longest) + 2, 60)
        if name in TEXT_COLUMNS:
            for cell in ws[letter][1:]:
                cell.number_format = "@"   # typed as text: a steward's edit stays text too
    ws.freeze_panes = "A2"
    # A4 landscape with the header on every page; not shrunk to one page width (17 columns, two of them long
    # evidence, would print unreadably small): the review workbook is the document made for printing
    ws.page_setup.orientation, ws.page_setup.paperSize = "landscape", ws.PAPERSIZE_A4
    ws.print_title_rows = "1:1"
    save_workbook(wb, out)
    return out
