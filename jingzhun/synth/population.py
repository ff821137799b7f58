"""The background county: every hukou household, the register households among them, and the
ordinary records each department holds about them, all generated column-wise with NumPy.

The background is *clean by construction*: no rule fires on it. Unexited register households
earn at most the income line (so none is ready to exit), every register member is insured for the
year of ``as_of``, every child of compulsory age is enrolled, register heads' houses are safe.
It still holds many exemptions (tricycles, self-built houses, third-class 低保, cadres in
ordinary households), so a rule that ignores an exemption is caught. Planted cases (cases.py)
are added beside it, each with the flags it must raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from faker.providers.person.zh_CN import Provider as ZhNames

from jingzhun.normalise import check_digits

COUNTY = "620421"          # 靖远县
OTHER_COUNTIES = ("620422", "620423", "620402")  # neighbours people were registered in
HOUSEHOLDS_PER_VILLAGE = 300
VILLAGES_PER_TOWNSHIP = 12
REGISTER_SHARE = 0.25
BACKGROUND_SEQ_LIMIT = 800  # background sequence codes stay below; planted people use 800-999

SURNAMES = np.array(list(ZhNames.last_names.keys()))
SURNAME_P = np.array(list(ZhNames.last_names.values()), dtype=float) / sum(ZhNames.last_names.values())
GIVEN = np.array(ZhNames.first_names)


@dataclass
class World:
    """Clean canonical tables of one synthetic county (one DataFrame per register)."""

    tables: dict[str, pd.DataFrame]
    expected: pd.DataFrame


TOWNSHIP_NAMES = ("乌兰镇", "东湾镇", "北湾镇", "糜滩镇", "平堡镇", "东升镇", "北滩镇", "五合镇", "刘川镇", "高湾镇",
                  "若笠乡", "石门乡", "双龙镇", "三滩镇", "兴隆乡", "永新乡", "靖安乡", "大芦镇")
VILLAGE_WORDS = ("红柳", "新庄", "杨湾", "沙河", "金峡", "三合", "双井", "黄崖", "碾湾", "李沟", "大坪", "吴庄",
                 "马场", "羊胡", "东滩", "西川", "南塬", "北梁", "石板", "水泉", "窑洞", "王岔", "高庄", "柳树")


def region_names(villages: np.ndarray) -> pd.DataFrame:
    """The regions reference a county sends with its registers: township and village names by code."""
    codes = pd.Series(sorted(set(villages)), dtype="str")
    townships = codes.str[:9].drop_duplicates()
    township_names = [TOWNSHIP_NAMES[i % len(TOWNSHIP_NAMES)] + ("" if i < len(TOWNSHIP_NAMES) else str(i))
                      for i in range(len(townships))]
    village_names = [VILLAGE_WORDS[i % len(VILLAGE_WORDS)] + ("村" if i < len(VILLAGE_WORDS) else f"{i}村")
                     for i in range(len(codes))]
    return pd.DataFrame({"区划代码": pd.concat([townships + "000", codes]).tolist(),
                         "名称": township_names + village_names})


def village_codes(n_households: int, county: str = COUNTY) -> np.ndarray:
    """12-digit village codes of a county of ``n_households`` (township codes 100–999: at most 900 townships)."""
    n_villages = max(3, -(-n_households // HOUSEHOLDS_PER_VILLAGE))
    v = np.arange(n_villages)
    township = v // VILLAGES_PER_TOWNSHIP + 100
    if township[-1] > 999:
        raise ValueError(f"{n_households} households need more than 900 townships in one county: "
                         f"generate a province (--counties) instead")
    village = v % VILLAGES_PER_TOWNSHIP + 201
    return np.array([f"{county}{t:03d}{w:03d}" for t, w in zip(township, village)])


def random_names(rng: np.random.Generator, surnames: np.ndarray) -> np.ndarray:
    n = len(surnames)
    first = rng.choice(GIVEN, n)
    second = np.where(rng.random(n) < 0.7, rng.choice(GIVEN, n), "")
    return np.char.add(np.char.add(surnames.astype(str), first), second)


def make_ids(rng: np.random.Generator, birth: pd.Series, male: np.ndarray, seq_base: int, seq_span: int,
             county: str = COUNTY, born_elsewhere: tuple[str, ...] = OTHER_COUNTIES) -> pd.Series:
    """Valid 18-digit numbers, unique: the sequence code counts within (address, birth date, sex); a tenth of
    the people carry the code of a county they were registered in before (``born_elsewhere``)."""
    n = len(birth)
    addr = np.where(rng.random(n) < 0.9, county, rng.choice(born_elsewhere, n))
    ymd = pd.Series(birth).dt.strftime("%Y%m%d").to_numpy()
    frame = pd.DataFrame({"addr": addr, "ymd": ymd, "male": male})
    count = frame.groupby(["addr", "ymd", "male"]).cumcount().to_numpy()
    seq = seq_base + (count * 2 + male.astype(int)) % seq_span
    if (count * 2 + 1 >= seq_span).any():
        raise ValueError("too many people share one birth date for unique identity numbers")
    body = pd.Series(addr, dtype="str") + pd.Series(ymd, dtype="str") + pd.Series([f"{s:03d}" for s in seq], dtype="str")
    return body + check_digits(body)


def births_at_age(rng: np.random.Generator, as_of: date, ages: np.ndarray) -> pd.Series:
    """Birth dates giving exactly ``ages`` completed years at ``as_of`` (never on the boundary day)."""
    end = pd.Timestamp(as_of)
    days_back = rng.integers(1, 364, len(ages))
    born = [end - pd.DateOffset(years=int(a)) for a in np.unique(ages)]
    anchor = pd.Series(dict(zip(np.unique(ages), born)))
    return pd.Series(anchor.loc[ages].to_numpy()) - pd.to_timedelta(days_back, unit="D")


def background(rng: np.random.Generator, n_households: int, as_of: date, county: str = COUNTY,
               born_elsewhere: tuple[str, ...] = OTHER_COUNTIES) -> dict[str, pd.DataFrame]:
    villages = village_codes(n_households, county)
    hh = pd.DataFrame({
        "hh": np.arange(n_households),
        "village_code": rng.choice(villages, n_households),
        "size": rng.choice([1, 2, 3, 4, 5, 6], n_households, p=[0.08, 0.2, 0.27, 0.25, 0.14, 0.06]),
        "head_age": rng.integers(28, 78, n_households),
        "surname": rng.choice(SURNAMES, n_households, p=SURNAME_P),
    })
    hh["hukou_household_id"] = [f"{county}{i:09d}" for i in hh["hh"]]
    people = hh.loc[hh.index.repeat(hh["size"])].reset_index(drop=True)
    pos = people.groupby("hh").cumcount().to_numpy()
    head_age = people["head_age"].to_numpy()
    child_age = np.maximum(0, head_age - rng.integers(20, 36, len(people)))
    age = np.select([pos == 0, pos == 1], [head_age, np.clip(head_age + rng.integers(-5, 6, len(people)), 20, 90)], child_age)
    male = np.select([pos == 0, pos == 1], [rng.random(len(people)) < 0.85, np.zeros(len(people), bool)], rng.random(len(people)) < 0.5)
    relation = np.select([pos == 0, pos == 1], ["户主", "配偶"], np.where(male, "之子", "之女"))
    surname = np.where(pos == 1, rng.choice(SURNAMES, len(people), p=SURNAME_P), people["surname"].to_numpy())
    birth = births_at_age(rng, as_of, age)
    ids = make_ids(rng, birth, male, 0, BACKGROUND_SEQ_LIMIT, county, born_elsewhere)
    persons = pd.DataFrame({
        "id_number": ids, "name": random_names(rng, surname), "sex": np.where(male, "男", "女"),
        "birth_date": birth.dt.date, "hukou_household_id": people["hukou_household_id"], "relation": relation,
        "address_code": people["village_code"], "person_status": "正常", "status_date": None,
        "hh": people["hh"], "age": age,
    })
    return {"hh": hh, "persons": persons}


def register_households(rng: np.random.Generator, hh: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Register attributes for a share of the hukou households (clean: no rule fires on them)."""
    reg = hh.sample(frac=REGISTER_SHARE, random_state=int(rng.integers(0, 2**31))).sort_values("hh").copy()
    n = len(reg)
    status = rng.choice(["已脱贫", "标注脱贫", "未脱贫", "返贫"], n, p=[0.5, 0.1, 0.35, 0.05])
    exited = np.isin(status, ["已脱贫", "标注脱贫"])
    identified = rng.integers(2014, 2020, n)
    reg["household_id"] = [f"P{c}{i:05d}" for c, i in zip(reg["village_code"], reg["hh"])]
    reg["status"] = status
    reg["identified_year"] = identified
    reg["exit_year"] = pd.array(np.minimum(identified + rng.integers(1, 4, n), 2020), dtype="Int64")
    reg.loc[~exited, "exit_year"] = pd.NA
    # unexited households earn at most the line (no EXIT_ELIGIBLE); exited ones comfortably more
    reg["income_per_capita"] = np.where(exited, rng.integers(5000, 15000, n), rng.integers(1800, 3900, n)).astype(float)
    reg["household_type"] = rng.choice(["一般贫困户", "低保贫困户", "特困供养贫困户"], n, p=[0.7, 0.25, 0.05])
    return reg
