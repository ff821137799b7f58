"""The steward's review workbook (decisions come back through :mod:`jingzhun.review_import`).

Grain: one row per open flag. The workbook lists them grouped by township and village, with the evidence in
words, a decision column (确认 / 驳回 / 待核实, a drop-down) and a note; hidden columns hold what the import binds
each decision to (the flag, the evidence seen, the flag's state then, and a check of every read-only cell), and a
custom property the region the workbook was written for.
"""

from __future__ import annotations

import json
from copy import copy
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.pagebreak import Break
from sqlalchemy import Connection, Engine, func, select

from jingzhun import clock, labels, warehouse
from jingzhun.exports import spreadsheet_safe
from jingzhun.sheets import LINE_HEIGHT, print_setup, text_lines
from jingzhun.catalogue import RULES
from jingzhun.written import save_workbook

SHEET = "核实清单"
DECISIONS = {"确认": "confirmed", "驳回": "dismissed", "待核实": "open"}
COLUMNS = [  # (header, source column, width)
    ("乡镇", "township_name", 9), ("村", "village_name", 9), ("规则", "rule_title", 12), ("方向", "direction_title", 5),
    ("状态", "state_title", 7), ("户主", "head_name", 8), ("姓名", "person_name", 8), ("户编号", "household_id", 20),
    ("户号", "hukou_household_id", 16), ("身份证号", "id_number", 19), ("证据", "evidence_text", 42),
    ("上次决定", "history", 16), ("决定", "decision", 7), ("备注", "note", 14),
    ("标识", "flag_key", 10), ("证据摘要", "evidence_hash", 10), ("状态标记", "state_token", 10),
    ("行校验", "row_check", 10),
]
# hidden: which flag, the evidence seen, the flag's state then, and what the row showed (its read-only cells)
KEY_COLUMNS = ("标识", "证据摘要", "状态标记", "行校验")
HEADERS = [c[0] for c in COLUMNS]
EDITABLE = ("决定", "备注")  # all a steward may type; every other visible cell is checked on import
SHOWN = [h for h in HEADERS if h not in KEY_COLUMNS and h not in EDITABLE]
SCOPE_PROPERTY = "jingzhun.scope"  # the workbook's custom property: the region (and households) its rows lie in
CHECK_CHARS = 4


def row_checks(shown: pd.DataFrame) -> pd.Series:
    """Per row, a check of every read-only cell as written (:data:`SHOWN`, in order, 4 hex digits of SHA-256
    each): on import a cell typed over, or a row sorted apart from its hidden key, names its column."""
    parts = [warehouse.sha256_hex(cell_text(shown[h])).str[:CHECK_CHARS] for h in SHOWN]
    return "v1:" + parts[0].str.cat(parts[1:]) if len(shown) else pd.Series(dtype="str")


def cell_text(values: pd.Series) -> pd.Series:
    """A cell's text as the check reads it: empty for none, line ends and outer spaces as an office suite keeps them."""
    text = values.astype(object).where(values.notna(), "").astype("str")
    return text.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False).str.strip()


def rule_titles() -> dict[str, str]:
    """Each rule's Chinese title, from the catalogue this process runs (a deployment's rules included)."""
    return {code: r.title for code, r in RULES.items()}
DIRECTION_TITLES = {"remove": "清退", "add": "纳入", "revert": "返贫", "exit": "退出", "refer": "转办", "review": "核实"}


class ReviewError(ValueError):
    """A review workbook that cannot be imported; the message lists every problem."""


def write_review_workbook(warehouse_db: Engine | Connection, out: Path, scope: warehouse.Scope | None = None) -> Path:
    """The open flags for stewards (one row per flag; those inside ``scope`` for a reconciliation), grouped by
    township and village, named as people know them (:mod:`jingzhun.labels`). ``warehouse_db`` may be the publish
    transaction's connection, so the workbook is written before that transaction commits."""
    frame = pd.read_sql(select(warehouse.flags).where(warehouse.flags.c.status == "open"), warehouse_db)
    if scope is not None:
        frame = frame[scope.holds(frame)].reset_index(drop=True)
    latest = latest_reviews(warehouse_db)
    frame["state_token"] = state_tokens(frame, latest)
    frame = frame.assign(**decision_history(frame, latest))
    prop = {"region": scope.region or "", "households": list(scope.households)} if scope else {"region": ""}
    title = "动态调整核实清单"
    if scope is not None and scope.region:  # a reconciliation says what it covers (the place's names lead the title)
        title = f"{title}(对账 {scope.region}{f',{len(scope.households)} 户' if scope.households else ''})"
    return write_sheet(warehouse_db, frame, out, prop, list(DECISIONS), "请选择 确认 / 驳回 / 待核实", title)


