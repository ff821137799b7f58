"""The synthetic province: real counties of one province, identity numbers unique across them, each county's
files beside the province-wide ones, and the cross-county cases planted with their ground truth."""

from __future__ import annotations

import pandas as pd
from helpers import AS_OF

from jingzhun.normalise import address_codes
from jingzhun.synth.province import CROSS_CASES, PROVINCE_WIDE, counties_of, generate_province


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
