"""The chain's offline path (signoff.md): one village's or township's open steps as a workbook
(``review export --area``), and its decisions back as one user's steps (``review import --as``), through the same
checks as the pages (:func:`jingzhun.signoff.chain.step_in`), all or nothing.

Grain: one row per open flag waiting for the area's level; one step per decided row. The workbook has the steward's
columns (:data:`jingzhun.review.COLUMNS`, so the file, row and identity checks of :mod:`jingzhun.review_import`
hold), with the chain's stage in 状态, its last step in 上次决定, the level's actions in 决定 and the chain's state
token; its custom property says ``mode: chain`` and the level.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.styles import Alignment, Font
from sqlalchemy import Engine, func, select

from jingzhun import audit, warehouse
from jingzhun.policy import Policy, load_policy
from jingzhun.privacy import Refused
from jingzhun.review import write_sheet
from jingzhun.sheets import print_setup
from jingzhun.signoff.access import Actor, area_valid
from jingzhun.signoff.chain import step_in
from jingzhun.signoff.periods import advance_periods
from jingzhun.signoff.stages import ACTION_TITLES, MOVES, STAGE_TITLES, Action, Role, Stage, stages_of
from jingzhun.signoff.views import queue
from jingzhun.written import save_workbook

LEVELS = {12: Role.village, 9: Role.township, 6: Role.county}
PRINT_WIDTHS = {"规则": 11, "状态": 11, "户编号": 21, "身份证号": 21, "证据": 28, "上次决定": 14, "决定": 7}
NAMES = re.compile(r"[、,，;；]+")  # names may hold spaces (a Latin name): only list marks part them
EXPLAINED = {  # what each choice of 决定 means, printed on the workbook's second sheet
    Action.agree: "民主评议同意,进入村内公示", Action.disagree: "民主评议不同意(备注写明理由),不予通过",
    Action.object: "公示期内群众提出异议(备注写明异议内容),退回重新评议或审核",
    Action.verify: "乡镇入户核实无误(备注写明核实人姓名,至少 {n} 人,用顿号分隔),进入二次公示",
    Action.return_: "退回村级重新评议(备注写明理由)", Action.approve: "县级批准,列入公告",
    Action.deny: "县级不予批准(备注写明理由)", Action.refer: "转交有关部门办理(备注写明部门)",
    Action.answer: "记录部门答复(备注写明已解决或无法解决及说明)", Action.confirm: "数据问题已核实",
    Action.no_problem: "核实无问题(备注写明理由)"}


class AreaError(Refused):
    """An area that is not a village's, a township's or a county's code."""


def level_of(area: str) -> Role:
    role = LEVELS.get(len(area or ""))
    if role is None or not area_valid(role, area):
        raise AreaError("--area: 须为村(12位)、乡镇(9位)或县(6位)区划代码 (a village, township or county code)")
    return role


def choices_for(role: Role) -> dict[str, Action]:
    """The titles a level chooses from in 决定, and the action each is."""
    return {ACTION_TITLES[action]: action for (_, action), move in MOVES.items() if move.role == role}


def write_area_workbook(engine: Engine, area: str, out: Path, policy: Policy | None = None) -> Path:
    """The open flags of ``area`` waiting for its level (a village's 公示 too: objections), with the chain's stage,
    due date, last step and state token; an explanation sheet; signature and date lines on every page."""
    policy = policy or load_policy(None)
    role = level_of(area)
    waiting = queue(engine, Actor(0, "export", role, area), policy=policy)
    waiting = waiting[waiting["stage"].isin([s.value for s in stages_of(role)])]
    f, s = warehouse.flags.c, warehouse.steps.c
    with engine.connect() as conn:
        rows = pd.read_sql(select(warehouse.flags).where(f.status == "open", f.village_code.like(area + "%")), conn)
        last = pd.read_sql(select(s.flag_key, s.action, s.actor, s.acted_at, s.note).where(
            s.step_id.in_(select(func.max(s.step_id)).group_by(s.flag_key))), conn)
        frame = rows[rows["flag_key"].isin(waiting["flag_key"])].merge(waiting[["flag_key", "state_token", "due"]])
        frame = frame.assign(**_history(frame, last, policy))
        frame = frame.assign(state_title=frame["stage"].map(lambda v: STAGE_TITLES[Stage(v)]) + "\n至 "
                             + frame["due"].astype("str"), decision="", note="")
        # printed at 9 points or more on A4: one level's columns only (the area is in the title), larger text
        hidden = ("乡镇", "村", "方向", "户号") if role is Role.village else ("乡镇", "方向", "户号") \
            if role is Role.township else ("方向", "户号")
        choices = choices_for(role)
        out = write_sheet(conn, frame, out, {"region": area, "households": [], "mode": "chain", "role": role.value},
                          list(choices), "请从下拉列表中选择", f"{_place(conn, area, role)}动态调整签批清单(区划 {area})", hidden,
                          footer="经办人签字:__________  日期:____年__月__日", widths=PRINT_WIDTHS, font_size=12)
    _explain(out, choices, policy)
    return out


