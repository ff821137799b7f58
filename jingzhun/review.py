"""The steward's round trip: a review workbook out, decisions back in; and the public (公示) list.

The review workbook lists the open flags grouped by township and village, with the evidence in
words, a decision column (确认 / 驳回 / 待核实, a drop-down) and a note. Importing it checks the
whole workbook first: a formula anywhere, an unknown decision, an unknown flag, a dismissal without
a reason or evidence that changed since the workbook was written rejects the file and changes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
from copy import copy
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.pagebreak import Break
from sqlalchemy import Connection, Engine, func, insert, select, update

from jingzhun import labels, warehouse
from jingzhun.exports import spreadsheet_safe
from jingzhun.sheets import LINE_HEIGHT, print_setup, text_lines
from jingzhun.catalogue import RULES

SHEET = "核实清单"
DECISIONS = {"确认": "confirmed", "驳回": "dismissed", "待核实": "open"}
COLUMNS = [  # (header, source column, width)
    ("乡镇", "township_name", 9), ("村", "village_name", 9), ("规则", "rule_title", 12), ("方向", "direction_title", 5),
    ("状态", "state_title", 7), ("户主", "head_name", 8), ("姓名", "person_name", 8), ("户编号", "household_id", 20),
    ("户号", "hukou_household_id", 16), ("身份证号", "id_number", 19), ("证据", "evidence_text", 42),
    ("上次决定", "history", 16), ("决定", "decision", 7), ("备注", "note", 14),
    ("标识", "flag_key", 10), ("证据摘要", "evidence_hash", 10), ("状态标记", "state_token", 10),
]
KEY_COLUMNS = ("标识", "证据摘要", "状态标记")  # hidden: which flag, the evidence seen, the flag's state then
HEADERS = [c[0] for c in COLUMNS]
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
    reference = labels.stored_regions(warehouse_db)
    frame["state_token"] = state_tokens(frame, latest)
    frame = frame.assign(township_code=frame["village_code"].str[:9], rule_title=frame["rule_code"].map(rule_titles()),
                         direction_title=frame["direction"].map(DIRECTION_TITLES),
                         township_name=labels.township_names(frame["village_code"], reference),
                         village_name=labels.region_names(frame["village_code"], reference, "village"),
                         **labels.people(warehouse_db, frame), **decision_history(frame, latest))
    frame = frame.sort_values(["township_code", "village_code", "rule_code", "household_id", "id_number"])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEET
    ws.append(HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    safe = frame[[c[1] for c in COLUMNS]].apply(spreadsheet_safe)
    for row in safe.itertuples(index=False):
        ws.append(list(row))
    last = ws.max_row
    choice = DataValidation(type="list", formula1='"' + ",".join(DECISIONS) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="决定", error="请选择 确认 / 驳回 / 待核实")
    ws.add_data_validation(choice)
    decision_col = openpyxl.utils.get_column_letter(HEADERS.index("决定") + 1)
    choice.add(f"{decision_col}2:{decision_col}{max(last, 2)}")
    for i, (_, _, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = width
    for col in KEY_COLUMNS:
        ws.column_dimensions[openpyxl.utils.get_column_letter(HEADERS.index(col) + 1)].hidden = True
    wrapped = [HEADERS.index(h) for h in ("乡镇", "村", "规则", "户主", "姓名", "证据", "上次决定", "备注")]
    styles = None  # the first row's cell styles, copied to the others (openpyxl looks a style up per assignment)
    for row in ws.iter_rows(min_row=2):
        lines = 1
        for j, cell in enumerate(row):
            if styles is None:
                cell.alignment = Alignment(wrap_text=j in wrapped, vertical="top")
            else:
                cell._style = copy(styles[j])
            if j in wrapped:
                lines = max(lines, text_lines(cell.value, COLUMNS[j][2]))
        styles = styles or [copy(cell._style) for cell in row]
        ws.row_dimensions[row[0].row].height = LINE_HEIGHT * lines   # spreadsheets do not grow wrapped rows of a file
    ws.freeze_panes = "A2"
    _print_setup(ws, frame["village_code"].tolist(), f"{labels.area_name(frame['village_code'], reference)} 动态调整核实清单")
    ws.auto_filter.ref = f"A1:{openpyxl.utils.get_column_letter(len(HEADERS))}{max(last, 1)}"
    summary = wb.create_sheet("按村汇总")
    summary.append(["乡镇", "村", "村代码", "待核实条数"])
    summary.page_setup.orientation, summary.page_setup.paperSize = "landscape", summary.PAPERSIZE_A4
    for (_, village, township_name, village_name), n in frame.groupby(
            ["township_code", "village_code", "township_name", "village_name"]).size().items():
        summary.append([township_name, village_name, village, int(n)])
    for column, width in zip("ABCD", (16, 16, 16, 12)):
        summary.column_dimensions[column].width = width
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
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
    when = pd.to_datetime(last["decided_at"], utc=True).dt.strftime("%Y-%m-%d")
    note = last["note"].fillna("").astype("str")
    history = (last["decision"].astype("str") + "(" + last["reviewer"].astype("str") + "," + when + ")"
               + note.where(note.eq(""), ":" + note)).where(last["decision"].notna(), "")
    carried = pending & state.eq(STATE_TITLES["pending"])
    return {"state_title": state, "history": history, "decision": pd.Series("", index=flags.index).mask(carried, "待核实"),
            "note": pd.Series("", index=flags.index).mask(carried, note)}


def _print_setup(ws, villages: list[str], title: str = "") -> None:
    """How a steward prints it: A4 landscape, every column on the page width, the header on every page, a new
    page for each village, the title above and page numbers below."""
    print_setup(ws)
    ws.print_title_rows = "1:1"
    ws.oddFooter.center.text = "第 &P 页,共 &N 页"   # one sheet: no sheet name
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
    """What a decision is bound to: the flag's status, the run that (re)opened it and its latest decision. Any
    of them changing after the workbook was written (resolved, opened again, decided by someone) changes it."""
    review = flags["flag_key"].map(latest["review_id"]).fillna(0).astype("int64").astype("str")
    opened = flags["opened_run"].fillna(flags["first_seen_run"]).astype("str")
    return flags["status"].astype("str") + "|" + opened + "|" + review


def read_decisions(path: Path) -> pd.DataFrame:
    """The decided rows of a review workbook, after checking every cell; raises ReviewError."""
    try:
        wb = openpyxl.load_workbook(path, data_only=False)
    except Exception as exc:
        raise ReviewError(f"{path.name}: not a readable workbook ({type(exc).__name__})") from None
    problems = [f"工作表“{ws.title}” {c.coordinate}: 含公式 (formula)" for ws in wb.worksheets for row in ws.iter_rows()
                for c in row if c.data_type == "f" or (isinstance(c.value, str) and c.value.startswith("="))]
    problems += [f"定义的名称 (defined name) {name}: 工作簿不得含公式或名称 (no formulas or names allowed)"
                 for name in wb.defined_names]
    problems += [f"工作表“{ws.title}” 定义的名称 (defined name) {name}" for ws in wb.worksheets for name in ws.defined_names]
    if getattr(wb, "_external_links", None):
        problems.append("工作簿含外部链接 (external links)")
    if SHEET not in wb.sheetnames:
        raise ReviewError(f"{path.name}: 未导入,没有名为“{SHEET}”的工作表 (nothing imported: no sheet named {SHEET})")
    ws = wb[SHEET]
    header = [c.value for c in ws[1]][:len(HEADERS)]
    if header != HEADERS:
        missing = [h for h in HEADERS if h not in header]
        raise ReviewError(f"{path.name}: 未导入,表头不符,请使用系统导出的核实清单,不要删除或移动列 (nothing imported: the "
                          f"header differs from the exported workbook" + (f"; missing columns: {', '.join(missing)}"
                                                                          if missing else "") + ")")
    rows = [[c.value for c in r[:len(HEADERS)]] + [None] * (len(HEADERS) - len(r)) for r in ws.iter_rows(min_row=2)]
    frame = pd.DataFrame(rows, columns=HEADERS).fillna("").astype("str")
    frame["_row"] = range(2, len(frame) + 2)
    for col in ("决定", "备注", *KEY_COLUMNS):
        frame[col] = frame[col].str.strip()
    unknown = frame[~frame["决定"].isin([*DECISIONS, ""])]
    problems += [f"第{r}行: 未知决定 {v!r} (use 确认/驳回/待核实)" for r, v in zip(unknown["_row"], unknown["决定"])]
    no_reason = frame[frame["决定"].eq("驳回") & frame["备注"].eq("")]
    problems += [f"第{r}行: 驳回须在备注中说明理由 (a dismissal needs a note)" for r in no_reason["_row"]]
    no_key = frame[frame["决定"].ne("") & frame[list(KEY_COLUMNS)].eq("").any(axis=1)]
    problems += [f"第{r}行: 隐藏的标识列为空 (the hidden key columns are empty)" for r in no_key["_row"]]
    if problems:
        raise ReviewError(f"{path.name}: 未导入,工作簿有问题 (nothing imported):\n  " + "\n  ".join(problems))
    return frame[frame["决定"].ne("")]


def import_review(engine: Engine, path: Path, reviewer: str | None = None) -> dict[str, int]:
    """Store a steward's decisions (who, when, why) and set the flags' states, all or nothing.

    Every decision is bound to the flag's state when the workbook was written (:func:`state_tokens`) and to
    the evidence then: a flag resolved, opened again or decided by someone else since rejects the workbook,
    naming the row. The same workbook imported again is a no-op that says so (``{"already imported": n}``).
    """
    path = Path(path)
    decided = read_decisions(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # two imports at once are taken one after the other
            conn.exec_driver_sql("LOCK TABLE reviews IN SHARE ROW EXCLUSIVE MODE")
        earlier = conn.execute(select(func.count()).select_from(warehouse.reviews)
                               .where(warehouse.reviews.c.workbook_sha256 == digest)).scalar()
        if earlier:
            return {"already imported": int(earlier)}
        f = warehouse.flags.c  # every flag's state, filtered here: an IN list of a whole county's keys exceeds SQLite's
        current = pd.read_sql(select(f.flag_key, f.status, f.evidence_hash, f.opened_run, f.first_seen_run), conn)
        current = current[current["flag_key"].isin(decided["标识"])]
        latest = latest_reviews(conn)
        current = current.assign(state_token=state_tokens(current, latest)).set_index("flag_key")
        problems = _stale_rows(decided, current, latest)
        if problems:
            raise ReviewError(f"{path.name}: 未导入 (nothing imported):\n  " + "\n  ".join(problems))
        before = latest.reindex(decided["标识"])
        unchanged = (decided["决定"].eq("待核实").to_numpy() & (before["decision"].to_numpy() == "待核实")
                     & (before["note"].fillna("").to_numpy() == decided["备注"].to_numpy()))
        decided = decided[~unchanged]  # a 待核实 carried over as it was is not a new decision
        if decided.empty:
            return {"unchanged": int(unchanged.sum())}
        who = reviewer or getpass.getuser()
        when = warehouse.now()
        conn.execute(insert(warehouse.reviews), [
            {"flag_key": k, "decision": d, "note": n, "reviewer": who, "decided_at": when, "evidence_hash": h,
             "workbook": path.name, "workbook_sha256": digest}
            for k, d, n, h in zip(decided["标识"], decided["决定"], decided["备注"], decided["证据摘要"])])
        for decision, status in DECISIONS.items():
            keys = decided.loc[decided["决定"].eq(decision), "标识"].tolist()
            if keys:
                conn.execute(update(warehouse.flags).where(warehouse.flags.c.flag_key.in_(keys)).values(status=status))
    return decided["决定"].value_counts().to_dict()


def _stale_rows(decided: pd.DataFrame, current: pd.DataFrame, latest: pd.DataFrame) -> list[str]:
    """Rows whose flag is unknown, or changed since the workbook was written, each named with what changed."""
    problems = []
    for row, key, evidence, token in zip(decided["_row"], decided["标识"], decided["证据摘要"], decided["状态标记"]):
        if key not in current.index:
            problems.append(f"第{row}行: 未知标识 (unknown flag) {key!r}")
            continue
        flag = current.loc[key]
        if flag["evidence_hash"] != evidence:
            problems.append(f"第{row}行: 证据已变化,请重新导出核实清单 (evidence changed since the workbook was written)")
        elif flag["state_token"] != token:
            status, opened, review = token.split("|") if token.count("|") == 2 else ("?", "?", "?")
            if flag["status"] != "open":
                what = f"已{STATUS_TITLES.get(flag['status'], flag['status'])} (now {flag['status']})"
            elif flag.get("opened_run") != opened:
                what = f"已重新打开 (opened again in run {flag.get('opened_run')})"
            else:
                by = latest.loc[key] if key in latest.index else None
                what = (f"已由 {by['reviewer']} 于 {pd.Timestamp(by['decided_at']):%Y-%m-%d} 作出决定 “{by['decision']}” "
                        f"(decided since by {by['reviewer']})") if by is not None else "状态已变化 (state changed)"
            problems.append(f"第{row}行: 导出核实清单后该标记{what},请重新导出核实清单 (the flag changed since the "
                            f"workbook was written; export a new one)")
    return problems


STATUS_TITLES = {"open": "待核实", "confirmed": "确认", "dismissed": "驳回", "resolved": "自动解除"}
