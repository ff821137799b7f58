"""A stage's period (signoff.md; seed 000: 公示 "不少于七天"): whole days in the people's time zone after the day of
the step that opened it. A 公示 that opened on day D with ``publicity_days`` N lasts through day D + N (its last day)
and has ended from day D + N + 1 on, so it lasts at least N times 24 hours whenever it opened; N = 0 ends it at once
(a province that publicises offline). A level is overdue when it has not acted within ``signoff.act_days`` counted
the same way.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd

from sqlalchemy import Engine, and_, insert, select, update

from jingzhun import clock, warehouse
from jingzhun.policy import Policy, load_policy
from jingzhun.signoff.stages import AFTER_PERIOD, Action


def _midnight(day: date, policy: Policy) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(policy.time_zone))


def cutoff(policy: Policy, now: datetime, days: int | None = None) -> datetime:
    """The instant (UTC, as stored) before which a stage opened has had its ``days`` (the 公示's by default) by
    ``now``."""
    days = policy.signoff.publicity_days if days is None else days
    today = clock.local(now, policy.time_zone).date()
    last_open = today - timedelta(days=days) if days > 0 else today + timedelta(days=1)   # opened before: ended
    return _midnight(last_open, policy).astimezone(timezone.utc)


def period_over(since: datetime | None, policy: Policy, now: datetime) -> bool:
    """Whether a 公示 opened at ``since`` has ended by ``now``."""
    return since is not None and clock.local(since, "UTC") < cutoff(policy, now)


def due_dates(since: pd.Series, days, policy: Policy) -> pd.Series:
    """The last day of a period of ``days`` (a number, or one per row) whole days after each ``since`` (people's
    dates; a period of 0 days ends the day it opens)."""
    span = pd.to_timedelta(pd.Series(days, index=since.index).clip(lower=0), unit="D")
    return (clock.local_times(since, policy.time_zone).dt.normalize() + span).dt.date


def advance_periods(engine: Engine, policy: Policy | None = None, now: datetime | None = None) -> int:
    """Every 公示 whose period has ended without objection moves on (``period_ended`` steps, by the system); set
    based, and safe to run by two at once (the UPDATE decides which flags it moved)."""
    policy = policy or load_policy(None)
    now = now or warehouse.now()
    f = warehouse.flags.c
    ended = and_(f.stage.in_([stage.value for stage in AFTER_PERIOD]), f.status == "open",
                 f.stage_since < cutoff(policy, now))
    with engine.connect() as conn:  # a read first: pages call this, and most of the time nothing has ended
        if conn.execute(select(f.flag_key).where(ended).limit(1)).first() is None:
            return 0
    moved = 0
    with engine.begin() as conn:
        for stage, to in AFTER_PERIOD.items():
            rows = conn.execute(update(warehouse.flags).where(
                f.stage == stage.value, f.status == "open", f.stage_since < cutoff(policy, now)).values(
                stage=to.value, stage_since=now, step_seq=f.step_seq + 1).returning(
                f.flag_key, f.evidence_hash, f.step_seq, f.village_code)).all()
            if rows:
                conn.execute(insert(warehouse.steps), [
                    {"flag_key": r.flag_key, "action": Action.period_ended.value, "stage_before": stage.value,
                     "stage_after": to.value, "actor": "system", "role": "system", "acted_at": now,
                     "note": f"公示期满 {policy.signoff.publicity_days} 天无异议 (no objection in the period)",
                     "evidence_hash": r.evidence_hash, "state_token": f"{stage.value}|{r.step_seq - 1}",
                     "via": "period"} for r in rows])
                moved += len(rows)
    return moved
