"""The sign-off chain (signoff/chain.py) on a real warehouse, both backends: the whole walk, each check, the
periods, two people at once, the nightly run's moves and the append-only record."""

from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text, update

from jingzhun import warehouse
from jingzhun.policy import Policy
from jingzhun.signoff import chain
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role, Stage

from helpers import flag, raised, valid_id

VILLAGE, OTHER = "620421100201", "620421101202"  # OTHER: another township
EMPTY = pd.DataFrame(columns=warehouse.FLAG_STATE)
T0 = pd.Timestamp("2026-11-02 02:00", tz="UTC").to_pydatetime()   # 10:00 in Beijing
village = Actor(1, "村干部", Role.village, VILLAGE)
neighbour = Actor(2, "邻村", Role.village, OTHER)
township = Actor(3, "乡镇", Role.township, VILLAGE[:9])
county = Actor(4, "县", Role.county, VILLAGE[:6])
steward = Actor(5, "管理员", Role.steward, VILLAGE[:6])


def seeded(url: str, *rows, when=T0):
    engine = warehouse.connect(url)
    merged = warehouse.merge_flags(EMPTY, raised(*rows), "r1", {"RM_CAR", "RM_PROPERTY"}, None, when)
    with engine.begin() as conn:
        conn.execute(delete(warehouse.flags))
        warehouse.bulk_insert(conn, warehouse.flags, merged)
    return engine


def step(engine, actor, action, now, key=None, **kw):
    detail = chain.flag_detail(engine, actor, key or only_key(engine), now=now)
    return chain.take_step(engine, actor, detail["flag_key"], action, evidence_hash=detail["evidence_hash"],
                           state_token=detail["state_token"], policy=Policy(), now=now, **kw)


def only_key(engine):
    with engine.connect() as conn:
        return conn.execute(select(warehouse.flags.c.flag_key)).scalar_one()


def test_the_whole_walk_from_the_village_to_the_county(warehouse_url):
    engine = seeded(warehouse_url, flag())
    day = lambda n: T0 + timedelta(days=n)  # noqa: E731
    assert step(engine, village, "agree", day(0)) is Stage.publicity_1
    assert step(engine, village, "object", day(3), note="户主已卖车") is Stage.pending_village
    assert step(engine, village, "agree", day(4)) is Stage.publicity_1
    with pytest.raises(chain.NotAllowed):               # seven whole days after the 4th: the 公示 lasts to day 11
        step(engine, township, "verify", day(11), verifiers=["甲", "乙", "丙"])
    assert step(engine, township, "return", day(12), note="补充材料") is Stage.pending_village  # ended on day 12
    assert step(engine, village, "agree", day(13)) is Stage.publicity_1
    with pytest.raises(chain.Malformed):
        step(engine, township, "verify", day(21), verifiers=["甲", "乙", "甲", " "])   # two distinct names
    assert step(engine, township, "verify", day(21), verifiers=["甲", "乙", "丙"]) is Stage.publicity_2
    with pytest.raises(chain.NotAllowed):
        step(engine, county, "approve", day(28))        # the second 公示 lasts through day 28
    assert step(engine, county, "approve", day(29)) is Stage.approved
    detail = chain.flag_detail(engine, county, only_key(engine), now=day(29))
    assert detail["status"] == "confirmed" and detail["actions"] == []
    assert [s["action"] for s in detail["steps"]] == [
        "agree", "object", "agree", "period_ended", "return", "agree", "period_ended", "verify", "period_ended", "approve"]
    assert detail["steps"][7]["verifiers"] == ["甲", "乙", "丙"] and detail["steps"][1]["note"] == "户主已卖车"
    with engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(warehouse.audit_log)
                               .where(warehouse.audit_log.c.action == "step")).scalar()
    assert audited == 7   # every person's step (the periods are the system's)


