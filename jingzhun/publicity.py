"""The 公示 list: every confirmed change of the register (纳入, 清退, 退出, 返贫), posted in each village for the
period the policy sets (seed 000: 公示时间不少于七天).

Grain: :func:`publicity_list` gives one row per confirmed flag not yet posted (or, for a re-issue, per flag posted
for that period); the workbook (:func:`write_publicity`) one row per person and change, each village on its own
printed page: title with township and village names, the 公示 period, the list with identity numbers masked (and
still told apart on the page), the reason in villagers' words (the catalogue's ``public_reason``), the line telling
residents where to object, and the signatures. :func:`record_posting` records what a list posted, so the next list
carries only what was not yet posted.
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
from sqlalchemy import Engine, insert, select

from jingzhun import labels, warehouse
from jingzhun.catalogue import POSTED_DIRECTIONS, RULES
from jingzhun.exports import spreadsheet_safe
from jingzhun.policy import Policy
from jingzhun.review import latest_reviews
from jingzhun.sheets import LINE_HEIGHT, text_lines
from jingzhun.written import save_workbook

CATEGORIES = {"add": "拟纳入", "remove": "拟清退", "exit": "拟退出", "revert": "拟返贫"}
assert tuple(CATEGORIES) == POSTED_DIRECTIONS  # one list of what is posted: the catalogue's
COLUMNS = [("序号", 5), ("类别", 8), ("户主姓名", 10), ("姓名", 10), ("身份证号", 21), ("事由", 36)]


def mask_id(values: pd.Series, policy: Policy, first: int | None = None, last: int | None = None) -> pd.Series:
    """Identity numbers for public posting: the first and last characters shown (the policy's numbers unless
    given), the rest as *."""
    s = values.astype("str")
    if s.empty:  # nothing confirmed: numpy's string repeat has nothing to reduce
        return s
    head = policy.publicity_show_first if first is None else first
    tail = policy.publicity_show_last if last is None else last
    shown_tail = s.str[-tail:].where(s.str.len() > head + tail, "") if tail else pd.Series("", index=s.index, dtype="str")
    hidden = (s.str.len() - head - shown_tail.str.len()).clip(lower=0)
    stars = pd.Series(np.char.multiply("*", hidden.to_numpy(dtype=int)), index=s.index, dtype="str")
    return s.str[:head] + stars + shown_tail


def distinct_masks(numbers: pd.Series, pages: pd.Series, policy: Policy) -> pd.Series:
    """Masked numbers that tell two people on one page apart: where two numbers of a page mask alike, those show
    more of their ends (up to the last four and the first six characters: the birth date, characters 7 to 14,
    stays hidden), level by level for the whole column."""
    levels = [(policy.publicity_show_first, policy.publicity_show_last), (policy.publicity_show_first, 4), (6, 4)]
    out = mask_id(numbers, policy)
    for first, last in levels[1:]:
        same = pd.DataFrame({"page": pages, "mask": out, "number": numbers}).groupby(
            ["page", "mask"])["number"].transform("nunique").gt(1)
        if not same.any():
            break
        out = out.mask(same, mask_id(numbers[same], policy, first, last))
    return out


def publicity_list(engine: Engine, policy: Policy, reissue: date | None = None) -> pd.DataFrame:
    """One row per confirmed change of the register not yet posted (``reissue``: per flag posted on the list whose
    period starts that day): flag key and confirmation, township and village (code and name), 类别, 事由 in
    villagers' words, the head of the household, the person the flag is about (the head where it is about the
    household) and that person's identity number masked. Ordered by township, village, category, head."""
    f, p = warehouse.flags.c, warehouse.publicity_posts.c
    with engine.connect() as conn:
        if reissue is None:
            chosen = pd.read_sql(select(warehouse.flags).where(f.status == "confirmed",
                                                               f.direction.in_(list(CATEGORIES))), conn)
            chosen["review_id"] = chosen["flag_key"].map(latest_reviews(conn)["review_id"]).fillna(0).astype("int64")
            posted = pd.read_sql(select(p.flag_key, p.review_id), conn)
            chosen = chosen.merge(posted, how="left", indicator=True)
            chosen = chosen[chosen["_merge"].eq("left_only")].drop(columns="_merge").reset_index(drop=True)
        else:
            posted = pd.read_sql(select(p.flag_key, p.review_id).where(p.period_start == reissue), conn)
            chosen = pd.read_sql(select(warehouse.flags).where(f.flag_key.in_(posted["flag_key"].tolist())), conn)
            chosen = chosen.merge(posted, how="inner")
        posted = posted_people(conn, chosen, policy)
        reference = labels.stored_regions(conn)
    out = pd.DataFrame({
        "flag_key": chosen["flag_key"], "review_id": chosen["review_id"], "direction": chosen["direction"],
        "household_id": chosen["household_id"], "hukou_household_id": chosen["hukou_household_id"],
        "township_code": chosen["village_code"].str[:9], "village_code": chosen["village_code"],
        "乡镇": labels.township_names(chosen["village_code"], reference),
        "村": labels.region_names(chosen["village_code"], reference, "village"),
        **posted,
    })
    return out.sort_values(["township_code", "village_code", "类别", "户主姓名", "姓名"]).reset_index(drop=True)


