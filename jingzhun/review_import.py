"""Decisions back from a review workbook (:mod:`jingzhun.review` writes it): all or nothing.

Grain: one decision per row of the workbook's sheet 核实清单; one review per decided flag.

A decision reaches only the flag its row shows. Before anything is stored the whole workbook is checked, and any
problem refuses it, naming the row (and column), never a cell's content:

- the file: an .xlsx (an .xls is refused: save as .xlsx), no formula or name anywhere, the exported header with
  no column moved or missing (the column that moved is named);
- each row on its own: a known decision (确认 / 驳回 / 待核实), a dismissal with its reason, no note without a
  decision, nothing typed outside 决定 and 备注 (every read-only cell is checked against what was written, so a
  sheet sorted apart from its hidden columns is caught), no flag decided on two rows;
- each decided row against the warehouse: the flag its hidden key names is the one its visible household, person
  and rule show, lies inside the workbook's own scope (a reconciliation's region), and is as it was when the
  workbook was written (same evidence, not resolved, opened again or decided by someone since).

The import runs in :func:`jingzhun.warehouse.flags_transaction`, so it never meets a publish halfway: it is whole
and visible in the flags, or refused and says to try again.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter
from sqlalchemy import Engine, func, insert, select, update

from jingzhun import audit, clock, warehouse
from jingzhun import normalise as nz
from jingzhun.exports import spreadsheet_safe
from jingzhun.review import (CHECK_CHARS, DECISIONS, EDITABLE, HEADERS, KEY_COLUMNS, SCOPE_PROPERTY, SHEET, SHOWN,
                             STATUS_TITLES, cell_text, latest_reviews, row_checks, rule_titles, state_tokens)

FRESH = "请用 jingzhun review export --out 新文件.xlsx 导出新的核实清单 (export a fresh workbook: jingzhun review export)"
NOTES_CLEANED = "备注已去除不可见或组合字符 (notes cleaned of invisible or combining characters)"
IMPORT_WAIT_SECONDS = 120.0  # an import waits this long for a publish to finish, then asks to try again
OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .et) format
IDENTITY = ("规则", "户编号", "户号", "身份证号")  # what a row shows of the flag it decides


class ReviewError(ValueError):
    """A review workbook that cannot be imported; the message lists every problem."""


def _refuse(path: Path, problems: list[str]) -> ReviewError:
    return ReviewError(f"{path.name}: 未导入,工作簿有问题 (nothing imported):\n  " + "\n  ".join(problems))


def read_workbook(path: Path) -> tuple[pd.DataFrame, dict]:
    """Every row of the sheet (text, stripped, with ``_row``) and the workbook's scope, after checking the file."""
    path = Path(path)
    with open(path, "rb") as handle:
        old_format = handle.read(4) == OLE2_MAGIC
    if old_format or path.suffix.lower() in (".xls", ".et"):
        raise ReviewError(f"{path.name}: 未导入,这是旧的 .xls 格式,请在表格软件中“另存为” .xlsx 后再导入 "
                          f"(nothing imported: an .xls workbook; save it as .xlsx)")
    from jingzhun.policy import ReaderLimits
    from jingzhun.readers import SourceFileError
    from jingzhun.xlsx_guard import check_workbook

    try:
        check_workbook(path, path.name, ReaderLimits())  # openpyxl holds every part whole: measured first
    except SourceFileError as exc:
        raise ReviewError(f"{exc} 未导入 (nothing imported)") from None
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
    header = ["" if c.value is None else str(c.value).strip() for c in ws[1]]
    moved = header_problems(header)
    if moved:
        raise ReviewError(f"{path.name}: 未导入,表头与导出的核实清单不符,不要删除、插入或移动列 (nothing imported: the "
                          f"header differs from the exported workbook): " + "; ".join(moved) + f"。{FRESH}")
    problems += [f"{cells}: 合并的单元格,请取消合并并逐行填写 (merged cells: one decision per row)"
                 for cells in map(str, ws.merged_cells.ranges)]
    if problems:
        raise _refuse(path, problems)
    width = len(HEADERS)
    rows = [[c.value for c in r[:width]] + [None] * (width - len(r)) for r in ws.iter_rows(min_row=2)]
    beyond = [f"{c.coordinate}: 表格右侧不得填写内容 (nothing may be typed beside the table)"
              for r in ws.iter_rows(min_row=1, min_col=width + 1) for c in r if c.value not in (None, "")]
    if beyond:
        raise _refuse(path, beyond)
    frame = pd.DataFrame(rows, columns=HEADERS, dtype=object)
    frame = frame.apply(cell_text) if len(frame) else frame.astype("str")
    for column in EDITABLE:  # the quote written before a note starting like a formula is not part of it
        frame[column] = frame[column].str.replace(r"^'(?=[=+\-@\x00-\x1f])", "", regex=True)
    # a note is stored and shown (dossier, the next workbook) as cleaned as a name is at staging: no control,
    # invisible, filler or combining character (a bidi override or a struck-through text typed into it)
    note, frame["_note_cleaned"] = nz.strip_invisible(frame["备注"], marks=True)
    frame["备注"] = note.str.strip()
    frame["_row"] = range(2, len(frame) + 2)
    return frame, workbook_scope(wb, path)


