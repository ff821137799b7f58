"""``jingzhun generate --counties K``: a synthetic province — K real counties of one province, each with its
villages, register and hukou, the departments sending per-county files beside province-wide ones, and planted
cross-county cases with the flags they must raise.

Grain: one landing folder for the province (one folder per source, as for a county: a source's files are read
together, whichever county sent them) and one ground truth. Each county is generated as :func:`jingzhun.synth.generate`
generates one, with its own GB/T 2260 code (from python-stdnum's table) and its own birthplace codes outside the
province (so identity numbers stay unique across counties); then the cross-county cases (:data:`CROSS_CASES`)
plant, between neighbouring counties, what only a province-wide match finds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from stdnum import numdb

from jingzhun import clock
from jingzhun.contract import SOURCES
from jingzhun.labels import province_name
from jingzhun.synth import cases, population, writers
from jingzhun.synth.cases import Builder

PROVINCE = "62"  # 甘肃省
ELSEWHERE = ("61", "63", "64")  # 陕西, 青海, 宁夏: where people registered before they moved in
# Who sends what: the departments of each county send their own registers; the province's insurance platform
# sends its registers for the whole province.
PROVINCE_WIDE = ("medical_insurance", "illness")


@cache
def counties_of(province: str) -> tuple[tuple[str, str], ...]:
    """The county-level divisions of a province today, (code, name), from python-stdnum's GB/T 2260 table (the
    prefectures and their 市辖区 left out; divisions abolished or renamed take their current name); rural counties
    (县) first, where the register's households live, then districts and county-level cities."""
    out = []
    for _, low, _, props, children in numdb.get("cn/loc").prefixes:
        if low != province:
            continue
        for _, code, _, child, _ in children:
            name = child.get("county", "").split(",")[-1]
            period = re.match(r"\[(\d*)-(\d*)\]", name)
            if (period and period.group(2)) or code.endswith("00"):
                continue
            name = name[period.end():] if period else name
            if name != "市辖区":
                out.append((f"{province}{code}", name))
    return tuple(sorted(out, key=lambda c: not c[1].endswith("县")))  # rural counties (县) first, by code


# ---------------------------------------------------------------- cross-county cases: (county a, its neighbour b)

CROSS_CASES: dict[str, Callable[[Builder, Builder], None]] = {}


def cross_case(fn: Callable[[Builder, Builder], None]) -> Callable[[Builder, Builder], None]:
    CROSS_CASES[fn.__name__] = fn
    return fn


@cross_case
def car_registered_in_another_county(a: Builder, b: Builder) -> None:
    hh = a.household(identified=2016)
    b.vehicle(hh.head, "K33", date(2015, 6, 1))  # in the neighbour's vehicle register
    a.expect("RM_CAR", "remove", hh)


@cross_case
def commercial_flat_in_another_county(a: Builder, b: Builder) -> None:
    hh = a.household()
    b.estate(hh.members[1], "商品房", "商业")
    b.rows["real_estate"][-1].update(location="城区", location_code=str(b.villages[0]))
    a.expect("RM_PROPERTY", "remove", hh)


@cross_case
def death_recorded_by_another_county(a: Builder, b: Builder) -> None:
    hh = a.household(ages=(75, 72, 45), clean=False)
    a.clean_records(hh, skip=(hh.members[1].id_number,))
    b.death(hh.members[1], a.as_of - timedelta(days=40))
    a.expect("RM_MEMBER_DECEASED", "remove", hh, hh.members[1])


@cross_case
def on_the_registers_of_two_counties(a: Builder, b: Builder) -> None:
    cases.on_two_registers(a, b)


@cross_case
def hukou_held_in_another_county(a: Builder, b: Builder) -> None:
    """Not a flag: the spouse's hukou moved to the neighbour county; a county-only match would call the spouse
    absent from the hukou (DQ_NOT_IN_HUKOU)."""
    a.household(ages=(52, 50))
    row = a.rows["hukou"].pop()  # the spouse's
    village = str(b.villages[-1])
    row.update(hukou_household_id=f"{b.county}8{len(b.rows['hukou']):08d}", address_code=village, relation="户主")
    b.rows["hukou"].append(row)


# ---------------------------------------------------------------- the province

def generate_province(out: Path, counties: int = 3, households: int = 2000, seed: int = 1,
                      as_of: date | None = None) -> dict:
    """Write a province of ``counties`` counties of ``households`` hukou households each under ``out/landing``
    and its ground truth under ``out/ground_truth``; return a summary."""
    from jingzhun.synth import county_background, source_table, write_truth

    as_of = as_of or clock.today()
    known = counties_of(PROVINCE)
    if not 1 <= counties <= len(known):
        raise ValueError(f"--counties {counties}: {province_name(PROVINCE)} has {len(known)} counties")
    chosen = known[:counties]
    elsewhere = [code for p in ELSEWHERE for code, _ in counties_of(p)]
    out, rng = Path(out), np.random.default_rng(seed)
    repeats = max(3, households // 2000)
    backgrounds, builders = [], []
    for i, (code, _) in enumerate(chosen):
        county_rng = np.random.default_rng([seed, i])
        born_elsewhere = tuple(elsewhere[(3 * i + k) % len(elsewhere)] for k in range(3))
        backgrounds.append(county_background(county_rng, households, as_of, code, born_elsewhere))
        builder = Builder(county_rng, as_of, population.village_codes(households, code), county=code)
        cases.plant_into(builder, repeats)
        builders.append(builder)
    for _ in range(repeats):
        for i, a in enumerate(builders):
            b = builders[(i + 1) % len(builders)]
            for name, build in CROSS_CASES.items():
                if b is a:
                    continue  # one county: no neighbour
                a.case = b.case = name
                build(a, b)
    planted = [cases.planted(b) for b in builders]
    landing = out / "landing"
    counts: dict[str, int] = {}
    for name in SOURCES:
        if name in PROVINCE_WIDE:
            parts = [frame for bg, (tables, _, _) in zip(backgrounds, planted) for frame in (bg.get(name), tables.get(name))]
            batches = [((PROVINCE, province_name(PROVINCE)), source_table(name, parts, rng))]
        else:
            batches = [((code, county), source_table(name, [bg.get(name), tables.get(name)], rng))
                       for (code, county), bg, (tables, _, _) in zip(chosen, backgrounds, planted)]
        for sender, table in batches:
            if table is not None:
                writers.write_source(rng, landing, name, table, sender=sender)
                counts[name] = counts.get(name, 0) + len(table)
    (landing / "regions").mkdir(parents=True, exist_ok=True)
    regions = pd.concat([population.region_names(population.village_codes(households, code)) for code, _ in chosen])
    regions.to_csv(landing / "regions" / "区划名称.csv", index=False, encoding="utf-8-sig")
    expected = pd.concat([e for _, e, _ in planted], ignore_index=True)
    quarantined = pd.concat([q for _, _, q in planted], ignore_index=True)
    summary = {"as_of": as_of.isoformat(), "seed": seed, "province": PROVINCE, "counties": [c for c, _ in chosen],
               "households_per_county": households, "residents": counts.get("hukou", 0), "rows": counts,
               "planted_repeats": repeats, "cross_county_cases": list(CROSS_CASES),
               **write_truth(out, expected, quarantined)}
    (out / "ground_truth" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                                       encoding="utf-8")
    return summary
