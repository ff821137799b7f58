"""Intermediate: the register's members matched to what other departments know of them.

Joins on the normalised identity number only; a register row whose number is
invalid is never matched (it raises DQ_INVALID_ID and nothing else).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jingzhun.normalise import ages_at
from jingzhun.policy import Policy

MEMBER_COLUMNS = ["household_id", "id_number", "id_number_valid", "name", "name_norm", "relation", "village_code",
                  "status", "unexited", "income_per_capita", "identified_year", "safe_water", "electricity",
                  "_file", "_row"]


def member_of(values: pd.Series, pool) -> pd.Series:
    """``values.isin(pool)`` computed by pyarrow: pandas' isin on Arrow strings converts the pool value by value."""
    pool_array = pa.array(pd.Series(pool, dtype="str").dropna().unique(), type=pa.large_string())
    found = pc.is_in(pa.array(values.astype("str"), type=pa.large_string()), value_set=pool_array)
    return pd.Series(pc.fill_null(found, False).to_numpy(zero_copy_only=False), index=values.index)


def _optional(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame with every listed column present (missing optional columns as empty)."""
    return frame.reindex(columns=list(dict.fromkeys([*frame.columns, *columns])))


def int_deaths_on_or_before(deaths: pd.DataFrame | None, hukou: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per person dead on or before ``as_of``, with the first record that shows it."""
    parts = []
    if deaths is not None:
        d = deaths[deaths["death_date"].le(as_of)]
        parts.append(pd.DataFrame({"id_number": d["id_number"], "death_source": "deaths", "death_file": d["_file"],
                                   "death_row": d["_row"], "death_date": d["death_date"]}))
    if hukou is not None:
        h = _optional(hukou, ["status_date"])
        changed = pd.to_datetime(h["status_date"])
        h = h[h["person_status"].eq("死亡") & (changed.isna() | changed.le(as_of))]
        parts.append(pd.DataFrame({"id_number": h["id_number"], "death_source": "hukou", "death_file": h["_file"],
                                   "death_row": h["_row"], "death_date": h["status_date"]}))
    if not parts:
        return pd.DataFrame(columns=["id_number", "death_source", "death_file", "death_row", "death_date"])
    return pd.concat(parts, ignore_index=True).drop_duplicates("id_number")


def int_register_members(register: pd.DataFrame, hukou: pd.DataFrame | None, deaths: pd.DataFrame | None,
                         as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per register row: the member, its hukou record, whether it is dead at ``as_of``, its age."""
    m = _optional(register, MEMBER_COLUMNS)[MEMBER_COLUMNS].copy()
    m["id_number_valid"] = m["id_number_valid"].astype(bool)
    valid = m["id_number_valid"]
    if hukou is not None:
        h = hukou.drop_duplicates("id_number")[["id_number", "name", "name_norm", "hukou_household_id", "address_code",
                                                "_file", "_row"]]
        h = h.rename(columns={"name": "hukou_name", "name_norm": "hukou_name_norm", "_file": "hukou_file",
                              "_row": "hukou_row"})
        m = m.merge(h, on="id_number", how="left")
        m["in_hukou"] = m["hukou_household_id"].notna()
    else:
        m = m.assign(hukou_name=None, hukou_name_norm=None, hukou_household_id=None, address_code=None,
                     hukou_file=None, hukou_row=None, in_hukou=False)
    m = m.merge(int_deaths_on_or_before(deaths, hukou, as_of), on="id_number", how="left")
    m["dead"] = m["death_source"].notna() & valid
    m["living"] = valid & ~m["dead"]
    m["age"] = ages_at(m["id_number"].where(valid, ""), as_of)
    return m


def int_register_households(members: pd.DataFrame) -> pd.DataFrame:
    """One row per register household: its attributes, head, hukou household and member counts."""
    heads = members[members["relation"].eq("户主") & members["id_number_valid"]].drop_duplicates("household_id")
    g = members.assign(invalid=~members["id_number_valid"]).groupby("household_id", sort=False)
    hh = g.agg(village_code=("village_code", "first"), status=("status", "first"), unexited=("unexited", "first"),
               income=("income_per_capita", "first"), identified_year=("identified_year", "first"),
               safe_water=("safe_water", "first"), electricity=("electricity", "first"),
               members=("id_number", "size"), living=("living", "sum"), dead=("dead", "sum"),
               invalid_ids=("invalid", "sum"))
    # the hukou household most of its members belong to
    pairs = members.dropna(subset=["hukou_household_id"]).groupby(["household_id", "hukou_household_id"]).size()
    hukou_id = pairs.reset_index(name="n").sort_values(["household_id", "n"], kind="stable") \
        .drop_duplicates("household_id", keep="last").set_index("household_id")["hukou_household_id"]
    hh = hh.join(hukou_id)
    hh = hh.join(heads.set_index("household_id")[["id_number", "name"]].rename(
        columns={"id_number": "head_id_number", "name": "head_name"}))
    return hh.reset_index()


def int_latest_by_person(frame: pd.DataFrame, key: str, date_column: str) -> pd.DataFrame:
    """One row per person: the record with the latest ``date_column`` (a missing date counts as oldest)."""
    ordered = frame.assign(_order=pd.to_datetime(frame[date_column]).fillna(pd.Timestamp.min))
    return ordered.sort_values(["_order", "_row"], kind="stable").drop_duplicates(key, keep="last").drop(columns="_order")


def int_current_assistance(assistance: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per current (在保) assistance record at ``as_of``."""
    a = _optional(assistance, ["start_date", "end_date", "dibao_class", "labor_capacity", "income_per_capita"])
    start, end = pd.to_datetime(a["start_date"]), pd.to_datetime(a["end_date"])
    current = a["assistance_status"].eq("在保") & (end.isna() | end.gt(as_of)) & (start.isna() | start.le(as_of))
    return a[current]


def int_persons_living(hukou: pd.DataFrame, deaths: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per hukou person not dead at ``as_of``, with the hukou household and address."""
    dead = int_deaths_on_or_before(deaths, hukou, as_of)["id_number"]
    h = hukou.drop_duplicates("id_number")
    return h[~member_of(h["id_number"], dead)][["id_number", "name", "hukou_household_id", "address_code", "_file", "_row"]]


def compulsory(age: pd.Series, policy: Policy) -> pd.Series:
    return age.between(policy.compulsory_age_min, policy.compulsory_age_max).fillna(False).astype(bool)