def header_problems(header: list[str]) -> list[str]:
    """What differs from the exported header, each column named: moved (from where to where), missing, added."""
    out = []
    for i, name in enumerate(HEADERS):
        if i < len(header) and header[i] == name:
            continue
        if name in header:
            out.append(f"列“{name}”被移到 {get_column_letter(header.index(name) + 1)} 列,应在 {get_column_letter(i + 1)} "
                       f"列 (column {name} moved)")
        else:
            out.append(f"缺少列“{name}” (column {name} missing)")
    out += [f"{get_column_letter(j + 1)}1: 不是导出的表头 (not a header of the exported workbook)"
            for j, h in enumerate(header) if h and h not in HEADERS]
    return out


def workbook_scope(wb, path: Path) -> dict:
    """The region (and households) the workbook was written for (an empty region: every flag); a workbook whose
    record of it is missing or malformed is refused (its region could not be checked)."""
    prop = next((p for p in wb.custom_doc_props.props if p.name == SCOPE_PROPERTY), None)
    try:
        scope = json.loads(prop.value) if prop is not None else None
        region, households = scope["region"], scope.get("households", [])
        valid = isinstance(region, str) and isinstance(households, list) and all(isinstance(h, str) for h in households)
    except (TypeError, ValueError, KeyError, AttributeError):
        valid = False
    if not valid:
        raise ReviewError(f"{path.name}: 未导入,工作簿缺少或损坏了清单范围信息 (nothing imported: the workbook's record "
                          f"of its region is missing or damaged); {FRESH}")
    return {"region": region, "households": households, "mode": scope.get("mode", ""), "role": scope.get("role", "")}


