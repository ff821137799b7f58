"""The synthetic province: real counties of one province, identity numbers unique across them, each county's
files beside the province-wide ones, and the cross-county cases planted with their ground truth."""

from __future__ import annotations

import pandas as pd
from helpers import AS_OF

from jingzhun.normalise import address_codes
from jingzhun.synth.province import (
    CROSS_CASES,
    PROVINCE_WIDE,
    counties_of,
    generate_province,
)


def test_counties_are_real_divisions_of_one_province_rural_counties_first():
    counties = counties_of("62")
    codes = [code for code, _ in counties]
    assert len(counties) > 80 and len(set(codes)) == len(codes)
    assert ("620421", "靖远县") in counties and ("620102", "城关区") in counties
    assert all(code.startswith("62") and code in address_codes() and not code.endswith("00") for code in codes)
    first_district = next(i for i, (_, name) in enumerate(counties) if not name.endswith("县"))
    assert all(name.endswith("县") for _, name in counties[:first_district])
    assert "市辖区" not in {name for _, name in counties}


def test_a_province_holds_each_county_and_its_cross_county_cases(tmp_path):
    summary = generate_province(tmp_path, counties=3, households=300, seed=3, as_of=AS_OF)
    counties = summary["counties"]
    assert counties == [code for code, _ in counties_of("62")[:3]]
    landing = tmp_path / "landing"
    for source in ("hukou", "poverty_register", "vehicles", "deaths"):  # sent by each county
        assert {p.name.split("_")[0] for p in (landing / source).iterdir()} == set(counties)
    for source in PROVINCE_WIDE:  # sent once for the province
        assert {p.name.split("_")[0] for p in (landing / source).iterdir()} == {"62"}
    truth = pd.read_csv(tmp_path / "ground_truth" / "expected_flags.csv", dtype=str).fillna("")
    cross = truth[truth["case"].isin(list(CROSS_CASES))]
    assert set(cross["rule_code"]) == {"RM_CAR", "RM_PROPERTY", "RM_MEMBER_DECEASED", "DQ_MULTI_HOUSEHOLD"}
    assert set(cross["village_code"].str[:6]) == set(counties)  # every county has a neighbour's case
    multi = cross[cross["rule_code"] == "DQ_MULTI_HOUSEHOLD"]
    assert (multi.groupby("id_number")["village_code"].agg(lambda v: v.str[:6].nunique()) == 2).all()


def test_identity_numbers_stay_unique_across_counties(tmp_path):
    from jingzhun.contract import SOURCES
    from jingzhun.policy import Policy
    from jingzhun.readers import read_source
    from jingzhun.staging import STAGING

    generate_province(tmp_path, counties=4, households=600, seed=5, as_of=AS_OF)
    hukou = STAGING["hukou"](read_source(tmp_path / "landing", SOURCES["hukou"])[0], Policy()).rows
    valid = hukou[hukou["id_number_valid"]]
    assert len(valid) > 4 * 600 and not valid["id_number"].duplicated().any()


def test_a_county_matched_alone_misses_what_its_neighbours_hold(province, tmp_path):
    """The cross-county cases are what only a province-wide match finds: with the other counties' files taken
    away, the cars, flats and deaths they hold raise nothing and the moved hukou reads as missing."""
    import shutil

    from jingzhun.contract import SOURCES
    from jingzhun.engine import flags
    from jingzhun.policy import Policy
    from jingzhun.readers import read_source
    from jingzhun.staging import STAGING

    county = province["summary"]["counties"][0]
    landing = tmp_path / "landing"
    shutil.copytree(province["landing"], landing)
    for path in landing.glob("*/*_*"):
        if path.parent.name != "regions" and path.name.split("_")[0] not in (county, "62"):
            path.unlink()
    frames = {name: STAGING[name](read_source(landing, source)[0], Policy()).rows for name, source in SOURCES.items()}
    raised, _ = flags(frames, Policy(), pd.Timestamp(AS_OF))
    truth = pd.read_csv(province["out"] / "ground_truth" / "expected_flags.csv", dtype=str).fillna("")
    KEY = ["rule_code", "household_id", "hukou_household_id", "id_number"]
    mine = truth[truth["village_code"].str.startswith(county) & truth["case"].isin(list(CROSS_CASES))]
    assert len(mine) >= 3 * 3
    missed = mine[KEY].merge(raised[KEY], how="left", indicator=True)
    assert missed["_merge"].eq("left_only").all()  # not one of them is found without the neighbours' files
    not_in_hukou = raised[raised["rule_code"].eq("DQ_NOT_IN_HUKOU") & raised["household_id"].str[1:7].eq(county)]
    assert len(not_in_hukou) > len(truth[truth["rule_code"].eq("DQ_NOT_IN_HUKOU") &
                                         truth["village_code"].str.startswith(county)])
