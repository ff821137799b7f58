"""``jingzhun generate``: a synthetic county with planted cases and the flags they must raise."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from jingzhun import clock
from jingzhun.contract import SOURCES
from jingzhun.synth import cases, population, records, writers

EXPECTED_FLAGS = "expected_flags.csv"
EXPECTED_QUARANTINE = "expected_quarantine.csv"


def generate(out: Path, households: int = 2000, seed: int = 1, as_of: date | None = None,
             pack: Path | None = None) -> dict:
    """Write ``out/landing/<source>/…`` and ``out/ground_truth/expected_flags.csv``; return a summary. ``pack``: a
    province pack's folder, whose deployment is installed and whose ``cases.yaml`` is planted too."""
    as_of = as_of or clock.today()
    extra = None
    if pack is not None:
        from jingzhun import deployment

        deployment.install(deployment.read_deployment(Path(pack) / "deployment.yaml"))
        extra = cases.pack_cases(Path(pack) / "cases.yaml")
    rng = np.random.default_rng(seed)
    out = Path(out)
    tables = county_background(rng, households, as_of)
    repeats = max(3, households // 2000)
    planted, expected, quarantined = cases.plant(rng, as_of, population.village_codes(households), repeats, extra)
    counts = write_landing(rng, out / "landing", tables, planted)
    population.region_names(population.village_codes(households)).to_csv(
        out / "landing" / "regions" / "区划名称.csv", index=False, encoding="utf-8-sig")
    summary = {
        "as_of": as_of.isoformat(), "seed": seed, "households": households, "residents": int(len(tables["hukou"]) + len(planted.get("hukou", []))),
        "rows": counts, "planted_repeats": repeats,
        **write_truth(out, expected, quarantined),
    }
    (out / "ground_truth" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def county_background(rng: np.random.Generator, households: int, as_of: date, county: str = population.COUNTY,
                      born_elsewhere: tuple[str, ...] = population.OTHER_COUNTIES) -> dict[str, pd.DataFrame]:
    """The clean registers of one county (one frame per source): no rule fires on them."""
    bg = population.background(rng, households, as_of, county, born_elsewhere)
    persons, hh = bg["persons"], bg["hh"]
    reg = population.register_households(rng, hh, as_of)
    tables = records.background_records(rng, persons, reg, as_of)
    tables["cadres"] = records.background_cadres(rng, persons, reg)
    tables["deaths"], dead_index = records.background_deaths(rng, persons, reg, as_of)
    hukou = persons.copy()
    hukou.loc[dead_index, "person_status"] = "死亡"
    hukou.loc[dead_index, "status_date"] = pd.to_datetime(tables["deaths"]["death_date"]).dt.date.to_numpy()
    tables["hukou"] = hukou
    members = persons.merge(reg.drop(columns=["size", "head_age", "surname", "hukou_household_id", "village_code"]), on="hh")
    members["household_size"] = members.groupby("hh")["id_number"].transform("size")
    members["labor"] = "普通劳动力"
    members["health"] = "健康"
    members["safe_water"] = "是"
    members["electricity"] = "是"
    members["village_code"] = members["address_code"]
    tables["poverty_register"] = members
    return tables


def source_table(name: str, frames: list[pd.DataFrame | None], rng: np.random.Generator) -> pd.DataFrame | None:
    """One source's rows from ``frames`` (background and planted), in the contract's columns, shuffled as a
    department's export would be (None when there are none)."""
    columns = [c.name for c in SOURCES[name].columns]
    frames = [t for t in frames if t is not None and len(t)]
    if not frames:
        return None
    table = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True)
    return table.sample(frac=1, random_state=int(rng.integers(0, 2**31))).reset_index(drop=True)


def write_landing(rng: np.random.Generator, landing: Path, tables: dict[str, pd.DataFrame],
                  planted: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Every source's files under ``landing/<source>/``; returns the rows written per source."""
    counts = {}
    for name in SOURCES:
        table = source_table(name, [tables.get(name), planted.get(name)], rng)
        if table is not None:
            writers.write_source(rng, landing, name, table)
            counts[name] = len(table)
    (landing / "regions").mkdir(parents=True, exist_ok=True)
    return counts


def write_truth(out: Path, expected: pd.DataFrame, quarantined: pd.DataFrame) -> dict:
    """The ground truth under ``out/ground_truth/``; returns its part of the summary."""
    truth = out / "ground_truth"
    truth.mkdir(parents=True, exist_ok=True)
    expected.to_csv(truth / EXPECTED_FLAGS, index=False, encoding="utf-8")
    quarantined.to_csv(truth / EXPECTED_QUARANTINE, index=False, encoding="utf-8")
    return {"expected_flags": expected["rule_code"].value_counts().sort_index().to_dict(),
            "expected_quarantine": quarantined["source"].value_counts().sort_index().to_dict(),
            "landing": str(out / "landing"), "ground_truth": str(truth / EXPECTED_FLAGS)}
