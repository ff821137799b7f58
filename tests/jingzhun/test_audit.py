"""The audit log: one row per event, in the caller's transaction; read only within the reader's area, filtered by
the database; the log and the chain's steps refuse UPDATE and DELETE on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from jingzhun import audit, warehouse
from jingzhun.audit import Event
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
AREAS = {"village": "620421100201", "neighbour": "620422100201", "other_province": "630102100201", "none": None}


def _log(engine) -> None:
    with engine.begin() as conn:
        for n, (key, area) in enumerate(AREAS.items()):
            audit.record(conn, "steward1", Event.step, "flag", key, area, "127.0.0.1", f"row {n}",
                         now=T0 + timedelta(minutes=n))


def _keys(frame) -> set[str]:
    return set(frame["object_key"])


def test_events_fit_the_column_and_say_what_they_are():
    assert len({e.value for e in Event}) == len(Event)
    assert all(len(e.value) <= 24 for e in Event)
    assert Event.import_ == "import"
    assert {"login", "login_failed", "locked", "logout", "step", "full_number_view", "export", "import", "user_added",
            "user_disabled", "password_changed", "token_issued", "page_denied"} <= {e.value for e in Event}


READERS = [
    (Actor(1, "a", Role.auditor, ""), {"village", "neighbour", "other_province", "none"}),
    (Actor(1, "a", Role.auditor, "62"), {"village", "neighbour", "none"}),
    (Actor(1, "s", Role.steward, "62"), {"village", "neighbour", "none"}),
    (Actor(1, "s", Role.steward, "6204"), {"village", "neighbour"}),
    (Actor(1, "s", Role.steward, "620421"), {"village"}),
    (Actor(1, "c", Role.county, "620421"), {"village"}),
    (Actor(1, "t", Role.township, "620421100"), set()),
    (Actor(1, "v", Role.village, "620421100201"), set()),
    (Actor(1, "x", Role.county, "62042"), set()),  # not an area a county works at
]


def test_a_reader_sees_the_rows_of_their_area_only(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _log(engine)
    for actor, seen in READERS:
        frame = audit.rows(engine, actor)
        assert (actor, _keys(frame)) == (actor, seen)
        assert list(frame.columns) == audit.COLUMNS


def test_rows_are_newest_first_since_and_limited_and_read_on_a_connection(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _log(engine)
    auditor = Actor(1, "a", Role.auditor, "")
    assert list(audit.rows(engine, auditor)["object_key"]) == ["none", "other_province", "neighbour", "village"]
    assert list(audit.rows(engine, auditor, since=T0 + timedelta(minutes=2))["object_key"]) == ["none", "other_province"]
    # the same instant in Beijing time
    beijing = (T0 + timedelta(minutes=2)).astimezone(timezone(timedelta(hours=8)))
    assert list(audit.rows(engine, auditor, since=beijing)["object_key"]) == ["none", "other_province"]
    with engine.connect() as conn:
        assert list(audit.rows(conn, auditor, limit=1)["object_key"]) == ["none"]


def test_a_row_joins_the_callers_transaction_and_masks_identity_numbers_in_its_detail(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            audit.record(conn, "steward1", Event.export, "export", "flags.xlsx")
            raise RuntimeError("the export failed")
    with engine.begin() as conn:
        audit.record(conn, "x" * 100, Event.full_number_view, "household", "P6204211002019001", "620421100201",
                     "cli", "viewed 620421198001011234 by mistake")
    frame = audit.rows(engine, Actor(1, "a", Role.auditor, ""))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["actor"] == "x" * 64 and row["action"] == "full_number_view" and row["origin"] == "cli"
    assert "620421198001011234" not in row["detail"] and row["detail"].startswith("viewed 620421")


def _step(conn) -> None:
    conn.execute(warehouse.steps.insert().values(
        flag_key="f" * 48, action="agree", stage_before="pending_village", stage_after="publicity_1", actor="v1",
        role="village", acted_at=T0, evidence_hash="e" * 64, state_token="s" * 64, via="web"))


@pytest.mark.parametrize("table, column", [("audit_log", "actor"), ("steps", "actor")])
def test_the_database_refuses_to_change_or_delete_a_row_of_the_log_or_of_the_steps(warehouse_url, table, column):
    engine = warehouse.connect(warehouse_url)
    with engine.begin() as conn:
        if table == "steps":
            _step(conn)
        else:
            audit.record(conn, "v1", Event.login, "session", "v1", "620421100201", "127.0.0.1", now=T0)
    for statement in (f"UPDATE {table} SET {column} = 'someone else'", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    if warehouse_url.startswith("postgresql"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table}"))
    with engine.connect() as conn:
        assert conn.execute(select(warehouse.metadata.tables[table].c[column])).scalars().all() == ["v1"]


def test_pages_follow_each_other_newest_first_without_gaps_or_repeats(warehouse_url):
    engine = warehouse.connect(warehouse_url)
    _log(engine)
    with engine.begin() as conn:   # two more rows at the same instant as the newest: the id breaks the tie
        for key in ("tie_1", "tie_2"):
            audit.record(conn, "steward1", Event.step, "flag", key, "620421100201", now=T0 + timedelta(minutes=3))
    auditor = Actor(1, "a", Role.auditor, "")
    every = list(audit.rows(engine, auditor)["object_key"])
    assert every == ["tie_2", "tie_1", "none", "other_province", "neighbour", "village"]
    paged, before = [], None
    while True:
        page = audit.rows(engine, auditor, limit=2, before=before)
        if page.empty:
            break
        paged += list(page["object_key"])
        before = int(page["audit_id"].iloc[-1])
        with engine.begin() as conn:   # logged meanwhile: on the first page, never in the later ones
            audit.record(conn, "steward1", Event.login, "session", "late", None, now=T0 + timedelta(hours=1))
    assert paged == every
    county = Actor(1, "c", Role.county, "620421")
    ids = audit.rows(engine, auditor).set_index("object_key")["audit_id"]
    assert list(audit.rows(engine, county, before=int(ids["tie_1"]))["object_key"]) == ["village"]
    assert audit.rows(engine, county, before=int(ids["other_province"])).empty     # not theirs to page from
    assert audit.rows(engine, auditor, before=10**6).empty                         # no such row
