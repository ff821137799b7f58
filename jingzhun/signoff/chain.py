"""The sign-off chain: the one owner of decisions (signoff.md). A step is taken here and nowhere else: the pages,
the API and the workbook import are its clients.

Grain: one call of :func:`take_step` is one step on one flag, all or nothing. A step is checked in this order: the
flag exists in the actor's area (else :class:`Unknown`, 404), the evidence and the state the person saw are the
flag's (else :class:`Changed`, 409), the action is this role's at this stage and its period allows it (else
:class:`NotAllowed`, 403), and it carries what it needs (else :class:`Malformed`, 422). Of two people acting on one
state, the database lets one update the flag (the state token is in the UPDATE's WHERE); the other is refused.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, insert, select, update

from jingzhun import audit, warehouse
from jingzhun import normalise as nz
from jingzhun.policy import Policy, load_policy
from jingzhun.privacy import Refused, typed_id_number
from jingzhun.signoff.access import Actor, Unknown, in_area
from jingzhun.signoff.periods import period_over
from jingzhun.signoff.stages import AFTER_PERIOD, MOVES, PUBLICITY, Action, Stage
from jingzhun.signoff.periods import advance_periods
from jingzhun.signoff.views import flag_detail, publicity_entries, queue, queue_counts, state_token

token_of = state_token  # take_step's parameter of that name is what the person saw

__all__ = ["take_step", "advance_periods", "queue", "queue_counts", "flag_detail", "publicity_entries", "state_token",
           "Unknown", "NotAllowed", "Changed", "Malformed", "STATUS_OF"]


class NotAllowed(Refused):
    """Not this role's action at this stage, or the 公示 period forbids it now (HTTP 403)."""

    status = 403


class Changed(Refused):
    """The evidence or the flag's state changed since the page or workbook was produced (HTTP 409)."""

    status = 409


class Malformed(Refused):
    """A step that lacks what it needs: a reason, enough verifiers, a department; an unknown action (HTTP 422)."""

    status = 422


STATUS_OF = {Stage.approved: "confirmed", Stage.dismissed: "dismissed"}  # every other stage: open
TAKEN_BY_PEOPLE = frozenset(action for _, action in MOVES)
NOTE_CHARS, NAME_CHARS = 500, 32


def _clean(text: str | None, limit: int, what: str) -> str:
    """A person's text as stored: control, invisible, filler and combining characters out (as names are cleaned at
    staging: a reason of nothing but a word joiner is no reason), spaces trimmed, at most ``limit``; refused when it
    holds something shaped like an identity number (a step's words are shown unmasked to everyone who sees the flag)."""
    out = nz.strip_invisible(pd.Series([str(text or "")]), marks=True)[0].iloc[0].strip()
    if len(out) > limit:
        raise Malformed(f"{what}过长 (too long: at most {limit} characters)")
    if typed_id_number(out):
        raise Malformed(f"{what}中不能写身份证号 (no identity numbers)")
    return out


def _names(verifiers) -> list[str]:
    """The verifiers' names: cleaned, each with a letter in it, each person once (however it is spelled)."""
    names = [n for n in (_clean(v, NAME_CHARS, "核实人") for v in (verifiers or ())) if n]
    if any(not any(c.isalpha() for c in n) for n in names):
        raise Malformed("核实人须填写姓名 (a verifier is named by a name)")
    return list({unicodedata.normalize("NFKC", n).casefold(): n for n in names}.values())


def take_step(engine: Engine, actor: Actor, flag_key: str, action: str, note: str = "", evidence_hash: str = "",
              state_token: str = "", verifiers=(), department: str = "", via: str = "web", origin: str = "",
              policy: Policy | None = None, now: datetime | None = None, workbook_sha256: str | None = None) -> Stage:
    """Take one step (see the module): the flag's new stage. Audited in the same transaction."""
    policy = policy or load_policy(None)
    now = now or warehouse.now()
    advance_periods(engine, policy, now)  # a 公示 that has ended moves on before anyone acts on it
    with engine.begin() as conn:
        to = step_in(conn, actor, flag_key, action, note, evidence_hash, state_token, verifiers, department, via, origin,
                     policy, now, workbook_sha256)
    if to in PUBLICITY and policy.signoff.publicity_days == 0:
        advance_periods(engine, policy, now)  # a province that publicises offline: the period is over at once
        return AFTER_PERIOD[to]
    return to


