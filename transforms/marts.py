"""Marts for people: indicators per village."""

from __future__ import annotations

import pandas as pd

from transforms.intermediate import int_deaths_on_or_before, member_of

DIRECTIONS = ("remove", "revert", "exit", "refer", "review")


def mart_village_indicators(register: pd.DataFrame, hukou: pd.DataFrame, deaths: pd.DataFrame | None,
                            raised: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per village: register households and persons, unexited ones, the living hukou population,
    poverty incidence (unexited persons / hukou population) and the share of register households with a
    flag of each direction; additions counted as families."""
    reg = register[register["id_number_valid"].astype(bool)]
    by_village = reg.groupby("village_code")
    unexited = reg[reg["unexited"].astype(bool)].groupby("village_code")
    dead = int_deaths_on_or_before(deaths, hukou, as_of)["id_number"]
    population = hukou[hukou["person_status"].eq("正常") & ~member_of(hukou["id_number"], dead)]
    out = pd.DataFrame({
        "register_households": by_village["household_id"].nunique(),
        "register_persons": by_village["id_number"].nunique(),
        "unexited_households": unexited["household_id"].nunique(),
        "unexited_persons": unexited["id_number"].nunique(),
    })
    out["hukou_persons"] = population.groupby("address_code")["id_number"].nunique()
    out = out.fillna(0).astype("int64")
    out["poverty_incidence"] = (out["unexited_persons"] / out["hukou_persons"].where(out["hukou_persons"] > 0)).round(4)
    on_register = raised[raised["household_id"].ne("")]
    for direction in DIRECTIONS:
        households = on_register[on_register["direction"].eq(direction)].groupby("village_code")["household_id"].nunique()
        out[f"share_{direction}"] = (households.reindex(out.index).fillna(0) / out["register_households"]).round(4)
    adds = raised[raised["direction"].eq("add")].groupby("village_code")["hukou_household_id"].nunique()
    out["add_families"] = adds.reindex(out.index).fillna(0).astype("int64")
    out = out.rename_axis("village_code").reset_index()
    out["township_code"] = out["village_code"].str[:9]
    return out
