"""Write clean canonical tables the way departments really send them (sources.md).

Per source: a format (xlsx with a merged title row, totals row and a notes
sheet; CSV in UTF-8, UTF-8-BOM or GB18030), header aliases rotated across
files, and dirt applied to values without changing their meaning: identity
numbers with spaces, apostrophes, lower-case x, full-width digits or in the
15-digit legacy form; dates and money in every form; names with stray spaces,
full-width or traditional characters. Large tables are written as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import opencc
import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font

from jingzhun.contract import SOURCES
from jingzhun.normalise import check_digits

XLSX_MAX_ROWS = 60_000
COUNTY_NAME = "靖远县"  # the county a single generated county's titles name (population.COUNTY)
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@dataclass(frozen=True)
class Plan:
    fmt: str                 # xlsx | csv
    encoding: str = "utf-8"  # for csv: utf-8, utf-8-sig, gb18030
    files: int = 1
    title: str = ""
    totals: bool = False
    notes_sheet: bool = False
    two_row_header: bool = False
    date_form: str = "iso"   # iso, slash, compact, chinese, dot, cell (Excel date cell)
    money_form: str = "mixed"


PLANS: dict[str, Plan] = {
    "poverty_register": Plan("xlsx", files=2, title="{county}建档立卡贫困人口花名册", totals=True, notes_sheet=True),
    "hukou": Plan("csv", "gb18030", files=3, date_form="chinese"),
    "vehicles": Plan("csv", "utf-8-sig", files=2, date_form="slash"),
    "real_estate": Plan("xlsx", two_row_header=True, date_form="cell"),
    "housing_safety": Plan("xlsx", title="农村住房安全性鉴定台账", date_form="compact"),
    "social_assistance": Plan("csv", "gb18030", files=2, title="{county}农村低保和特困供养对象花名册", date_form="dot"),
    "deaths": Plan("csv", "utf-8", date_form="dot"),
    "students": Plan("xlsx", files=2, notes_sheet=True, date_form="cell"),
    "medical_insurance": Plan("csv", "utf-8", files=2),
    "illness": Plan("xlsx", title="大病慢性病患者台账", totals=True, date_form="slash"),
    "cadres": Plan("csv", "utf-8-sig"),
}
DATE_COLUMNS = {c.name for s in SOURCES.values() for c in s.columns if c.kind == "date"}
MONEY_COLUMNS = {c.name for s in SOURCES.values() for c in s.columns if c.kind == "money"}
ID_COLUMNS = {c.name for s in SOURCES.values() for c in s.columns if c.kind == "id"}
NAME_COLUMNS = {c.name for s in SOURCES.values() for c in s.columns if c.kind == "name"}


def dirty_ids(rng: np.random.Generator, ids: pd.Series, legacy_ok: bool) -> pd.Series:
    """Valid numbers in the forms departments send; anything else is left exactly as it is."""
    s = ids.astype("str")
    valid = s.str.fullmatch(r"\d{17}[\dX]")
    valid[valid] = check_digits(s[valid].str[:17]).eq(s[valid].str[17])
    pick = pd.Series(rng.random(len(s)), index=s.index)
    out = s.copy()
    out = out.mask(valid & (pick < 0.03), " " + s + " ")
    out = out.mask(valid & pick.between(0.03, 0.06), "'" + s)
    out = out.mask(valid & pick.between(0.06, 0.09), s.str.lower())
    out = out.mask(valid & pick.between(0.09, 0.11), s.str.translate(FULL_WIDTH))
    if legacy_ok:
        born_19xx = s.str[6:8].eq("19")
        out = out.mask(valid & born_19xx & pick.between(0.11, 0.13), s.str[:6] + s.str[8:17])
    return out


def dirty_names(rng: np.random.Generator, names: pd.Series) -> pd.Series:
    """A few names with a stray space or in traditional characters (only where that converts back exactly)."""
    s = names.fillna("").astype("str")
    unique = pd.unique(s)
    trad = dict(zip(unique, opencc.OpenCC("s2t").convert("\n".join(unique)).split("\n")))
    back = dict(zip(trad.values(), opencc.OpenCC("t2s").convert("\n".join(trad.values())).split("\n")))
    traditional = s.map(trad)
    round_trips = traditional.map(back).eq(s)
    pick = pd.Series(rng.random(len(s)), index=s.index)
    out = s.mask(round_trips & (pick < 0.03), traditional)
    return out.mask(pick.between(0.03, 0.05) & s.str.len().ge(2), s.str[0] + " " + s.str[1:])


def date_text(values: pd.Series, form: str) -> pd.Series:
    d = pd.to_datetime(values, errors="coerce")
    text = {
        "iso": d.dt.strftime("%Y-%m-%d"), "slash": d.dt.year.astype("Int64").astype("str") + "/" + d.dt.month.astype("Int64").astype("str") + "/" + d.dt.day.astype("Int64").astype("str"),
        "compact": d.dt.strftime("%Y%m%d"), "dot": d.dt.strftime("%Y.%m.%d"),
        "chinese": d.dt.year.astype("Int64").astype("str") + "年" + d.dt.month.astype("Int64").astype("str") + "月" + d.dt.day.astype("Int64").astype("str") + "日",
    }.get(form, d.dt.strftime("%Y-%m-%d"))
    return text.where(d.notna(), "")


def money_text(rng: np.random.Generator, values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce").astype("Float64").round(2)
    pick = rng.random(len(v))
    plain = v.astype("str").str.replace(r"\.0$", "", regex=True).fillna("").replace("<NA>", "")
    cents = (v * 100).round().astype("Int64").astype("str").str.zfill(3)
    two_places = cents.str[:-2] + "." + cents.str[-2:]
    commas = two_places.str.replace(r"(\d)(?=(\d{3})+\.)", r"\1,", regex=True).fillna("")
    return plain.mask(pick < 0.3, commas).mask((pick >= 0.3) & (pick < 0.5), plain.where(plain.eq(""), plain + "元"))


def dirty_table(rng: np.random.Generator, name: str, table: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The table's values as text in the plan's forms (dates stay date objects for Excel date cells)."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        values = table[col]
        if col in ID_COLUMNS:
            out[col] = dirty_ids(rng, values, legacy_ok=name != "poverty_register")
        elif col in NAME_COLUMNS:
            out[col] = dirty_names(rng, values)
        elif col in DATE_COLUMNS:
            out[col] = pd.to_datetime(values, errors="coerce") if plan.date_form == "cell" and plan.fmt == "xlsx" \
                else date_text(values, plan.date_form)
        elif col in MONEY_COLUMNS:
            out[col] = money_text(rng, values)
        else:
            out[col] = _text(values)
    return out


def _text(values: pd.Series) -> pd.Series:
    """Plain text of a column; integral floats (years, counts) without a trailing ``.0``."""
    numeric = pd.to_numeric(values, errors="coerce") if values.dtype != object else None
    if numeric is not None and numeric.notna().any() and (numeric.dropna() % 1 == 0).all():
        return numeric.astype("Int64").astype("str").replace("<NA>", "")
    return values.astype(object).where(values.notna(), "").astype("str")


def headers_for(name: str, columns: list[str], file_no: int) -> list[str]:
    """One alias per column, rotating across files so every alias family is exercised."""
    source = SOURCES[name]
    heads = []
    for col in columns:
        aliases = source.column(col).aliases or (col,)
        heads.append(aliases[file_no % len(aliases)])
    return heads


def write_source(rng: np.random.Generator, landing: Path, name: str, table: pd.DataFrame, *,
                 sender: tuple[str, str] | None = None) -> list[Path]:
    """``table`` as the files a department sends, under ``landing/<name>/``. ``sender``: the (code, name) of the
    county that sent them, in their file names and titles (one county's files beside the others')."""
    plan = PLANS.get(name, Plan("csv", "utf-8-sig"))  # a pack's source: plain CSV
    stem = name if sender is None else f"{sender[0]}_{name}"
    plan = replace(plan, title=plan.title.format(county=COUNTY_NAME if sender is None else sender[1]))
    if plan.fmt == "xlsx" and len(table) > XLSX_MAX_ROWS:
        plan = Plan("csv", "utf-8-sig", files=plan.files, title=plan.title, totals=plan.totals)
    folder = landing / name
    folder.mkdir(parents=True, exist_ok=True)
    text = dirty_table(rng, name, table, plan)
    parts = np.array_split(np.arange(len(text)), max(1, plan.files))
    written = []
    for i, rows in enumerate(parts):
        chunk = text.iloc[rows]
        heads = headers_for(name, list(chunk.columns), i)
        path = folder / f"{stem}_{i + 1:02d}.{plan.fmt}"
        if plan.fmt == "xlsx":
            _write_xlsx(path, chunk, heads, plan)
        else:
            _write_csv(path, chunk, heads, plan)
        written.append(path)
    return written


def _write_csv(path: Path, chunk: pd.DataFrame, heads: list[str], plan: Plan) -> None:
    body = chunk.copy()
    body.columns = heads
    with open(path, "w", encoding=plan.encoding, newline="") as f:
        if plan.title:
            f.write(plan.title + "\n")
        body.to_csv(f, index=False, lineterminator="\n")
        if plan.totals:
            f.write(f"合计,{len(chunk)}人" + "," * (len(heads) - 2) + "\n")


def _write_xlsx(path: Path, chunk: pd.DataFrame, heads: list[str], plan: Plan) -> None:
    wb = openpyxl.Workbook()
    if plan.notes_sheet:
        notes = wb.active
        notes.title = "填表说明"
        notes.append(["本表由县级部门导出,数据截至导出日期。"])
        ws = wb.create_sheet("数据")
    else:
        ws = wb.active
        ws.title = "Sheet1"
    width = len(heads)
    if plan.title:
        ws.append([plan.title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
        ws.cell(1, 1).font = Font(bold=True)
        ws.cell(1, 1).alignment = Alignment(horizontal="center")
    if plan.two_row_header:
        group = ["权利人信息"] * 2 + ["不动产信息"] * (width - 2)
        ws.append(group[:width])
        top = ws.max_row
        ws.merge_cells(start_row=top, start_column=1, end_row=top, end_column=2)
        ws.merge_cells(start_row=top, start_column=3, end_row=top, end_column=width)
    ws.append(heads)
    for row in chunk.itertuples(index=False):
        ws.append([_xlsx_value(v) for v in row])
    if plan.totals:
        ws.append(["合计", f"{len(chunk)}人"])
    wb.save(path)


def _xlsx_value(v: object) -> object:
    """Excel cells: timestamps become date cells, missing values empty cells, text stays text."""
    if v is pd.NaT or v is None:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v