def step_in(conn, actor: Actor, flag_key: str, action: str, note: str, evidence_hash: str, state_token: str,
            verifiers, department: str, via: str, origin: str, policy: Policy, now: datetime,
            workbook_sha256: str | None = None) -> Stage:
    """One step inside the caller's transaction (a workbook's steps are all or nothing): checked, recorded, audited.
    The caller has ended the periods due (:func:`advance_periods`)."""
    try:
        act = Action(action)
    except ValueError:
        raise Malformed("未知操作 (unknown action)") from None
    if act not in TAKEN_BY_PEOPLE:
        raise Malformed("该操作由系统记录 (an action only the system records)")
    note, department = _clean(note, NOTE_CHARS, "说明"), _clean(department, NOTE_CHARS, "部门")
    names = _names(verifiers)
    if not evidence_hash or not state_token:
        raise Malformed("缺少证据摘要或状态标记 (evidence_hash and state_token are required)")
    f = warehouse.flags.c
    flag = conn.execute(select(f.flag_key, f.stage, f.status, f.step_seq, f.stage_since, f.evidence_hash,
                               f.village_code).where(f.flag_key == str(flag_key), in_area(actor, f.village_code))).first()
    if flag is None:
        raise Unknown("未找到该标记 (no such flag)")
    stage = Stage(flag.stage)
    if evidence_hash != flag.evidence_hash:
        raise Changed("证据已变化 (the evidence changed since it was shown: reload and look again)")
    if state_token != token_of(flag.stage, flag.step_seq):
        raise Changed(f"该标记已由他人处理,现为“{stage.value}” (someone acted on this flag since it was shown)")
    move = MOVES.get((stage, act))
    if flag.status != "open" or move is None or move.role != actor.role:
        raise NotAllowed("此阶段不能由您进行该操作 (not your action at this stage)")
    if move.during_period and period_over(flag.stage_since, policy, now):
        raise NotAllowed("公示期已满 (the publicity period has ended)")
    if move.needs_note and not note:
        raise Malformed("请填写理由或说明 (a reason is required)")
    if move.needs_verifiers and len(names) < policy.signoff.min_verifiers:
        raise Malformed(f"入户核实至少需要 {policy.signoff.min_verifiers} 人 (at least {policy.signoff.min_verifiers} "
                        f"verifiers' names)")
    if move.needs_department and not department:
        raise Malformed("请填写转办部门 (the department is required)")
    to = move.to
    if act is Action.verify and not policy.signoff.second_publicity:
        to = AFTER_PERIOD[Stage.publicity_2]
    moved = conn.execute(update(warehouse.flags).where(
        f.flag_key == flag.flag_key, f.step_seq == flag.step_seq, f.stage == flag.stage).values(
        stage=to.value, stage_since=now, step_seq=flag.step_seq + 1, status=STATUS_OF.get(to, "open")))
    if moved.rowcount != 1:
        raise Changed("另一人刚刚处理了该标记 (someone else acted on this flag just now: reload)")
    conn.execute(insert(warehouse.steps).values(
        flag_key=flag.flag_key, action=act.value, stage_before=stage.value, stage_after=to.value,
        actor=actor.username, role=actor.role.value, acted_at=now, note=note or None,
        verifiers=json.dumps(names, ensure_ascii=False) if names else None, department=department or None,
        evidence_hash=evidence_hash, state_token=state_token, via=via, workbook_sha256=workbook_sha256))
    audit.record(conn, actor.username, audit.Event.step, "flag", flag.flag_key, flag.village_code, origin,
                 f"{act.value}: {stage.value} -> {to.value} ({via})", now=now)
    return to