def write_sheet(warehouse_db, frame: pd.DataFrame, out: Path, scope_property: dict, choices: list[str], choice_help: str,
                title: str, hidden: tuple[str, ...] = (), footer: str = "", widths: dict[str, int] | None = None,
                font_size: float | None = None) -> Path:
    """The workbook of :data:`COLUMNS` for ``frame`` (flags with ``state_token``, ``state_title``, ``history``,
    ``decision`` and ``note``): named as people know them, a drop-down of ``choices`` in 决定, the hidden key
    columns (and ``hidden`` ones: shown on screen as empty of use, not printed), the scope in a custom property,
    A4 printing with ``title`` and ``footer`` (``widths``: columns narrower than :data:`COLUMNS` says; ``font_size``:
    larger text, so that what fits the page width still prints at 9 points or more)."""
    reference = labels.stored_regions(warehouse_db)
    frame = frame.assign(township_code=frame["village_code"].str[:9], rule_title=frame["rule_code"].map(rule_titles()),
                         direction_title=frame["direction"].map(DIRECTION_TITLES),
                         township_name=labels.township_names(frame["village_code"], reference),
                         village_name=labels.region_names(frame["village_code"], reference, "village"),
                         **labels.people(warehouse_db, frame))
    frame = frame.sort_values(["township_code", "village_code", "rule_code", "household_id", "id_number"])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEET
    wb.custom_doc_props.append(StringProperty(name=SCOPE_PROPERTY, value=json.dumps(scope_property)))
    ws.append(HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True, size=font_size)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    safe = frame.assign(row_check="")[[c[1] for c in COLUMNS]].apply(spreadsheet_safe)
    safe.columns = HEADERS
    safe["行校验"] = row_checks(safe).to_numpy() if len(safe) else []
    for row in safe.itertuples(index=False):
        ws.append(list(row))
    last = ws.max_row
    choice = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="决定", error=choice_help)
    ws.add_data_validation(choice)
    decision_col = openpyxl.utils.get_column_letter(HEADERS.index("决定") + 1)
    choice.add(f"{decision_col}2:{decision_col}{max(last, 2)}")
    widths = {header: (widths or {}).get(header, width) for header, _, width in COLUMNS}
    for i, header in enumerate(HEADERS, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = widths[header]
    grow = (font_size or 11) / 11
    for col in (*KEY_COLUMNS, *hidden):
        ws.column_dimensions[openpyxl.utils.get_column_letter(HEADERS.index(col) + 1)].hidden = True
    wrapped = [HEADERS.index(h) for h in ("乡镇", "村", "规则", "状态", "户主", "姓名", "证据", "上次决定", "备注")]
    styles = None  # the first row's cell styles, copied to the others (openpyxl looks a style up per assignment)
    for row in ws.iter_rows(min_row=2):
        lines = 1
        for j, cell in enumerate(row):
            if styles is None:
                cell.alignment = Alignment(wrap_text=j in wrapped, vertical="top")
                if font_size:
                    cell.font = Font(size=font_size)
            else:
                cell._style = copy(styles[j])
            if j in wrapped:
                lines = max(lines, text_lines(cell.value, int(widths[HEADERS[j]] / grow)))
        styles = styles or [copy(cell._style) for cell in row]
        ws.row_dimensions[row[0].row].height = LINE_HEIGHT * grow * lines   # spreadsheets do not grow wrapped rows
    ws.freeze_panes = "A2"
    _print_setup(ws, frame["village_code"].tolist(), f"{labels.area_name(frame['village_code'], reference)} {title}",
                 footer)
    if font_size:
        ws.oddHeader.center.size, ws.oddFooter.center.size = round(font_size * 1.3), font_size
    ws.auto_filter.ref = f"A1:{openpyxl.utils.get_column_letter(len(HEADERS))}{max(last, 1)}"
    summary = wb.create_sheet("按村汇总")
    summary.append(["乡镇", "村", "村代码", "待核实条数"])
    summary.page_setup.orientation, summary.page_setup.paperSize = "landscape", summary.PAPERSIZE_A4
    for (_, village, township_name, village_name), n in frame.groupby(
            ["township_code", "village_code", "township_name", "village_name"]).size().items():
        summary.append([*spreadsheet_safe(pd.Series([township_name, village_name, village])), int(n)])
    for column, width in zip("ABCD", (16, 16, 16, 12)):
        summary.column_dimensions[column].width = width
    out = Path(out)
    save_workbook(wb, out)
    return out


STATE_TITLES = {"new": "新增", "still": "持续", "reopened": "重新打开", "pending": "待核实"}


def decision_history(flags: pd.DataFrame, latest: pd.DataFrame) -> dict[str, pd.Series]:
    """Per open flag, what the steward sees of its past: 状态 (新增 tonight, 持续, 重新打开 after a resolution or a
    dismissal whose evidence changed, 待核实 carried over), 上次决定 (the latest decision: what, who, when, why), and
    决定 / 备注 pre-filled with a 待核实 and its note, so an unfinished check is not lost."""
    tonight = flags["last_seen_run"].max() if len(flags) else ""
    last = latest.reindex(flags["flag_key"]).set_index(flags.index)
    pending = last["decision"].eq("待核实")
    opened = flags["opened_run"].fillna(flags["first_seen_run"])
    state = pd.Series(STATE_TITLES["still"], index=flags.index, dtype="str")
    state = state.mask(opened.eq(tonight) & flags["first_seen_run"].ne(tonight), STATE_TITLES["reopened"])
    state = state.mask(flags["first_seen_run"].eq(tonight), STATE_TITLES["new"])
    state = state.mask(pending & ~opened.eq(tonight), STATE_TITLES["pending"])
    when = clock.local_times(last["decided_at"]).dt.strftime("%Y-%m-%d")  # the day where it was decided
    note = last["note"].fillna("").astype("str")
    history = (last["decision"].astype("str") + "(" + last["reviewer"].astype("str") + "," + when + ")"
               + note.where(note.eq(""), ":" + note)).where(last["decision"].notna(), "")
    carried = pending & state.eq(STATE_TITLES["pending"])
    return {"state_title": state, "history": history, "decision": pd.Series("", index=flags.index).mask(carried, "待核实"),
            "note": pd.Series("", index=flags.index).mask(carried, note)}


def _print_setup(ws, villages: list[str], title: str = "", footer: str = "") -> None:
    """How a steward prints it: A4 landscape, every column on the page width, the header on every page, a new
    page for each village, the title above and page numbers (after ``footer``: signature lines) below."""
    print_setup(ws)
    ws.print_title_rows = "1:1"
    ws.oddFooter.center.text = (footer + "    " if footer else "") + "第 &P 页,共 &N 页"   # one sheet: no sheet name
    if title:
        ws.oddHeader.center.text = title
    # after sheet row i + 1 (row 1 is the header); set at once: RowBreak.append copies every break so far
    ws.row_breaks.brk = [Break(id=i + 1) for i in range(1, len(villages)) if villages[i] != villages[i - 1]]


def latest_reviews(warehouse_db: Engine | Connection) -> pd.DataFrame:
    """One row per flag that has a decision: its latest decision (review id, decision, note, reviewer, when)."""
    r = warehouse.reviews.c
    latest = select(r.flag_key, func.max(r.review_id).label("review_id")).group_by(r.flag_key).subquery()
    query = select(r.flag_key, r.review_id, r.decision, r.note, r.reviewer, r.decided_at).join(
        latest, r.review_id == latest.c.review_id)
    return pd.read_sql(query, warehouse_db).set_index("flag_key")


def state_tokens(flags: pd.DataFrame, latest: pd.DataFrame) -> pd.Series:
    """What a decision is bound to: the flag's status, the run that (re)opened it, its latest decision and how many
    steps of the sign-off chain it has taken. Any of them changing after the workbook was written (resolved, opened
    again, decided by someone, a step in the workbench) changes it."""
    review = flags["flag_key"].map(latest["review_id"]).fillna(0).astype("int64").astype("str")
    opened = flags["opened_run"].fillna(flags["first_seen_run"]).astype("str")
    steps = flags["step_seq"].fillna(0).astype("int64").astype("str") if "step_seq" in flags else "0"
    return flags["status"].astype("str") + "|" + opened + "|" + review + "|" + steps


STATUS_TITLES = {"open": "待核实", "confirmed": "确认", "dismissed": "驳回", "resolved": "自动解除"}
