"""What people read of the chain: my queue, one flag, a village's 公示 and 公告. Every read is filtered by the
actor's area in its SQL (:func:`jingzhun.signoff.access.in_area`); an object outside answers as unknown.

Grain: :func:`queue` one row per open flag waiting in the area; :func:`queue_counts` one row per village and
stage; :func:`flag_detail` one flag; :func:`publicity_entries` one row per flag on a village's list.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, and_, case, func, select

from jingzhun import warehouse
from jingzhun.catalogue import RULES
from jingzhun.policy import Policy, load_policy
from jingzhun.publicity import CATEGORIES, posted_people
from jingzhun.signoff.access import Actor, Unknown, in_area
from jingzhun.signoff.periods import advance_periods, cutoff, due_dates
from jingzhun.signoff.stages import MOVES, PUBLICITY, Stage, actions_for

LIST_FIELDS = ["flag_key", "rule_code", "direction", "household_id", "hukou_household_id", "village_code", "stage",
               "status", "evidence_hash", "state_token"]
ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9Xx])")
WAITING = [s.value for s in Stage if s not in PUBLICITY and any(at == s for at, _ in MOVES)]


def state_token(stage: str, step_seq: int) -> str:
    """What a step is bound to: the flag's stage and how many steps it has taken (any step, by anyone or by the
    nightly run, changes it)."""
    return f"{stage}|{int(step_seq)}"


def masked(text: str | None, policy: Policy) -> str:
    """Identity numbers in a text (evidence) masked as on a 公示 (the policy's first and last characters shown)."""
    head, tail = policy.publicity_show_first, policy.publicity_show_last
    return ID_NUMBER.sub(lambda m: m.group(0)[:head] + "*" * (18 - head - tail) + m.group(0)[18 - tail:], text or "")


def _filters(actor: Actor, stage=None, village=None, rule=None, direction=None, status="open", township=None):
    f = warehouse.flags.c
    where = [in_area(actor, f.village_code)]
    if township:
        where.append(f.village_code.like(str(township)[:9] + "%"))
    if status and status != "all":
        where.append(f.status == status)
    for column, value in ((f.stage, stage), (f.village_code, village), (f.rule_code, rule), (f.direction, direction)):
        if value:
            where.append(column == str(value))
    return and_(*where)


def queue(engine: Engine, actor: Actor, stage=None, village=None, rule=None, direction=None, status="open",
          township=None, limit: int | None = None, offset: int = 0, policy: Policy | None = None,
          now: datetime | None = None) -> pd.DataFrame:
    """The open flags of the actor's area (filters by stage, village or township, rule, direction; ``status``
    ``all`` for every flag), overdue first, then by village and age; with each one's due date, overdue and whether the actor has an
    action on it now."""
    policy = policy or load_policy(None)
    now = now or warehouse.now()
    advance_periods(engine, policy, now)  # what people read is where the flags stand today
    f = warehouse.flags.c
    late = and_(f.status == "open", f.stage.in_(WAITING), f.stage_since < cutoff(policy, now, policy.signoff.act_days))
    query = (select(*(getattr(f, c) for c in LIST_FIELDS if c != "state_token"), f.step_seq, f.stage_since,
                    case((late, 1), else_=0).label("overdue"))
             .where(_filters(actor, stage, village, rule, direction, status, township))
             .order_by(case((late, 0), else_=1), f.village_code, f.stage_since, f.flag_key).offset(int(offset or 0)))
    if limit is not None:
        query = query.limit(int(limit))
    with engine.connect() as conn:
        out = pd.read_sql(query, conn)
    out["state_token"] = out["stage"].str.cat(out["step_seq"].astype("int64").astype("str"), sep="|")
    publicity = out["stage"].isin([s.value for s in PUBLICITY])
    days = pd.Series(policy.signoff.act_days, index=out.index).mask(publicity, policy.signoff.publicity_days)
    out["due"] = due_dates(out["stage_since"], days, policy)
    out["overdue"] = out["overdue"].astype(bool)
    mine = {s.value for (s, _), move in MOVES.items() if move.role == actor.role}
    out["actionable"] = out["status"].eq("open") & out["stage"].isin(mine)
    return out.drop(columns=["step_seq"])


def queue_counts(engine: Engine, actor: Actor, stage=None, village=None, rule=None, direction=None,
                 status="open", township=None) -> pd.DataFrame:
    """How many flags per village and stage in the actor's area (counted by the database)."""
    f = warehouse.flags.c
    query = (select(f.village_code, f.stage, func.count().label("n"))
             .where(_filters(actor, stage, village, rule, direction, status, township))
             .group_by(f.village_code, f.stage).order_by(f.village_code, f.stage))
    with engine.connect() as conn:
        return pd.read_sql(query, conn)


def flag_detail(engine: Engine, actor: Actor, flag_key: str, policy: Policy | None = None, now: datetime | None = None,
                full: bool = False) -> dict:
    """One flag of the actor's area: the list's fields, its evidence (identity numbers masked unless ``full``: the
    caller audits that view), its steps and the actions the actor may take now. Outside the area: :class:`Unknown`."""
    policy = policy or load_policy(None)
    advance_periods(engine, policy, now)
    f, s = warehouse.flags.c, warehouse.steps.c
    with engine.connect() as conn:
        row = conn.execute(select(warehouse.flags).where(f.flag_key == str(flag_key),
                                                         in_area(actor, f.village_code))).mappings().first()
        if row is None:
            raise Unknown("未找到该标记 (no such flag)")
        steps = pd.read_sql(select(s.actor, s.role, s.action, s.stage_before, s.stage_after, s.acted_at, s.note,
                                   s.verifiers, s.department, s.via).where(s.flag_key == row["flag_key"])
                            .order_by(s.step_id), conn)
    show = (lambda text: text or "") if full else (lambda text: masked(text, policy))
    evidence = json.loads(show(row["evidence"]))
    detail = {c: row[c] for c in LIST_FIELDS if c != "state_token"}
    detail.update(state_token=state_token(row["stage"], row["step_seq"]), stage_since=row["stage_since"],
                  evidence=evidence, evidence_text=show(row["evidence_text"]),
                  id_number=show(row["id_number"]),
                  rule_title=RULES[row["rule_code"]].title if row["rule_code"] in RULES else row["rule_code"])
    steps["note"] = steps["note"].map(show, na_action="ignore")   # a note stored before they were refused
    steps["verifiers"] = steps["verifiers"].map(lambda v: json.loads(v) if isinstance(v, str) and v else [])
    detail["steps"] = steps.astype(object).where(steps.notna(), None).to_dict("records")
    detail["actions"] = [a.value for a in actions_for(Stage(row["stage"]), actor.role)] if row["status"] == "open" else []
    return detail


def publicity_entries(engine: Engine, actor: Actor, village: str, kind: str = "publicity",
                      policy: Policy | None = None) -> pd.DataFrame:
    """A village's 公示 (``kind`` publicity: flags in a 公示 now, with its period) or 公告 (``announcement``: the
    approved ones): category, reason, head of household, the person and their number masked. A village outside the
    area: :class:`Unknown`."""
    policy = policy or load_policy(None)
    f = warehouse.flags.c
    stages = [s.value for s in PUBLICITY] if kind == "publicity" else [Stage.approved.value]
    where = and_(f.village_code == str(village), in_area(actor, f.village_code), f.stage.in_(stages),
                 f.direction.in_(list(CATEGORIES)))
    with engine.connect() as conn:
        if not conn.execute(select(func.count()).select_from(warehouse.flags).where(
                and_(f.village_code == str(village), in_area(actor, f.village_code)))).scalar():
            raise Unknown("未找到该村 (no such village)")
        chosen = pd.read_sql(select(warehouse.flags).where(where).order_by(f.direction, f.flag_key), conn)
        posted = posted_people(conn, chosen, policy)
    start = due_dates(chosen["stage_since"], 0, policy)  # the day it was posted
    end = due_dates(chosen["stage_since"], policy.signoff.publicity_days, policy)
    return pd.DataFrame({
        "flag_key": chosen["flag_key"], "village_code": chosen["village_code"], "stage": chosen["stage"],
        **{k: v for k, v in posted.items() if k != "_person"}, "户主姓名": posted["户主姓名"].fillna(""),
        "period_start": start, "period_end": end})
