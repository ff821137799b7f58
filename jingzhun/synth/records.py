"""Ordinary department records about the background county, generated column-wise.

Nothing here raises a flag (see population.py): every record either concerns a
person not on the register or is one of the policy's exemptions.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

CARS = np.array(["K33", "小型轿车", "K31", "小型普通客车", "H31", "轻型普通货车", "K43"])
EXEMPT_VEHICLES = np.array(["N11", "三轮汽车", "M21", "二轮摩托车", "T22", "手扶拖拉机", "H51", "低速货车", "M22"])
EXEMPT_NATURES = np.array(["自建房", "自建房", "自建房", "安置房", "房改房", "经济适用住房", "公租房", "廉租房"])


def _pick(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> pd.DataFrame:
    return frame[rng.random(len(frame)) < share]


def _days_before(rng: np.random.Generator, as_of: date, n: int, low: int, high: int) -> pd.Series:
    return pd.Timestamp(as_of) - pd.to_timedelta(rng.integers(low, high, n), unit="D")


def plates(rng: np.random.Generator, n: int) -> np.ndarray:
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
    if n == 0:  # numpy's zfill takes the widest of no numbers: a small county may have no car gone
        return np.array([], dtype=str)
    return np.char.add(np.char.add("甘D", rng.choice(letters, n)), np.char.zfill(rng.integers(0, 99999, n).astype(str), 5))


def background_records(rng: np.random.Generator, persons: pd.DataFrame, reg: pd.DataFrame,
                       as_of: date) -> dict[str, pd.DataFrame]:
    on_register = persons["hh"].isin(reg["hh"])
    members, others = persons[on_register], persons[~on_register]
    adults_in, adults_out = members[members["age"] >= 18], others[others["age"] >= 18]
    heads_in = members[members["relation"] == "户主"]
    heads_out = others[others["relation"] == "户主"]
    year = as_of.year
    out: dict[str, pd.DataFrame] = {}

    insured = pd.concat([members, _pick(rng, others, 0.6)])
    last_year = _pick(rng, insured, 0.5)
    out["medical_insurance"] = pd.concat([
        pd.DataFrame({"id_number": insured["id_number"], "name": insured["name"], "insured_year": year,
                      "insured_status": "参保", "scheme": "城乡居民基本医疗保险"}),
        pd.DataFrame({"id_number": last_year["id_number"], "name": last_year["name"], "insured_year": year - 1,
                      "insured_status": "参保", "scheme": "城乡居民基本医疗保险"}),
    ], ignore_index=True)

    pupils = persons[persons["age"].between(3, 18)]
    stage = np.select([pupils["age"] < 6, pupils["age"] < 12, pupils["age"] < 15], ["学前", "小学", "初中"], "高中")
    enrolled = pupils[(pupils["age"].between(6, 15)) | (rng.random(len(pupils)) < 0.6)]
    stage_enrolled = pd.Series(stage, index=pupils.index).loc[enrolled.index]
    history = _pick(rng, enrolled[enrolled["age"].between(8, 15)], 0.08)  # an old dropout, back at school since
    out["students"] = pd.concat([
        pd.DataFrame({"id_number": enrolled["id_number"], "name": enrolled["name"], "school": "靖远县第一小学",
                      "stage": stage_enrolled, "grade": "", "enrollment_status": "在读", "dropout_reason": "",
                      "status_date": _days_before(rng, as_of, len(enrolled), 20, 300).to_numpy()}),
        pd.DataFrame({"id_number": history["id_number"], "name": history["name"], "school": "靖远县第二中学",
                      "stage": "小学", "grade": "", "enrollment_status": "辍学", "dropout_reason": "厌学",
                      "status_date": _days_before(rng, as_of, len(history), 400, 700).to_numpy()}),
    ], ignore_index=True)

    safe = _pick(rng, heads_in, 0.7)
    repaired = _pick(rng, safe, 0.15)  # an old C appraisal, superseded by a later B
    unsafe_out = _pick(rng, heads_out, 0.15)
    out["housing_safety"] = pd.concat([
        pd.DataFrame({"head_id_number": safe["id_number"], "head_name": safe["name"], "grade": rng.choice(["A", "B"], len(safe)),
                      "appraised": _days_before(rng, as_of, len(safe), 200, 1500).to_numpy(), "renovation": "", "renovated": pd.NaT}),
        pd.DataFrame({"head_id_number": repaired["id_number"], "head_name": repaired["name"], "grade": "C",
                      "appraised": _days_before(rng, as_of, len(repaired), 1600, 2500).to_numpy(), "renovation": "未改造", "renovated": pd.NaT}),
        pd.DataFrame({"head_id_number": unsafe_out["id_number"], "head_name": unsafe_out["name"],
                      "grade": rng.choice(["A", "B", "C", "D"], len(unsafe_out)),
                      "appraised": _days_before(rng, as_of, len(unsafe_out), 100, 2000).to_numpy(), "renovation": "未改造", "renovated": pd.NaT}),
    ], ignore_index=True)

    cars_out = _pick(rng, adults_out, 0.12)
    exempt_in = _pick(rng, adults_in, 0.06)
    gone_in = _pick(rng, adults_in, 0.02)
    out["vehicles"] = pd.concat([
        _vehicles(rng, cars_out, rng.choice(CARS, len(cars_out)), "正常", as_of),
        _vehicles(rng, exempt_in, rng.choice(EXEMPT_VEHICLES, len(exempt_in)), "正常", as_of),
        _vehicles(rng, gone_in, rng.choice(CARS, len(gone_in)), rng.choice(["注销", "报废", "转出"], len(gone_in)), as_of),
    ], ignore_index=True)

    flats_out = _pick(rng, adults_out, 0.08)
    own_in = _pick(rng, adults_in, 0.2)
    sold_in = _pick(rng, adults_in, 0.01)
    out["real_estate"] = pd.concat([
        _estate(rng, flats_out, "商品房", "住宅", "现势", as_of),
        _estate(rng, own_in, rng.choice(EXEMPT_NATURES, len(own_in)), "住宅", "现势", as_of),
        _estate(rng, sold_in, "商品房", "住宅", rng.choice(["注销", "历史"], len(sold_in)), as_of),
    ], ignore_index=True)

    out["social_assistance"] = _background_assistance(rng, persons, reg, as_of)

    sick_in = _pick(rng, members, 0.03)
    cured_in = _pick(rng, members, 0.01)
    sick_out = _pick(rng, others, 0.02)
    out["illness"] = pd.concat([
        # a member may have both records: at most 1,500 a person and six members keep every household's
        # yearly cost under large_medical_expense
        _illness(rng, sick_in, "慢性病", "治疗中", rng.integers(200, 800, len(sick_in)), as_of),
        _illness(rng, cured_in, "大病", "已治愈", rng.integers(100, 700, len(cured_in)), as_of),
        _illness(rng, sick_out, "大病", "治疗中", rng.integers(1000, 30000, len(sick_out)), as_of),
    ], ignore_index=True)
    return out


def _vehicles(rng, owners: pd.DataFrame, types, status, as_of: date) -> pd.DataFrame:
    return pd.DataFrame({"owner_id_number": owners["id_number"], "owner_name": owners["name"], "plate": plates(rng, len(owners)),
                         "vehicle_type": types, "usage": "非营运",
                         "first_registered": _days_before(rng, as_of, len(owners), 100, 5000).to_numpy(),
                         "vehicle_status": status})


def _estate(rng, owners: pd.DataFrame, nature, usage, status, as_of: date) -> pd.DataFrame:
    return pd.DataFrame({"owner_id_number": owners["id_number"], "owner_name": owners["name"],
                         "unit_id": [f"620421{i:012d}" for i in rng.integers(0, 10**12, len(owners))],
                         "location": "靖远县乌兰镇", "location_code": owners["address_code"], "usage": usage, "nature": nature,
                         "area_m2": rng.integers(40, 160, len(owners)),
                         "registered": _days_before(rng, as_of, len(owners), 100, 5000).to_numpy(), "right_status": status})


def _illness(rng, people: pd.DataFrame, category, status, cost, as_of: date) -> pd.DataFrame:
    return pd.DataFrame({"id_number": people["id_number"], "name": people["name"], "category": category,
                         "disease": np.where(category == "大病", "恶性肿瘤", "高血压"),
                         "diagnosed": _days_before(rng, as_of, len(people), 300, 3000).to_numpy(),
                         "treatment_status": status, "year": as_of.year - 1, "out_of_pocket": cost})


def _assistance(people: pd.DataFrame, household_ids, kind, klass, labor, income, status, start) -> pd.DataFrame:
    return pd.DataFrame({"id_number": people["id_number"], "name": people["name"], "assistance_household_id": household_ids,
                         "assistance_type": kind, "dibao_class": klass, "labor_capacity": labor,
                         "income_per_capita": income, "start_date": start, "end_date": pd.NaT, "assistance_status": status})


def _background_assistance(rng, persons: pd.DataFrame, reg: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """低保 on the register (never an addition), and outside it only households the rules exempt."""
    start = pd.Timestamp(as_of) - pd.Timedelta(days=700)
    dibao_hh = reg.loc[reg["household_type"] == "低保贫困户", "hh"]
    tekun_hh = reg.loc[reg["household_type"] == "特困供养贫困户", "hh"]
    in_dibao = persons[persons["hh"].isin(dibao_hh)]
    in_tekun = persons[persons["hh"].isin(tekun_hh) & (persons["relation"] == "户主")]
    outside = persons[~persons["hh"].isin(reg["hh"])]
    hh_out = outside["hh"].unique()
    third = outside[outside["hh"].isin(rng.choice(hh_out, len(hh_out) // 30, replace=False))]
    able = outside[outside["hh"].isin(rng.choice(hh_out, len(hh_out) // 100, replace=False))]
    able = able[~able["hh"].isin(third["hh"])]
    frames = [
        _assistance(in_dibao, "M" + in_dibao["hh"].astype(str), "低保", "一类", "完全丧失劳动能力", 2600.0, "在保", start),
        _assistance(in_tekun, "T" + in_tekun["hh"].astype(str), "特困供养", "", "完全丧失劳动能力", 1800.0, "在保", start),
        _assistance(third, "M" + third["hh"].astype(str), "低保", rng.choice(["三类", "四类"], len(third)),
                    "部分丧失劳动能力", 3000.0, "在保", start),
        # first class, but someone can work: an ordinary household for the register
        _assistance(able, "M" + able["hh"].astype(str), "低保", "一类",
                    np.where(able["relation"].to_numpy() == "户主", "有劳动能力", "完全丧失劳动能力"), 2500.0, "在保", start),
    ]
    return pd.concat(frames, ignore_index=True)


def background_cadres(rng: np.random.Generator, persons: pd.DataFrame, reg: pd.DataFrame) -> pd.DataFrame:
    """Six committee members per village, from households that receive nothing."""
    pool = persons[(persons["age"].between(25, 60)) & ~persons["hh"].isin(reg["hh"])]
    picked = pool.groupby("address_code", group_keys=False).head(6)
    positions = np.resize(np.array(["村党支部书记", "村委会主任", "副书记", "副主任", "文书", "委员"]), len(picked))
    return pd.DataFrame({"id_number": picked["id_number"], "name": picked["name"], "position": positions,
                         "term_status": np.where(rng.random(len(picked)) < 0.85, "在任", "离任"),
                         "village_code": picked["address_code"]})


def background_deaths(rng: np.random.Generator, persons: pd.DataFrame, reg: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, pd.Index]:
    """Elderly people outside the register who died: hukou marks them, civil affairs records them."""
    old = persons[(persons["age"] >= 70) & ~persons["hh"].isin(reg["hh"])]
    dead = _pick(rng, old, 0.05)
    dates = _days_before(rng, as_of, len(dead), 30, 900)
    return pd.DataFrame({"id_number": dead["id_number"], "name": dead["name"], "death_date": dates.to_numpy(),
                         "record_source": rng.choice(["火化", "医学死亡证明", "公安注销"], len(dead))}), dead.index