def posted_people(conn, chosen: pd.DataFrame, policy: Policy) -> dict[str, pd.Series]:
    """What a 公示 or 公告 shows of each flag of ``chosen`` (same index): 类别, 事由 in villagers' words, the head of
    the household, the person it is about (the head where it is about the household) and that person's number
    masked so that two on one village's page tell apart; ``_person``, the number unmasked, for the caller's use."""
    people = labels.people(conn, chosen)
    heads = labels.household_heads(conn, chosen, "id_number")
    person = chosen["id_number"].where(chosen["id_number"].ne(""), heads).fillna("")
    name = people["person_name"].where(chosen["id_number"].ne(""), people["head_name"])
    reasons = {code: rule.public_reason or rule.title for code, rule in RULES.items()}
    return {"类别": chosen["direction"].map(CATEGORIES), "事由": chosen["rule_code"].map(reasons),
            "户主姓名": people["head_name"], "姓名": name.fillna(""),
            "身份证号": distinct_masks(person, chosen["village_code"], policy), "_person": person}


def record_posting(engine: Engine, listed: pd.DataFrame, start: date, policy: Policy, out: Path) -> int:
    """Record what a list posted (each flag with the confirmation it posted, its household and the period), so
    the next list carries only what was not yet posted."""
    first, last = period(start, policy)
    rows = listed[["flag_key", "review_id", "household_id", "hukou_household_id", "village_code", "direction"]]
    with engine.begin() as conn:
        conn.execute(insert(warehouse.publicity_posts), rows.assign(
            period_start=first, period_end=last, list_file=Path(out).name, posted_at=warehouse.now()).to_dict("records"))
    return len(rows)


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
        people = rows.groupby(["类别", "户主姓名", "姓名", "_person", "身份证号"], sort=False)["事由"].agg(
            lambda r: ";".join(dict.fromkeys(r))).reset_index()  # one line per person and change, every reason
        body = people[["类别", "户主姓名", "姓名", "身份证号", "事由"]].apply(spreadsheet_safe)
        for n, values in enumerate(body.itertuples(index=False), start=1):
            ws.append([n, *values])
            for cell in ws[ws.max_row]:
                cell.border = ruled
                cell.alignment = Alignment(vertical="center", wrap_text=True,
                                           horizontal="center" if cell.column <= 2 else None)
                cell.number_format = "@" if cell.column > 1 else "0"
            ws.row_dimensions[ws.max_row].height = max(20, LINE_HEIGHT * max(
                text_lines(value, width) for value, (_, width) in zip(values, COLUMNS[1:])))
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
    save_workbook(wb, out)
    return out