def test_each_check_answers_as_the_spec_says(warehouse_url):
    engine = seeded(warehouse_url, flag())
    key = only_key(engine)
    seen = chain.flag_detail(engine, village, key, now=T0)
    take = lambda actor, action, **kw: chain.take_step(  # noqa: E731
        engine, actor, key, action, evidence_hash=kw.pop("evidence_hash", seen["evidence_hash"]),
        state_token=kw.pop("state_token", seen["state_token"]), policy=Policy(), now=T0, **kw)
    with pytest.raises(chain.Unknown):
        chain.flag_detail(engine, neighbour, key, now=T0)     # outside the area: as if it did not exist
    with pytest.raises(chain.Unknown):
        take(neighbour, "agree")
    with pytest.raises(chain.Unknown):
        chain.take_step(engine, village, "0" * 48, "agree", evidence_hash="x", state_token="y", now=T0)
    with pytest.raises(chain.Changed, match="证据已变化"):
        take(village, "agree", evidence_hash="0" * 64)
    with pytest.raises(chain.Changed):
        take(village, "agree", state_token="pending_village|7")
    with pytest.raises(chain.NotAllowed):
        take(county, "approve")
    with pytest.raises(chain.Malformed):
        take(village, "disagree", note="  \u202e ")    # a reason of nothing but spaces and direction marks
    with pytest.raises(chain.Malformed):
        take(village, "period_ended")
    with pytest.raises(chain.Malformed):
        take(village, "launch")
    assert take(village, "disagree", note="已核实不属实") is Stage.dismissed
    with pytest.raises(chain.Changed):               # the page it was taken from is now out of date
        take(village, "agree")
    assert [e.status for e in (chain.Unknown(""), chain.NotAllowed(""), chain.Changed(""), chain.Malformed(""))] == [
        404, 403, 409, 422]


