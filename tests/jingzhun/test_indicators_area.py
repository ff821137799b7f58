"""Village indicators read for one person: only the villages of their area, chosen by the database (the rows the
queries return are already the area's), on both backends."""

from __future__ import annotations

import pandas as pd

from helpers import publish_county
from workbench import nightly_indicators

from jingzhun import indicators as ind
from jingzhun.policy import Policy
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role


def actor(role: Role, area: str) -> Actor:
    return Actor(0, f"{role.value}_{area}", role, area)


def test_each_reader_gets_the_villages_of_their_area_from_the_database(warehouse_url, county, frames, monkeypatch):
    engine, _ = publish_county(warehouse_url, frames, county["landing"])
    published = nightly_indicators(engine, frames)
    codes = sorted(published["village_code"])
    village = codes[0]
    read: list[pd.DataFrame] = []
    real = pd.read_sql

    def spy(*args, **kwargs):   # what each query of the indicators returned, before any pandas work
        frame = real(*args, **kwargs)
        read.append(frame)
        return frame

    monkeypatch.setattr(ind.pd, "read_sql", spy)

    def villages_of(who: Actor | None):
        read.clear()
        villages, townships, about = ind.indicators(engine, Policy(), who)
        returned = {str(c) for frame in read if "village_code" in frame.columns for c in frame["village_code"]}
        return villages, townships, returned

    villages, townships, returned = villages_of(actor(Role.village, village))
    assert villages["village_code"].tolist() == [village]
    assert returned == {village}, "the database returned other villages' rows"
    row = published.set_index("village_code").loc[village]
    assert villages.loc[0, "hukou_persons"] == row["hukou_persons"]
    assert townships["hukou_persons"].tolist() == [row["hukou_persons"]]

    township = village[:9]
    villages, _, returned = villages_of(actor(Role.township, township))
    assert villages["village_code"].tolist() == [c for c in codes if c.startswith(township)]
    assert returned <= set(villages["village_code"])
    for who in (actor(Role.county, village[:6]), actor(Role.steward, village[:4]), actor(Role.auditor, ""), None):
        villages, _, _ = villages_of(who)
        assert villages["village_code"].tolist() == codes, who
    for who in (actor(Role.county, "620422"), actor(Role.village, village[:6]), actor(Role.auditor, "63")):
        villages, townships, returned = villages_of(who)   # another county; an area of the wrong length; another province
        assert villages.empty and townships.empty and returned == set(), who