def row_problems(frame: pd.DataFrame, decisions=tuple(DECISIONS), reasoned=("驳回",)) -> list[str]:
    """What is wrong with rows on their own (no warehouse needed), each named by row and column (``decisions``: what
    决定 may hold; ``reasoned``: those that need a 备注)."""
    decided, noted, keyed = frame["决定"].ne(""), frame["备注"].ne(""), frame["标识"].ne("")
    out = [f"第{r}行: 未知决定 (unknown decision; use {'/'.join(decisions)})"
           for r in frame.loc[~frame["决定"].isin([*decisions, ""]), "_row"]]
    out += [f"第{r}行: {d}须在备注中说明理由 (a {d} needs a note)"
            for r, d in frame.loc[frame["决定"].isin(reasoned) & ~noted, ["_row", "决定"]].itertuples(index=False)]
    out += [f"第{r}行: 填写了备注但没有决定,备注不会单独保存;请选择决定或清空备注 (a note without a decision)"
            for r in frame.loc[noted & ~decided, "_row"]]
    out += [f"第{r}行: 隐藏的标识列为空 (the hidden key columns are empty)"
            for r in frame.loc[(decided | noted) & frame[list(KEY_COLUMNS)].eq("").any(axis=1), "_row"]]
    stray = ~keyed & frame[SHOWN].ne("").any(axis=1) & ~(decided | noted)
    out += [f"第{r}行: 不是导出的行,只能在“决定”“备注”两列填写 (a row the exported workbook did not have)"
            for r in frame.loc[stray, "_row"]]
    out += _typed_over(frame[keyed])
    decided_rows = frame[decided & keyed]
    twice = decided_rows[decided_rows.duplicated("标识", keep=False)]
    for _, rows in twice.groupby("标识", sort=False)["_row"]:
        out.append(f"第{'、'.join(map(str, rows))}行: 同一标记出现在多行并都填写了决定 (one flag decided on several rows)")
    return out


def _typed_over(frame: pd.DataFrame) -> list[str]:
    """Rows whose read-only cells differ from what was written (typed over, or sorted apart from the hidden key)."""
    if frame.empty:
        return []
    now, stored = row_checks(frame[SHOWN]), frame["行校验"]
    out = []
    spans = [(3 + j * CHECK_CHARS, 3 + (j + 1) * CHECK_CHARS) for j in range(len(SHOWN))]
    changed = pd.DataFrame({h: stored.str[a:b].ne(now.str[a:b]) for h, (a, b) in zip(SHOWN, spans)})
    bad = changed.any(axis=1) | ~stored.str.startswith("v1:")
    for i in frame.index[bad]:
        columns = [h for h in SHOWN if changed.at[i, h]] or ["行校验"]
        if set(columns) & set(IDENTITY):
            out.append(f"第{frame.at[i, '_row']}行: 本行显示的“{'、'.join(c for c in columns if c in IDENTITY)}”与隐藏标识所指的"
                       f"标记不符,决定不会转给别的标记;排序时须选中整张表 (the row shows another flag than its hidden "
                       f"key names: sorted apart from its hidden columns?)")
        else:
            out.append(f"第{frame.at[i, '_row']}行: 列“{'、'.join(columns)}”与导出时不同;只能在“{'”“'.join(EDITABLE)}”两列"
                       f"填写 (cells outside 决定/备注 changed)")
    return out


def flag_problems(decided: pd.DataFrame, current: pd.DataFrame, scope: dict) -> list[str]:
    """Decided rows against the flags their keys name: the flag the row shows, inside the workbook's scope."""
    known = decided[decided["标识"].isin(current.index)]
    flag = current.reindex(known["标识"]).set_index(known.index)
    shown = pd.DataFrame({
        "户编号": spreadsheet_safe(flag["household_id"]), "身份证号": spreadsheet_safe(flag["id_number"]),
        "规则": flag["rule_code"].map(rule_titles()).fillna(flag["rule_code"])}, index=known.index)
    outside = flag["household_id"].eq("")  # a family not on the register is its hukou household
    shown["户号"] = spreadsheet_safe(flag["hukou_household_id"]).where(outside)
    out = []
    for column in IDENTITY:
        wrong = shown[column].notna() & shown[column].ne(known[column])
        out += [f"第{r}行: “{column}”与隐藏标识所指的标记不符,决定不会转给别的标记 (the row shows another flag than "
                f"its hidden key names)" for r in known.loc[wrong[wrong].index, "_row"]]
    if scope["region"]:
        inside = flag["village_code"].astype("str").str.startswith(scope["region"])
        if scope["households"]:
            inside &= flag["household_id"].isin(scope["households"]) | flag["hukou_household_id"].isin(scope["households"])
        out += [f"第{r}行: 该标记不在本清单的范围 (区划 {scope['region']}) 内 (a flag outside the workbook's region)"
                for r in known.loc[~inside, "_row"]]
    return out