def test_two_people_on_one_state_one_wins_the_other_is_told(warehouse_url):
    engine = seeded(warehouse_url, flag())
    seen = chain.flag_detail(engine, village, only_key(engine), now=T0)
    start, outcomes = threading.Barrier(2), []

    def act(action, note):
        start.wait()
        try:
            outcomes.append(chain.take_step(engine, village, seen["flag_key"], action, note=note, policy=Policy(),
                                            evidence_hash=seen["evidence_hash"], state_token=seen["state_token"], now=T0))
        except chain.Changed as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=act, args=a) for a in (("agree", ""), ("disagree", "不符合"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(o, chain.Changed) for o in outcomes) == 1 and sum(isinstance(o, Stage) for o in outcomes) == 1
    assert len(chain.flag_detail(engine, village, seen["flag_key"], now=T0)["steps"]) == 1


def test_policy_numbers_shape_the_chain(warehouse_url):
    engine = seeded(warehouse_url, flag())
    offline = Policy(signoff={"publicity_days": 0, "second_publicity": False, "min_verifiers": 2})
    key = only_key(engine)
    go = lambda actor, action, **kw: chain.take_step(  # noqa: E731
        engine, actor, key, action, policy=offline, now=T0, **kw,
        **{k: chain.flag_detail(engine, actor, key, policy=offline, now=T0)[k] for k in ("evidence_hash", "state_token")})
    assert go(village, "agree") is Stage.pending_township     # a 公示 of no days is over at once
    assert go(township, "verify", verifiers=["甲", "乙"]) is Stage.pending_county   # no second 公示


def test_the_queue_is_the_area_s_own_overdue_first(warehouse_url):
    engine = seeded(warehouse_url, flag(household="P1"), flag(household="P2", village=OTHER),
                    flag("RM_PROPERTY", household="P3"))
    mine = chain.queue(engine, village, policy=Policy(), now=T0 + timedelta(days=20))
    assert set(mine["village_code"]) == {VILLAGE} and len(mine) == 2 and mine["overdue"].all()
    assert mine["actionable"].all() and str(mine["due"].iloc[0]) == "2026-11-17"   # 15 whole days after the 2nd
    assert len(chain.queue(engine, township, policy=Policy(), now=T0)) == 2
    assert chain.queue(engine, township, policy=Policy(), now=T0)["actionable"].sum() == 0
    assert len(chain.queue(engine, county, policy=Policy(), now=T0)) == 3
    assert len(chain.queue(engine, county, rule="RM_PROPERTY", policy=Policy(), now=T0)) == 1
    assert chain.queue_counts(engine, county)["n"].sum() == 3
    assert chain.queue(engine, Actor(9, "x", Role.village, "62042110020"), now=T0).empty   # not a village's area


def test_nightly_runs_and_the_chain(warehouse_url):
    engine = seeded(warehouse_url, flag(household="P1"), flag(household="P2"))
    keys = chain.queue(engine, village, now=T0)["flag_key"].tolist()
    for key in keys:
        step(engine, village, "agree", T0, key=key)
    changed = raised(flag(household="P1", evidence='{"as_of": "2026-02-01", "records": [2]}'), flag(household="P2"))
    with engine.begin() as conn:
        conn.execute(insert_wap(changed, "r2"))
        warehouse.publish_flags(conn, "r2", {"RM_CAR"}, None)
    after = chain.queue(engine, village, now=T0).set_index("household_id")
    assert after.loc["P1", "stage"] == "pending_village" and after.loc["P2", "stage"] == "publicity_1"
    history = chain.flag_detail(engine, village, after.loc["P1", "flag_key"], now=T0)["steps"]
    assert [s["action"] for s in history] == ["agree", "reopened"] and history[1]["via"] == "nightly"
    with engine.begin() as conn:   # facts gone: resolved, the chain ends
        warehouse.publish_flags(conn, "r3", {"RM_CAR"}, None)
    assert chain.queue(engine, village, now=T0).empty


def insert_wap(frame, run_id):
    from sqlalchemy import insert

    return insert(warehouse.wap_flags).values(frame.assign(run_id=run_id).to_dict("records"))


def test_steps_and_the_audit_log_cannot_be_changed(warehouse_url):
    engine = seeded(warehouse_url, flag())
    step(engine, village, "agree", T0)
    for table in ("steps", "audit_log"):
        for statement in (f"UPDATE {table} SET actor = 'someone else'", f"DELETE FROM {table}"):
            with pytest.raises(Exception, match="append-only"):
                with engine.begin() as conn:
                    conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(select(warehouse.steps.c.actor)).scalar_one() == "村干部"


def test_today_s_decisions_move_into_the_chain(warehouse_url):
    from alembic import command
    from alembic.config import Config

    engine = warehouse.connect(warehouse_url)
    config = Config()
    config.set_main_option("script_location", str(warehouse.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
        rows = raised(flag(household="P1"), flag(household="P2"), flag(household="P3"))
        rows = rows.assign(status=["confirmed", "dismissed", "open"], first_seen_run="r1", last_seen_run="r1")
        conn.execute(text("INSERT INTO flags (flag_key, rule_code, direction, household_id, hukou_household_id, "
                          "id_number, village_code, evidence, evidence_text, evidence_hash, status, first_seen_run, "
                          "last_seen_run) VALUES (:flag_key, :rule_code, :direction, :household_id, :hukou_household_id,"
                          " :id_number, :village_code, :evidence, :evidence_text, :evidence_hash, :status, "
                          ":first_seen_run, :last_seen_run)"), rows.to_dict("records"))
        conn.execute(text("INSERT INTO reviews (flag_key, decision, note, reviewer, decided_at, evidence_hash, workbook, "
                          "workbook_sha256) VALUES (:k, :d, :n, 'steward', :t, :h, 'w.xlsx', 'abc')"),
                     [{"k": k, "d": d, "n": n, "t": T0, "h": h} for k, d, n, h in
                      zip(rows["flag_key"], ["确认", "驳回", "待核实"], ["", "不属实", "再看看"], rows["evidence_hash"])])
        command.upgrade(config, "head")
    got = chain.queue(engine, county, status="all", now=T0).set_index("household_id")
    assert got["stage"].to_dict() == {"P1": "approved", "P2": "dismissed", "P3": "pending_village"}
    history = chain.flag_detail(engine, county, got.loc["P2", "flag_key"], now=T0)["steps"]
    assert history[0]["action"] == "migrated" and history[0]["note"] == "驳回:不属实" and history[0]["actor"] == "steward"
    assert got.loc["P3", "state_token"] == "pending_village|1"   # its 待核实 was a step


def test_a_resolved_flag_takes_no_step(warehouse_url):
    engine = seeded(warehouse_url, flag())
    seen = chain.flag_detail(engine, village, only_key(engine), now=T0)
    with engine.begin() as conn:
        conn.execute(update(warehouse.flags).values(status="resolved"))
    with pytest.raises(chain.NotAllowed):
        chain.take_step(engine, village, seen["flag_key"], "agree", evidence_hash=seen["evidence_hash"],
                        state_token=seen["state_token"], now=T0)


def test_a_step_taken_while_a_run_publishes_is_not_overwritten(postgres_url, monkeypatch):
    engine = seeded(postgres_url, flag())
    seen = chain.flag_detail(engine, village, only_key(engine), now=T0)
    merging, real_merge = threading.Event(), warehouse.merge_flags

    def slow_merge(*args, **kwargs):   # the run has read the flags and is still merging
        merging.set()
        import time
        time.sleep(2)
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(warehouse.flag_state, "merge_flags", slow_merge)

    def publish():
        with engine.begin() as conn:
            conn.execute(insert_wap(raised(flag()), "r2"))
            warehouse.publish_flags(conn, "r2", {"RM_CAR"}, None)

    run = threading.Thread(target=publish)
    run.start()
    merging.wait(10)
    outcome = None
    try:
        outcome = chain.take_step(engine, village, seen["flag_key"], "agree", evidence_hash=seen["evidence_hash"],
                                  state_token=seen["state_token"], policy=Policy(), now=T0)
    except chain.Changed:
        pass
    run.join()
    after = chain.flag_detail(engine, village, seen["flag_key"], now=T0)
    taken = [s["action"] for s in after["steps"]]
    assert (after["stage"], taken) == (("publicity_1", ["agree"]) if outcome else ("pending_village", []))


def test_invisible_characters_are_no_reason_and_no_verifier(warehouse_url):
    engine = seeded(warehouse_url, flag())
    key = only_key(engine)
    with pytest.raises(chain.Malformed):
        step(engine, village, "disagree", T0, note="\u2060\u3164 \u00ad")
    assert step(engine, village, "agree", T0) is Stage.publicity_1
    later = T0 + timedelta(days=8)   # the 公示 opened on the 2nd lasted through the 9th
    for names in (["张三", "张三\u2060", "张三\u00ad"], ["1", "2", "3"], ["Li Si", "li si", "ＬＩ ＳＩ"]):
        with pytest.raises(chain.Malformed):
            step(engine, township, "verify", later, key=key, verifiers=names)
    assert step(engine, township, "verify", later, key=key, verifiers=["Li Si", "王五", "赵六"]) is Stage.publicity_2


def test_a_step_s_words_hold_no_identity_number(warehouse_url, monkeypatch):
    """A step's note, department and verifiers are shown to everyone who sees the flag (an auditor, who sees masked
    numbers only, too): one holding an identity number, however typed, is refused; one stored before is masked."""
    engine = seeded(warehouse_url, flag())
    key = only_key(engine)
    number = valid_id("62042119700101123")
    for note in (f"户主 {number} 已死亡", f"ID{number}", f"{number[:6]} {number[6:14]}-{number[14:]}"):
        with pytest.raises(chain.Malformed, match="身份证号"):
            step(engine, village, "disagree", T0, note=note)
    with monkeypatch.context() as before:   # a note typed before the refusal, stored (steps are append-only)
        before.setattr(chain, "typed_id_number", lambda text: False)
        assert step(engine, village, "disagree", T0, note=f"户主 {number} 已死亡") is Stage.dismissed
    shown = chain.flag_detail(engine, village, key, now=T0)["steps"][-1]["note"]
    assert number not in shown and "*" * 10 in shown
