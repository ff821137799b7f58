"""No decision is lost when a register is blocked: on a county whose every flag has been decided, a night with any
one register blocked keeps every flag's status and decision exactly, and raises nothing new (both backends)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from sqlalchemy import insert, select, update

from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.engine import flags
from jingzhun.policy import Policy
from jingzhun.steps import rules_evaluated

from helpers import AS_OF

pytestmark = pytest.mark.slow


def night(engine, frames: dict, run_id: str, blocked: str | None = None) -> None:
    """One night as the flow publishes it: the rules on the usable registers, the blocked one not loaded."""
    usable = {name: frame for name, frame in frames.items() if name != blocked}
    unavailable = {blocked: "blocked: 行数骤减 (rows fell)"} if blocked else {}
    raised, skipped = flags(usable, Policy(), pd.Timestamp(AS_OF), unavailable)
    warehouse.publish(engine, run_id, pd.DataFrame(), pd.DataFrame(), usable, raised, rules_evaluated(raised, skipped),
                      None)


def decide_everything(engine) -> None:
    """Every open flag decided, alternately confirmed and dismissed, each with its review."""
    f = warehouse.flags.c
    with engine.begin() as conn:
        open_flags = pd.read_sql(select(f.flag_key, f.evidence_hash).where(f.status == "open")
                                 .order_by(f.flag_key), conn)
        decisions = pd.Series(["确认", "驳回"] * len(open_flags))[:len(open_flags)].to_numpy()
        conn.execute(insert(warehouse.reviews), [
            {"flag_key": k, "decision": d, "note": "核实", "reviewer": "张三", "decided_at": warehouse.now(),
             "evidence_hash": h, "workbook": "w.xlsx", "workbook_sha256": "x"}
            for k, h, d in zip(open_flags["flag_key"], open_flags["evidence_hash"], decisions)])
        for decision, status in (("确认", "confirmed"), ("驳回", "dismissed")):
            keys = open_flags.loc[decisions == decision, "flag_key"].tolist()
            conn.execute(update(warehouse.flags).where(f.flag_key.in_(keys)).values(status=status))


def state(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        f = warehouse.flags.c
        table = pd.read_sql(select(f.flag_key, f.status, f.resolved_run, f.hukou_household_id, f.evidence_hash), conn)
        reviews = pd.read_sql(select(warehouse.reviews.c.flag_key, warehouse.reviews.c.decision), conn)
    return table.merge(reviews, how="left").sort_values("flag_key").reset_index(drop=True)


@pytest.fixture(scope="module")
def decided_county(frames, tmp_path_factory):
    """The county's registers after a first night, every flag decided: its warehouse file, copied per test."""
    path = tmp_path_factory.mktemp("decided") / "warehouse.sqlite"
    engine = warehouse.connect(f"sqlite:///{path}")
    night(engine, frames, "n1")
    decide_everything(engine)
    return path


@pytest.mark.parametrize("blocked", list(SOURCES))
def test_blocking_any_register_keeps_every_status_and_decision(decided_county, frames, blocked, tmp_path):
    copy = tmp_path / "warehouse.sqlite"
    shutil.copy(decided_county, copy)
    engine = warehouse.connect(f"sqlite:///{copy}")
    before = state(engine)
    assert len(before) > 100 and set(before["status"]) == {"confirmed", "dismissed"}
    night(engine, frames, "n2", blocked=blocked)
    pd.testing.assert_frame_equal(state(engine), before)  # status, decision, 户号 and evidence as they were
    night(engine, frames, "n3")  # the register is back, as it was: still nothing moves
    pd.testing.assert_frame_equal(state(engine), before)


@pytest.mark.postgres
@pytest.mark.parametrize("blocked", list(SOURCES))
def test_blocking_a_register_keeps_every_decision_on_postgresql(frames, blocked, postgres_url):
    engine = warehouse.connect(postgres_url)
    night(engine, frames, "n1")
    decide_everything(engine)
    before = state(engine)
    night(engine, frames, "n2", blocked=blocked)
    pd.testing.assert_frame_equal(state(engine), before)


def test_a_family_with_a_new_hukou_number_keeps_its_flags_and_decisions(decided_county, frames, tmp_path):
    """分户 or 迁移: every member of one flagged register family moves to a new 户号; its flags keep their identity,
    status and decision, and show the new number."""
    copy = tmp_path / "warehouse.sqlite"
    shutil.copy(decided_county, copy)
    engine = warehouse.connect(f"sqlite:///{copy}")
    before = state(engine)
    with engine.connect() as conn:
        f = warehouse.flags.c
        family = conn.execute(select(f.hukou_household_id).where(f.household_id != "", f.hukou_household_id != "")
                              .order_by(f.flag_key).limit(1)).scalar_one()
    hukou = frames["hukou"].copy()
    hukou["hukou_household_id"] = hukou["hukou_household_id"].mask(hukou["hukou_household_id"].eq(family), "H-NEW-1")
    night(engine, {**frames, "hukou": hukou}, "n2")
    after = state(engine)
    moved = before["hukou_household_id"].eq(family)
    assert moved.any() and after.loc[moved, "hukou_household_id"].eq("H-NEW-1").all()
    columns = ["flag_key", "status", "resolved_run", "decision"]
    pd.testing.assert_frame_equal(after[columns], before[columns])
