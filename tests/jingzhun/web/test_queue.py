"""My queue's counts table against the real server: someone whose area holds several townships sees one row per
township until they pick one, then that township's villages; every count is the database's, and a township outside
the area is an empty queue, never another area's counts."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from jingzhun import warehouse

ROW = re.compile(r'<tr data-(township|village)="([0-9]+)">(.*?)</tr>', re.S)
COUNT = re.compile(r'<td class="n[^"]*">(?:<a href="[^"]*">([0-9]+)</a>)?</td>')


def rows(html: str) -> dict[tuple[str, str], int]:
    """(level, code) -> the row's total over its stage cells."""
    return {(level, code): sum(int(n or 0) for n in COUNT.findall(body)) for level, code, body in ROW.findall(html)}


def open_flags(engine, prefix: str) -> int:
    f = warehouse.flags.c
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(f.status == "open", f.village_code.like(prefix + "%"))).scalar()


def test_a_county_reads_its_townships_then_one_townships_villages(workbench):
    bench = workbench
    secret, _ = bench.session("xian")
    client = httpx.Client(base_url=bench.base, headers={"Cookie": f"jz_session={secret}"}, timeout=60)
    county = bench.village[:6]

    by_township = rows(client.get("/").text)
    assert by_township and {level for level, _ in by_township} == {"township"}
    assert all(code.startswith(county) and len(code) == 9 for _, code in by_township)
    assert sum(by_township.values()) == open_flags(bench.engine, county)
    for (_, code), n in by_township.items():
        assert n == open_flags(bench.engine, code)

    township = bench.village[:9]
    assert f'href="/?township={township}"' in client.get("/").text
    by_village = rows(client.get("/", params={"township": township}).text)
    assert by_village and {level for level, _ in by_village} == {"village"}
    assert all(code.startswith(township) for _, code in by_village)
    assert sum(by_village.values()) == open_flags(bench.engine, township)

    outside = client.get("/", params={"township": "620422001"})
    assert outside.status_code == 200 and rows(outside.text) == {} and 'id="flags"' not in outside.text
    assert client.get("/", params={"township": "62042100%"}).status_code == 422


def test_a_township_and_a_village_read_villages(workbench):
    bench = workbench
    for name, prefix in (("xiang", bench.village[:9]), ("cun", bench.village)):
        secret, _ = bench.session(name)
        client = httpx.Client(base_url=bench.base, headers={"Cookie": f"jz_session={secret}"}, timeout=60)
        found = rows(client.get("/").text)
        assert found and {level for level, _ in found} == {"village"}
        assert sum(found.values()) == open_flags(bench.engine, prefix)