def import_review(engine: Engine, path: Path, reviewer: str | None = None,
                  wait_seconds: float = IMPORT_WAIT_SECONDS, actor=None) -> dict[str, int]:
    """Store a steward's decisions (who, when, why) and set the flags' states, all or nothing (see the module).
    The same workbook imported again is a no-op that says so (``{"already imported": n}``). A village's,
    township's or county's workbook (``review export --area``) is ``actor``'s steps of the sign-off chain
    (:func:`jingzhun.signoff.workbook.import_area_workbook`); the steward's is a steward's or county's."""
    path = Path(path)
    frame, scope = read_workbook(path)
    if scope.get("mode") == "chain":
        from jingzhun.signoff.workbook import choices_for, import_area_workbook

        if actor is None or actor.role.value != scope["role"]:
            from jingzhun.signoff.stages import ROLE_TITLES, Role

            level = ROLE_TITLES.get(Role(scope["role"]), scope["role"]) if scope["role"] in Role.__members__ else "?"
            raise ReviewError(f"{path.name}: 未导入,这是{level}的清单,须以该级用户导入 (nothing imported: a "
                              f"workbook of the {scope['role']} level, imported --as a user of another level)")
        problems = row_problems(frame, tuple(choices_for(actor.role)), ())
        if problems:
            raise _refuse(path, problems)
        return import_area_workbook(engine, path, frame, scope, actor, wait_seconds=wait_seconds)
    if actor is not None and actor.role.value != "steward":
        raise ReviewError(f"{path.name}: 未导入,数据管理员的核实清单只能以数据管理员导入 (nothing imported: the steward's "
                          f"workbook is a steward's)")
    problems = row_problems(frame)
    if problems:
        raise _refuse(path, problems)
    decided = frame[frame["决定"].ne("")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with warehouse.flags_transaction(engine, wait_seconds) as conn:
        earlier = conn.execute(select(func.count()).select_from(warehouse.reviews)
                               .where(warehouse.reviews.c.workbook_sha256 == digest)).scalar()
        if earlier:
            return {"already imported": int(earlier)}
        f = warehouse.flags.c  # every flag's state, filtered here: an IN list of a whole county's keys exceeds SQLite's
        current = pd.read_sql(select(f.flag_key, f.status, f.evidence_hash, f.opened_run, f.first_seen_run,
                                     f.rule_code, f.household_id, f.hukou_household_id, f.id_number, f.village_code,
                                     f.direction, f.stage, f.step_seq),
                              conn)
        current = current[current["flag_key"].isin(decided["标识"])]
        latest = latest_reviews(conn)
        current = current.assign(state_token=state_tokens(current, latest)).set_index("flag_key")
        problems = flag_problems(decided, current, scope) or _stale_rows(decided, current, latest)
        if actor is not None:
            problems += _outside_the_steward(decided, current, actor)
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
        record_in_chain(conn, decided, current, who, when, digest, actor.role.value if actor is not None else "steward")
        audit.record(conn, who, audit.Event.import_, "workbook", digest,
                     (actor.area if actor is not None else scope["region"]) or None, "cli",
                     f"{len(decided)} decisions from {path.name}", now=when)
    counts = decided["决定"].value_counts().to_dict()
    cleaned = int(decided["_note_cleaned"].sum())
    if cleaned:  # a normalisation, said: the notes stored are not byte for byte what was typed
        counts[NOTES_CLEANED] = cleaned
    return counts


def _stale_rows(decided: pd.DataFrame, current: pd.DataFrame, latest: pd.DataFrame) -> list[str]:
    """Rows whose flag is unknown, or changed since the workbook was written, each named with what changed."""
    problems = []
    for row, key, evidence, token in zip(decided["_row"], decided["标识"], decided["证据摘要"], decided["状态标记"]):
        if key not in current.index:
            problems.append(f"第{row}行: 未知标识 (unknown flag); {FRESH}")
            continue
        flag = current.loc[key]
        if flag["evidence_hash"] != evidence:
            problems.append(f"第{row}行: 证据已变化 (evidence changed since the workbook was written); {FRESH}")
        elif flag["state_token"] != token:
            status, opened, review, _ = token.split("|") if token.count("|") == 3 else ("?", "?", "?", "?")
            if flag["status"] != "open":
                what = f"已{STATUS_TITLES.get(flag['status'], flag['status'])} (now {flag['status']})"
            elif flag.get("opened_run") != opened:
                what = f"已重新打开 (opened again in run {flag.get('opened_run')})"
            else:
                by = latest.loc[key] if key in latest.index else None
                what = (f"已由 {by['reviewer']} 于 {clock.local(by['decided_at']):%Y-%m-%d} 作出决定 “{by['decision']}” "
                        f"(decided since by {by['reviewer']})") if by is not None else "状态已变化 (state changed)"
            problems.append(f"第{row}行: 导出核实清单后该标记{what} (the flag changed since the workbook was "
                            f"written); {FRESH}")
    return problems


def _outside_the_steward(decided: pd.DataFrame, current: pd.DataFrame, actor) -> list[str]:
    """Rows a steward may not decide (signoff.md): a flag outside their area, or one that is not a data problem or
    judgement case waiting for them (every other flag walks the chain: village, township, county)."""
    from jingzhun.signoff.access import holds_each
    from jingzhun.signoff.stages import Stage

    flag = current.reindex(decided["标识"]).set_index(decided.index)
    outside = ~holds_each(actor, flag["village_code"])
    not_mine = ~outside & ~(flag["direction"].eq("review") & flag["stage"].eq(Stage.pending_steward.value))
    return ([f"第{r}行: 未知标识 (unknown flag); {FRESH}" for r in decided.loc[outside, "_row"]]
            + [f"第{r}行: 该标记须经村、乡镇、县三级签批,不能由数据管理员决定 (this flag walks the sign-off chain: not "
               f"a steward's decision)" for r in decided.loc[not_mine, "_row"]])


def record_in_chain(conn, decided: pd.DataFrame, current: pd.DataFrame, who: str, when, digest: str,
                    role: str = "steward") -> None:
    """The sign-off chain's record of a steward's workbook decisions (signoff.md: what the chain's stages call
    approved and dismissed): each one a ``migrated`` step (decided outside the chain's levels), its stage set to
    match, so the history, the queue and the state token stay one story (``current``: the flags as read in this
    transaction, by key). One UPDATE per stage reached."""
    from jingzhun.signoff.stages import Action, first_stages

    f = warehouse.flags.c
    before = current.reindex(decided["标识"])
    after = pd.Series(decided["决定"].map({"确认": "approved", "驳回": "dismissed"}).to_numpy(), index=before.index)
    after = after.fillna(first_stages(before["direction"]))
    conn.execute(insert(warehouse.steps), [
        {"flag_key": k, "action": Action.migrated.value, "stage_before": b, "stage_after": a, "actor": who,
         "role": role, "acted_at": when, "note": d + (":" + n if n else ""), "evidence_hash": h,
         "state_token": f"{b}|{int(q)}", "via": "workbook", "workbook_sha256": digest}
        for k, b, a, d, n, h, q in zip(decided["标识"], before["stage"], after, decided["决定"], decided["备注"],
                                       decided["证据摘要"], before["step_seq"])])
    for stage in after.unique():
        conn.execute(update(warehouse.flags).where(f.flag_key.in_(after.index[after.eq(stage)].tolist())).values(
            stage=stage, stage_since=when, step_seq=f.step_seq + 1))
