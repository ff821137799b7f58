import hashlib
from pathlib import Path

import pandas as pd

from jingzhun.contract import SOURCES
from jingzhun.normalise import normalise_ids
from jingzhun.policy import Policy
from jingzhun.readers import read_source
from jingzhun.synth import EXPECTED_FLAGS, EXPECTED_QUARANTINE, generate
from jingzhun.staging import STAGING

from helpers import AS_OF

RULES = ["RM_CAR", "RV_CAR_ACQUIRED", "RM_PROPERTY", "RM_DECEASED", "RM_MEMBER_DECEASED", "ADD_DIBAO", "ADD_TEKUN",
         "RV_ADD_CADRE", "REVERT_DROPOUT", "REVERT_HOUSING", "REVERT_ILLNESS", "REFER_EDUCATION", "REFER_HOUSING",
         "REFER_HEALTH", "REFER_INSURANCE", "RV_UNENROLLED", "EXIT_ELIGIBLE", "DQ_INVALID_ID", "DQ_NOT_IN_HUKOU",
         "DQ_NAME_MISMATCH", "DQ_MULTI_HOUSEHOLD"]


def test_every_rule_is_planted_several_times(county):
    expected = pd.read_csv(county["out"] / "ground_truth" / EXPECTED_FLAGS, dtype=str)
    counts = expected["rule_code"].value_counts()
    assert set(RULES) <= set(counts.index)
    assert counts.min() >= 3
    household_rules = expected[~expected["rule_code"].isin(
        ["RM_MEMBER_DECEASED", "REFER_INSURANCE", "RV_UNENROLLED", "DQ_INVALID_ID", "DQ_NOT_IN_HUKOU",
         "DQ_NAME_MISMATCH", "DQ_MULTI_HOUSEHOLD"])]
    assert household_rules["id_number"].isna().all()


def test_every_source_is_written_in_its_dirty_format(county):
    landing = county["landing"]
    assert {p.name for p in landing.iterdir()} == set(SOURCES) | {"regions"}     # the registers and the names of places
    assert (landing / "poverty_register" / "poverty_register_01.xlsx").exists()
    hukou = (landing / "hukou" / "hukou_01.csv").read_bytes()
    hukou.decode("gb18030")
    assert not hukou.startswith(b"\xef\xbb\xbf")
    assert (landing / "vehicles" / "vehicles_01.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_hukou_numbers_are_valid_and_unique_after_normalisation(county):
    data, _, records = read_source(county["landing"], SOURCES["hukou"])
    assert all(not r.error for r in records)
    ids = normalise_ids(data["id_number"])
    assert ids["id_valid"].all()
    assert ids["id_number"].is_unique
    assert ids["id_legacy15"].any()  # some arrive in the 15-digit form
    assert data["id_number"].str.contains("'").any() and data["id_number"].str.contains("x").any()


def test_planted_unusable_rows_are_quarantined(county):
    planted = pd.read_csv(county["out"] / "ground_truth" / EXPECTED_QUARANTINE, dtype=str)
    assert set(planted["source"]) == {"vehicles", "medical_insurance"}
    for source, rows in planted.groupby("source"):
        data, _, _ = read_source(county["landing"], SOURCES[source])
        staged = STAGING[source](data, Policy())
        raw = staged.quarantine["raw"]
        for value in rows["value"]:
            assert raw.str.contains(value, regex=False).any(), (source, value)
        assert len(staged.quarantine) == len(rows)


def test_same_seed_same_files(tmp_path):
    def digests(out: Path) -> dict:
        generate(out, households=200, seed=11, as_of=AS_OF)
        return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*.csv"))}
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
