"""The 公示 list: confirmed additions and removals, posted in each village for the period the policy sets.

One row per confirmed add or remove flag (:func:`publicity_list`); the workbook (:func:`write_publicity`)
gives each village its own printed page: title with township and village names, the 公示 period, the list
with identity numbers masked, the line telling residents where to object, and the signatures.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.pagebreak import Break
from sqlalchemy import Engine, select

from jingzhun import labels, warehouse
from jingzhun.exports import spreadsheet_safe
from jingzhun.policy import Policy
from jingzhun.review import rule_titles

CATEGORIES = {"add": "拟纳入", "remove": "拟清退"}
COLUMNS = [("序号", 6), ("类别", 8), ("户主姓名", 11), ("姓名", 11), ("身份证号", 22), ("事由", 24)]


def mask_id(values: pd.Series, policy: Policy) -> pd.Series:
    """Identity numbers for public posting: first and last characters shown, the rest as *."""
    s = values.astype("str")
    if s.empty:  # nothing confirmed: numpy's string repeat has nothing to reduce
        return s
    head, tail = policy.publicity_show_first, policy.publicity_show_last
    shown_tail = s.str[-tail:].where(s.str.len() > head + tail, "") if tail else pd.Series("", index=s.index, dtype="str")
    hidden = (s.str.len() - head - shown_tail.str.len()).clip(lower=0)
    stars = pd.Series(np.char.multiply("*", hidden.to_numpy(dtype=int)), index=s.index, dtype="str")
    return s.str[:head] + stars + shown_tail


def publicity_list(engine: Engine, policy: Policy) -> pd.DataFrame:
    """One row per confirmed addition or removal: township and village (code and name), 类别, 事由, the head of
    the household, the person the flag is about (a household's head where the flag is about the household) and
    that person's identity number masked. Ordered by township, village, category, head."""
    f = warehouse.flags.c
    with engine.connect() as conn:
        confirmed = pd.read_sql(select(warehouse.flags).where(f.status == "confirmed", f.direction.in_(list(CATEGORIES))),
                                conn)
        people = labels.people(conn, confirmed)
        heads = labels.household_heads(conn, confirmed, "id_number")
        reference = labels.stored_regions(conn)
    person = confirmed["id_number"].where(confirmed["id_number"].ne(""), heads)
    name = people["person_name"].where(confirmed["id_number"].ne(""), people["head_name"])
    out = pd.DataFrame({
        "township_code": confirmed["village_code"].str[:9], "village_code": confirmed["village_code"],
        "乡镇": labels.township_names(confirmed["village_code"], reference),
        "村": labels.region_names(confirmed["village_code"], reference, "village"),
        "类别": confirmed["direction"].map(CATEGORIES), "事由": confirmed["rule_code"].map(rule_titles()),
        "户主姓名": people["head_name"], "姓名": name.fillna(""), "身份证号": mask_id(person.fillna(""), policy),
    })
    return out.sort_values(["township_code", "village_code", "类别", "户主姓名", "姓名"]).reset_index(drop=True)


def period(start: date, policy: Policy) -> tuple[date, date]:
    """The 公示 period: ``policy.publicity_days`` days from ``start``, both ends included."""
    return start, start + timedelta(days=policy.publicity_days - 1)


def _day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def write_publicity(listed: pd.DataFrame, out: Path, policy: Policy, start: date) -> Path:
    """The 公示 workbook: one A4 portrait page per village (title, period, list, where to object, signatures)."""
    first, last = period(start, policy)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "公示名单"
    width = len(COLUMNS)
    thin = Side(style="thin", color="000000")
    ruled = Border(left=thin, right=thin, top=thin, bottom=thin)

    def line(text: str, size: int = 11, bold: bool = False, align: str = "left", height: float = 20) -> None:
        ws.append([text])
        row = ws.max_row
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        cell = ws.cell(row, 1)
        cell.font = Font(size=size, bold=bold)
        cell.alignment = Alignment(horizontal=align, vertical="center", wrap_text=True)
        ws.row_dimensions[row].height = height

    for i, ((_, _, township, village), rows) in enumerate(listed.groupby(
            ["township_code", "village_code", "乡镇", "村"], sort=False)):
        if i:
            ws.row_breaks.append(Break(id=ws.max_row))
        kinds = "/".join(k for k in CATEGORIES.values() if k in set(rows["类别"]))
        line(f"{township}{village} {start.year}年 动态调整{kinds}对象公示", size=16, bold=True, align="center", height=36)
        line(f"公示期:{_day(first)}至{_day(last)}(共{policy.publicity_days}天)", align="center")
        ws.append([h for h, _ in COLUMNS])
        for cell in ws[ws.max_row]:
            cell.font, cell.border = Font(bold=True), ruled
            cell.alignment = Alignment(horizontal="center", vertical="center")
        body = rows[["类别", "户主姓名", "姓名", "身份证号", "事由"]].apply(spreadsheet_safe)
        for n, values in enumerate(body.itertuples(index=False), start=1):
            ws.append([n, *values])
            for cell in ws[ws.max_row]:
                cell.border = ruled
                cell.alignment = Alignment(vertical="center", wrap_text=True,
                                           horizontal="center" if cell.column <= 2 else None)
                cell.number_format = "@" if cell.column > 1 else "0"
            ws.row_dimensions[ws.max_row].height = 20
        ws.append([])
        line(policy.publicity_contact, height=36)
        line(f"{village}村民委员会        {township}人民政府", align="right")
        line(_day(first), align="right")
    for i, (_, w) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = w
    ws.page_setup.orientation, ws.page_setup.paperSize = "portrait", ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.6, right=0.6, top=0.7, bottom=0.7)
    ws.print_options.horizontalCentered = True
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out
