"""Printed tables for people: one owner of how a report sheet looks on screen and on A4.

A sheet is a title line, a header of Chinese column names and the rows: text wrapped and rows as tall as their
text (spreadsheets do not grow the rows of a file), numbers kept numbers, shares shown as percentages, the
header frozen and repeated on every printed page, A4 landscape at the page width, page numbers below. Every
text cell is escaped against formula injection.
"""

from __future__ import annotations

import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.page import PageMargins

from jingzhun.exports import spreadsheet_safe

Columns = list[tuple[str, str, int]]   # (header, frame column, width in characters)
PERCENT_COLUMNS = ("share", "incidence", "threshold")   # frame columns holding a share of 1, shown as 0.00%
MAX_ROW_LINES = 20
LINE_HEIGHT = 17.5   # points per wrapped line: a CJK font at 11 points needs more than the 15 of Latin text


def table_sheet(ws, title: str, frame: pd.DataFrame, columns: Columns, name: str | None = None,
                subtitle: str = "", landscape: bool = True) -> None:
    """Write ``frame`` (its ``columns``) below ``title`` (and ``subtitle``) on ``ws``, set up for print."""
    if name:
        ws.title = name
    ws.append([_text(title)])
    ws.cell(ws.max_row, 1).font = Font(bold=True, size=13)
    if subtitle:
        ws.append([_text(subtitle)])
    header_row = ws.max_row + 1
    ws.append([header for header, _, _ in columns])
    for cell in ws[header_row]:
        cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    body = frame.reindex(columns=[key for _, key, _ in columns])
    for row in body.apply(cells).itertuples(index=False):
        ws.append(list(row))
    widths = [w for _, _, w in columns]
    for j, (_, key, width) in enumerate(columns, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width = width
        for (cell,) in ws.iter_rows(min_row=header_row + 1, min_col=j, max_col=j):
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if key in PERCENT_COLUMNS:
                cell.number_format = "0.00%"
    for r in range(header_row, ws.max_row + 1):
        lines = max(text_lines(ws.cell(r, j).value, widths[j - 1]) for j in range(1, len(columns) + 1))
        ws.row_dimensions[r].height = LINE_HEIGHT * min(lines, MAX_ROW_LINES)
    ws.freeze_panes = ws.cell(header_row + 1, 1).coordinate
    ws.print_title_rows = f"{header_row}:{header_row}"
    print_setup(ws, landscape)


def print_setup(ws, landscape: bool = True) -> None:
    """A4 (landscape by default) at the page width, narrow margins, the sheet's name and page numbers below."""
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.75, bottom=0.75, header=0.3, footer=0.3)  # header and footer clear of the body
    ws.oddFooter.center.text = "&A 第 &P 页,共 &N 页"


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: two for a CJK character, one for others."""
    return sum(2 if ord(c) >= 0x2E80 else 1 for c in text)


def text_lines(value: object, width: int) -> int:
    """Lines a value takes in a wrapped cell ``width`` characters wide."""
    if value is None or isinstance(value, (int, float)):
        return 1
    return sum(max(1, -(-display_width(part) // max(width - 1, 1))) for part in str(value).split("\n"))


def cells(values: pd.Series) -> pd.Series:
    """Numbers stay numbers (missing: empty cell); text is escaped against formula injection."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(object).where(values.notna(), None)
    return spreadsheet_safe(values)


def _text(value: str) -> str:
    return str(spreadsheet_safe(pd.Series([value])).iloc[0])
