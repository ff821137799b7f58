"""One run at a time per warehouse, on both backends: a second run while one holds the warehouse is refused
with a clear message and changes nothing; two runs started together never both publish, the register holds
each person once, and the next night is not blocked against a doubled baseline."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from sqlalchemy import func, select

from jingzhun.nightly import nightly
from jingzhun import warehouse
from jingzhun.warehouse import WarehouseBusy

from helpers import AS_OF

pytestmark = pytest.mark.slow


def _runs(url: str) -> pd.DataFrame:
    with warehouse.connect(url).connect() as conn:
        return pd.read_sql(select(warehouse.runs.c.run_id, warehouse.runs.c.status), conn)


def _register(url: str) -> tuple[int, int]:
    table = warehouse.staging_tables["poverty_register"]
    with warehouse.connect(url).connect() as conn:
        rows, persons = conn.execute(select(func.count(), func.count(
            (table.c.household_id + "|" + table.c.id_number).distinct()))).one()
    return int(rows), int(persons)


def test_a_run_is_refused_while_another_holds_the_warehouse(county, tmp_path, warehouse_url):
    kw = dict(landing=str(county["landing"]), warehouse_url=warehouse_url, as_of=AS_OF, today=AS_OF, work_dir=str(tmp_path / "w"))
    engine = warehouse.connect(warehouse_url)
    with warehouse.run_lock(engine):
        with pytest.raises(WarehouseBusy, match="another run holds the warehouse"):
            nightly(**kw)
    assert _runs(warehouse_url).empty                       # nothing recorded, nothing published
    assert nightly(**kw)["status"] == "published"            # once it is free, the run goes through


def test_two_runs_at_once_never_both_publish_and_the_next_night_is_not_blocked(county, tmp_path, warehouse_url,
                                                                              monkeypatch):
    from jingzhun import warehouse

    kw = dict(landing=str(county["landing"]), warehouse_url=warehouse_url, as_of=AS_OF, today=AS_OF)
    outcomes: list[object] = []
    start, other_done = threading.Barrier(2), threading.Event()

    def hold(point: str) -> None:   # the run holding the warehouse stays inside until the other has ended
        if point == "before_publish":
            other_done.wait(timeout=300)

    monkeypatch.setattr(warehouse.publishing, "_test_hook", hold)

    def one(i: int) -> None:
        start.wait()
        try:
            outcomes.append(nightly(work_dir=str(tmp_path / f"w{i}"), **kw)["status"])
        except WarehouseBusy as exc:
            outcomes.append(exc)
            other_done.set()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published = [o for o in outcomes if o == "published"]
    refused = [o for o in outcomes if isinstance(o, WarehouseBusy)]
    assert len(published) == 1 and len(refused) == 1, outcomes
    rows, persons = _register(warehouse_url)
    assert rows == persons                                   # each person once
    night = nightly(work_dir=str(tmp_path / "next"), **kw)
    assert night["sources"]["poverty_register"]["status"] == "loaded"   # not blocked as "collapsed"
    assert _register(warehouse_url) == (rows, persons)
    assert set(_runs(warehouse_url)["status"]) == {"published"}
