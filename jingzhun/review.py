"""The steward's round trip: a review workbook out, decisions back in; and the public (公示) list.

The review workbook lists the open flags grouped by township and village, with the evidence in
words, a decision column (确认 / 驳回 / 待核实, a drop-down) and a note. Importing it checks the
whole workbook first: a formula anywhere, an unknown decision, an unknown flag, a dismissal without
a reason or evidence that changed since the workbook was written rejects the file and changes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import Connection, Engine, insert, select, update

from jingzhun import warehouse
from jingzhun.exports import spreadsheet_safe
from jingzhun.policy import Policy

SHEET = "核实清单"
DECISIONS = {"确认": "confirmed", "驳回": "dismissed", "待核实": "open"}
COLUMNS = [  # (header, source column, width)
    ("乡镇", "township_code", 12), ("村", "village_code", 14), ("规则", "rule_title", 22), ("方向", "direction_title", 8),
    ("户编号", "household_id", 22), ("户号", "hukou_household_id", 18), ("身份证号", "id_number", 20),
    ("证据", "evidence_text", 70), ("决定", "decision", 10), ("备注", "note", 30),
    ("标识", "flag_key", 10), ("证据摘要", "evidence_hash", 10),
]
HEADERS = [c[0] for c in COLUMNS]
RULE_TITLES = {
    "RM_CAR": "有车(识别时已有)", "RV_CAR_ACQUIRED": "有车(识别后购置)", "RM_PROPERTY": "有商品房",
    "RM_DECEASED": "全户死亡", "RM_MEMBER_DECEASED": "成员死亡", "ADD_DIBAO": "低保户应纳入", "ADD_TEKUN": "特困人员应纳入",
    "RV_ADD_CADRE": "应纳入但有村干部", "REVERT_DROPOUT": "因学返贫(辍学)", "REVERT_HOUSING": "住房不安全返贫",
    "REVERT_ILLNESS": "因病返贫", "REFER_EDUCATION": "转教育部门(辍学)", "REFER_HOUSING": "转住建部门(危房)",
    "REFER_HEALTH": "转卫健部门(疾病)", "REFER_INSURANCE": "未参保", "RV_UNENROLLED": "适龄未入学",
    "EXIT_ELIGIBLE": "达到退出标准", "DQ_INVALID_ID": "身份证号无效", "DQ_NOT_IN_HUKOU": "不在户籍库",
    "DQ_NAME_MISMATCH": "姓名与户籍不符", "DQ_MULTI_HOUSEHOLD": "重复在多个贫困户",
}
DIRECTION_TITLES = {"remove": "清退", "add": "纳入", "revert": "返贫", "exit": "退出", "refer": "转办", "review": "核实"}


class ReviewError(ValueError):
    """A review workbook that cannot be imported; the message lists every problem."""


def write_review_workbook(warehouse_db: Engine | Connection, out: Path) -> Path:
    """The open flags for stewards, grouped by township and village (one row per flag). ``warehouse_db`` may be
    the publish transaction's connection, so the workbook is written before that transaction commits."""
    frame = pd.read_sql(select(warehouse.flags).where(warehouse.flags.c.status == "open"), warehouse_db)
    frame = frame.assign(township_code=frame["village_code"].str[:9], rule_title=frame["rule_code"].map(RULE_TITLES),
                         direction_title=frame["direction"].map(DIRECTION_TITLES), decision="", note="")
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
    for col in ("标识", "证据摘要"):
        ws.column_dimensions[openpyxl.utils.get_column_letter(HEADERS.index(col) + 1)].hidden = True
    for row in ws.iter_rows(min_row=2, min_col=HEADERS.index("证据") + 1, max_col=HEADERS.index("证据") + 1):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{openpyxl.utils.get_column_letter(len(HEADERS))}{max(last, 1)}"
    summary = wb.create_sheet("按村汇总")
    summary.append(["乡镇", "村", "待核实条数"])
    for (township, village), n in frame.groupby(["township_code", "village_code"]).size().items():
        summary.append([township, village, int(n)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out


def read_decisions(path: Path) -> pd.DataFrame:
    """The decided rows of a review workbook, after checking every cell; raises ReviewError."""
    try:
        wb = openpyxl.load_workbook(path, data_only=False)
    except Exception as exc:
        raise ReviewError(f"{path.name}: not a readable workbook ({type(exc).__name__})") from exc
    if SHEET not in wb.sheetnames:
        raise ReviewError(f"{path.name}: no sheet named {SHEET}")
    ws = wb[SHEET]
    problems = [f"{c.coordinate}: 含公式 (formula) {str(c.value)[:40]}" for row in ws.iter_rows() for c in row
                if c.data_type == "f" or (isinstance(c.value, str) and c.value.startswith("="))]
    header = [c.value for c in ws[1]][:len(HEADERS)]
    if header != HEADERS:
        problems.append(f"表头不符 (header differs): {header}")
    rows = [[c.value for c in r[:len(HEADERS)]] for r in ws.iter_rows(min_row=2)]
    frame = pd.DataFrame(rows, columns=HEADERS).fillna("").astype("str")
    frame["_row"] = range(2, len(frame) + 2)
    for col in ("决定", "备注", "标识", "证据摘要"):
        frame[col] = frame[col].str.strip()
    unknown = frame[~frame["决定"].isin([*DECISIONS, ""])]
    problems += [f"第{r}行: 未知决定 {v!r} (use 确认/驳回/待核实)" for r, v in zip(unknown["_row"], unknown["决定"])]
    no_reason = frame[frame["决定"].eq("驳回") & frame["备注"].eq("")]
    problems += [f"第{r}行: 驳回须在备注中说明理由 (a dismissal needs a note)" for r in no_reason["_row"]]
    if problems:
        raise ReviewError(f"{path.name}: 未导入,工作簿有问题 (nothing imported):\n  " + "\n  ".join(problems))
    return frame[frame["决定"].ne("")]


def import_review(engine: Engine, path: Path, reviewer: str | None = None) -> dict[str, int]:
    """Store a steward's decisions (who, when, why) and set the flags' states, all or nothing."""
    path = Path(path)
    decided = read_decisions(path)
    with engine.connect() as conn:
        current = pd.read_sql(select(warehouse.flags.c.flag_key, warehouse.flags.c.evidence_hash), conn)
    known = decided.merge(current, left_on="标识", right_on="flag_key", how="left")
    problems = [f"第{r}行: 未知标识 (unknown flag) {k!r}" for r, k in zip(known["_row"], known["标识"])
                if pd.isna(k) or k not in set(current["flag_key"])]
    changed = known[known["flag_key"].notna() & known["evidence_hash"].ne(known["证据摘要"])]
    problems += [f"第{r}行: 证据已变化,请重新导出核实清单 (evidence changed since the workbook was written)"
                 for r in changed["_row"]]
    if problems:
        raise ReviewError(f"{path.name}: 未导入 (nothing imported):\n  " + "\n  ".join(problems))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    who = reviewer or getpass.getuser()
    when = warehouse.now()
    with engine.begin() as conn:
        conn.execute(insert(warehouse.reviews), [
            {"flag_key": k, "decision": d, "note": n, "reviewer": who, "decided_at": when, "evidence_hash": h,
             "workbook": path.name, "workbook_sha256": digest}
            for k, d, n, h in zip(decided["标识"], decided["决定"], decided["备注"], decided["证据摘要"])])
        for decision, status in DECISIONS.items():
            keys = decided.loc[decided["决定"].eq(decision), "标识"].tolist()
            if keys:
                conn.execute(update(warehouse.flags).where(warehouse.flags.c.flag_key.in_(keys)).values(status=status))
    return decided["决定"].value_counts().to_dict()


def mask_id(values: pd.Series, policy: Policy) -> pd.Series:
    """Identity numbers for public posting: first and last characters shown, the rest as *."""
    s = values.astype("str")
    head, tail = policy.publicity_show_first, policy.publicity_show_last
    shown_tail = s.str[-tail:].where(s.str.len() > head + tail, "") if tail else pd.Series("", index=s.index, dtype="str")
    hidden = (s.str.len() - head - shown_tail.str.len()).clip(lower=0)
    stars = pd.Series(np.char.multiply("*", hidden.to_numpy(dtype=int)), index=s.index, dtype="str")
    return s.str[:head] + stars + shown_tail


def publicity_list(engine: Engine, policy: Policy) -> pd.DataFrame:
    """公示: confirmed additions and removals per village, identity numbers masked."""
    f = warehouse.flags.c
    with engine.connect() as conn:
        confirmed = pd.read_sql(select(warehouse.flags).where(f.status == "confirmed", f.direction.in_(["add", "remove"])), conn)
        register = pd.read_sql(select(warehouse.staging_tables["poverty_register"]), conn)
        hukou = pd.read_sql(select(warehouse.staging_tables["hukou"]), conn)
    heads = register[register["relation"].eq("户主")].drop_duplicates("household_id").set_index("household_id")
    hukou_heads = hukou[hukou["relation"].eq("户主")].drop_duplicates("hukou_household_id").set_index("hukou_household_id")
    is_add = confirmed["direction"].eq("add")
    person = confirmed["id_number"].where(confirmed["id_number"].ne(""),
                                          confirmed["household_id"].map(heads["id_number"]).where(~is_add, confirmed["hukou_household_id"].map(hukou_heads["id_number"])))
    name = person.map(register.drop_duplicates("id_number").set_index("id_number")["name"]).fillna(
        person.map(hukou.drop_duplicates("id_number").set_index("id_number")["name"]))
    out = pd.DataFrame({
        "乡镇": confirmed["village_code"].str[:9], "村": confirmed["village_code"],
        "类别": confirmed["direction"].map({"add": "拟纳入", "remove": "拟清退"}),
        "事由": confirmed["rule_code"].map(RULE_TITLES), "姓名": name.fillna(""),
        "身份证号": mask_id(person.fillna(""), policy),
    })
    return out.sort_values(["乡镇", "村", "类别"]).reset_index(drop=True)
