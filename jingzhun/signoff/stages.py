"""The sign-off chain's vocabulary (signoff.md, "Stages"): the stages a flag walks, the actions people take, who
takes each, what each needs and where it leads. One table, :data:`MOVES`; the chain (:mod:`jingzhun.signoff.chain`),
the pages, the API and the workbook import read it and add no rule of their own.

Grain: one row of :data:`MOVES` per (stage, action).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    village = "village"     # 村两委 / 驻村工作队: one village (12 digits)
    township = "township"   # 乡镇: one township (9 digits)
    county = "county"       # 县级主管部门: one county (6 digits)
    steward = "steward"     # 数据管理员: a county or province
    auditor = "auditor"     # 审计 / 纪检: any area, read-only


AREA_DIGITS = {Role.village: (12,), Role.township: (9,), Role.county: (6,), Role.steward: (2, 4, 6), Role.auditor: (0, 2, 4, 6)}
ROLE_TITLES = {Role.village: "村级", Role.township: "乡镇", Role.county: "县级", Role.steward: "数据管理员", Role.auditor: "审计"}


class Stage(StrEnum):
    pending_village = "pending_village"     # 待评议
    publicity_1 = "publicity_1"             # 村内公示
    pending_township = "pending_township"   # 待审核
    publicity_2 = "publicity_2"             # 二次公示
    pending_county = "pending_county"       # 待审批
    approved = "approved"                   # 已批准(公告)
    dismissed = "dismissed"                 # 不予通过
    pending_referral = "pending_referral"   # 待转办 (refer: the township sends it to the department)
    referred = "referred"                   # 已转办 (awaiting the department's answer)
    pending_steward = "pending_steward"     # 待核实 (review: a data problem or a judgement case)


STAGE_TITLES = {Stage.pending_village: "待评议", Stage.publicity_1: "村内公示", Stage.pending_township: "待审核",
                Stage.publicity_2: "二次公示", Stage.pending_county: "待审批", Stage.approved: "已批准(公告)",
                Stage.dismissed: "不予通过", Stage.pending_referral: "待转办", Stage.referred: "已转办",
                Stage.pending_steward: "待核实"}
ENDS = frozenset({Stage.approved, Stage.dismissed})        # where a chain ends (status confirmed / dismissed)
PUBLICITY = frozenset({Stage.publicity_1, Stage.publicity_2})


class Action(StrEnum):
    agree = "agree"             # 民主评议 agrees
    disagree = "disagree"       # 民主评议 disagrees (reason)
    object = "object"           # 异议 during a 公示 (its text)
    verify = "verify"           # 乡镇审核: 入户核实 by at least min_verifiers people
    return_ = "return"          # 乡镇 returns the case to the village (reason)
    approve = "approve"         # 县 批准
    deny = "deny"               # 县 驳回 (reason)
    refer = "refer"             # 转办 to a department (department)
    answer = "answer"           # the department's answer (已解决 / 无法解决, note)
    confirm = "confirm"         # 已核实 (review)
    no_problem = "no_problem"   # 无问题 (review; reason)
    # recorded by the system, taken by no one
    period_ended = "period_ended"   # a 公示 ended without objection
    reopened = "reopened"           # the nightly run found changed evidence: back to the start, history kept
    migrated = "migrated"           # a decision taken outside the chain's levels: before it, or a steward's workbook


ACTION_TITLES = {Action.agree: "评议通过", Action.disagree: "评议不通过", Action.object: "公示异议", Action.verify: "审核通过(入户核实)",
                 Action.return_: "退回村级", Action.approve: "批准", Action.deny: "驳回", Action.refer: "转办",
                 Action.answer: "部门答复", Action.confirm: "已核实", Action.no_problem: "无问题",
                 Action.period_ended: "公示期满", Action.reopened: "证据变化,重新评议", Action.migrated: "签批流程外的决定"}


@dataclass(frozen=True)
class Move:
    """One action at one stage: who takes it, what it needs, where it leads."""

    role: Role
    to: Stage
    needs_note: bool = False        # a reason, an objection's text or an answer
    needs_verifiers: bool = False   # at least ``signoff.min_verifiers`` names
    needs_department: bool = False  # a referral names the department
    after_period: bool = False      # only once the stage's 公示 period has ended (a stage that is a 公示)
    during_period: bool = False     # only while it lasts


MOVES: dict[tuple[Stage, Action], Move] = {
    (Stage.pending_village, Action.agree): Move(Role.village, Stage.publicity_1),
    (Stage.pending_village, Action.disagree): Move(Role.village, Stage.dismissed, needs_note=True),
    (Stage.publicity_1, Action.object): Move(Role.village, Stage.pending_village, needs_note=True, during_period=True),
    (Stage.pending_township, Action.verify): Move(Role.township, Stage.publicity_2, needs_verifiers=True),
    (Stage.pending_township, Action.return_): Move(Role.township, Stage.pending_village, needs_note=True),
    (Stage.publicity_2, Action.object): Move(Role.village, Stage.pending_township, needs_note=True, during_period=True),
    (Stage.pending_county, Action.approve): Move(Role.county, Stage.approved),
    (Stage.pending_county, Action.deny): Move(Role.county, Stage.dismissed, needs_note=True),
    (Stage.pending_referral, Action.refer): Move(Role.township, Stage.referred, needs_department=True),
    (Stage.referred, Action.answer): Move(Role.township, Stage.approved, needs_note=True),
    (Stage.pending_steward, Action.confirm): Move(Role.steward, Stage.approved),
    (Stage.pending_steward, Action.no_problem): Move(Role.steward, Stage.dismissed, needs_note=True),
}

# after a 公示 ends without objection (``signoff.second_publicity`` false: the township's verification goes straight
# to the county)
AFTER_PERIOD = {Stage.publicity_1: Stage.pending_township, Stage.publicity_2: Stage.pending_county}

FIRST_STAGE = {"refer": Stage.pending_referral, "review": Stage.pending_steward}  # every other direction: the village


def first_stage(direction: str) -> Stage:
    """Where a new flag (or one whose evidence changed) starts."""
    return FIRST_STAGE.get(direction, Stage.pending_village)


def first_stages(directions):
    """:func:`first_stage` of a column of directions (a pandas Series), as stage values: looked up once per
    distinct direction, not once per flag."""
    return directions.map({d: first_stage(d).value for d in directions.dropna().unique()})


def actions_for(stage: Stage, role: Role) -> list[Action]:
    """What ``role`` may do at ``stage`` (periods aside)."""
    return [action for (at, action), move in MOVES.items() if at == stage and move.role == role]


def stages_of(role: Role) -> list[Stage]:
    """The stages at which ``role`` has something to do: its queue."""
    return sorted({at for (at, _), move in MOVES.items() if move.role == role})