def _place(conn, area: str, role: Role) -> str:
    """The township (and village) an area workbook is for, as people name them (empty when the reference has none)."""
    from jingzhun import labels

    reference = labels.stored_regions(conn)
    code = pd.Series([area.ljust(12, "0")])
    township = labels.township_names(code, reference).iloc[0] if role is not Role.county else ""
    village = labels.region_name(area, reference, "village") if role is Role.village else ""
    return f"{township or ''}{village or ''} "


def _history(frame: pd.DataFrame, last: pd.DataFrame, policy: Policy) -> dict[str, pd.Series]:
    """上次决定: the flag's last step (what, who, when, why)."""
    from jingzhun import clock

    step = last.set_index("flag_key").reindex(frame["flag_key"]).set_index(frame.index)
    title = step["action"].map(lambda a: ACTION_TITLES.get(Action(a), a) if isinstance(a, str) else "")
    when = clock.local_times(step["acted_at"], policy.time_zone).dt.strftime("%Y-%m-%d").fillna("")
    note = step["note"].fillna("").astype("str")
    text = (title + "(" + step["actor"].fillna("").astype("str") + "," + when + ")" + note.where(note.eq(""), ":" + note))
    return {"history": text.where(step["action"].notna(), "")}


def _explain(out: Path, choices: dict[str, Action], policy: Policy) -> None:
    """A second sheet, printed with the list: each choice of 决定 in one line."""
    wb = openpyxl.load_workbook(out)
    ws = wb.create_sheet("填写说明", 1)
    ws.append(["决定", "含义"])
    for title, action in choices.items():
        ws.append([title, EXPLAINED[action].format(n=policy.signoff.min_verifiers)])
    ws.append(["(空)", "本次不作决定"])
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 18, 90
    for row in ws.iter_rows():
        for cell in row:
            cell.font = Font(size=11, bold=cell.row == 1)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    print_setup(ws)
    save_workbook(wb, out)


def import_area_workbook(engine: Engine, path: Path, frame: pd.DataFrame, scope: dict, actor: Actor,
                         policy: Policy | None = None, wait_seconds: float = 120.0) -> dict[str, int]:
    """``frame`` (:func:`jingzhun.review_import.read_workbook`'s rows, checked on their own) as ``actor``'s steps,
    all or nothing: every row's problem named by its row, nothing recorded when there is one."""
    from jingzhun.review_import import ReviewError, flag_problems

    policy = policy or load_policy(None)
    choices = choices_for(actor.role)
    decided = frame[frame["决定"].ne("")]
    unknown = decided.loc[~decided["决定"].isin(list(choices)), "_row"]
    if len(unknown):
        raise ReviewError(f"{path.name}: 未导入 (nothing imported):\n  " + "\n  ".join(
            f"第{r}行: 未知决定,请从下拉列表选择 (unknown decision)" for r in unknown))
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    now = warehouse.now()
    advance_periods(engine, policy, now)
    with warehouse.flags_transaction(engine, wait_seconds) as conn:
        s = warehouse.steps.c
        earlier = conn.execute(select(func.count()).select_from(warehouse.steps).where(s.workbook_sha256 == digest)).scalar()
        if earlier:
            return {"already imported": int(earlier)}
        f = warehouse.flags.c
        current = pd.read_sql(select(f.flag_key, f.rule_code, f.household_id, f.hukou_household_id, f.id_number,
                                     f.village_code).where(f.village_code.like(scope["region"] + "%")), conn)
        problems = flag_problems(decided, current.set_index("flag_key"), scope)
        counts: dict[str, int] = {}
        for row, key, title, note, evidence, token in zip(decided["_row"], decided["标识"], decided["决定"],
                                                          decided["备注"], decided["证据摘要"], decided["状态标记"]):
            action = choices[title]
            try:
                step_in(conn, actor, key, action.value, "" if action in (Action.verify, Action.refer) else note,
                        evidence, token, NAMES.split(note) if action is Action.verify else (),
                        note if action is Action.refer else "", "workbook", "cli", policy, now, digest)
                counts[title] = counts.get(title, 0) + 1
            except Refused as refused:
                problems.append(f"第{row}行: {refused}")
        if problems:
            raise ReviewError(f"{path.name}: 未导入 (nothing imported):\n  " + "\n  ".join(problems))
        audit.record(conn, actor.username, audit.Event.import_, "workbook", digest, scope["region"], "cli",
                     json.dumps(counts, ensure_ascii=False), now=now)
    return counts
