"""The quality gate on tiny inline registers: each check, its severity, and what it does to the rows — on both of
its engines (pandas in this process; Spark, local mode, for a province)."""

import json
from datetime import date

import pandas as pd
import pytest

from jingzhun.quality.gate import run_gate
from jingzhun.quality.suites import Tonight
from jingzhun.contract import SOURCES
from jingzhun.policy import Policy
from jingzhun.staging import STAGING

from helpers import AS_OF, valid_id

TODAY = date(2026, 11, 23)


def person(n: int, year: int = 1980) -> str:
    return valid_id(f"620421{year}0101{n:03d}")


def raw(source: str, rows: list[dict], file: str = "t.csv") -> pd.DataFrame:
    """Rows of one source as the readers hand them over: canonical names, text cells, file and row number."""
    frame = pd.DataFrame(rows, dtype="str").fillna("")
    for col in SOURCES[source].columns:
        if col.required and col.name not in frame.columns:
            frame[col.name] = ""
    frame.insert(0, "_row", range(2, len(frame) + 2))
    frame.insert(0, "_sheet", "")
    frame.insert(0, "_file", f"{source}/{file}")
    return frame.astype({"_row": "int64"})


@pytest.fixture(params=["pandas", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request):
    """The gate's engine: None (pandas, in this process) or the process's Spark session."""
    if request.param == "pandas":
        return None
    from jingzhun.spark import session

    return session(Policy().spark)


def gate(source: str, rows: list[dict], tmp_path, engine, policy: Policy | None = None, previous: int | None = None,
         age: float = 0.0, run_name: str | None = None):
    policy = policy or Policy()
    staged = STAGING[source](raw(source, rows), policy)
    ages = {f: age for f in staged.checked["_file"].unique()}
    checked = tmp_path / f"{source}.checked.parquet"
    staged.checked.to_parquet(checked, index=False)
    outcome = run_gate(checked, source, ages, policy, Tonight(AS_OF, TODAY, previous), tmp_path, run_name, engine)
    return staged, outcome


def result(outcome, expectation: str, column: str = "") -> dict:
    r = outcome.results
    hit = r[r["expectation"].eq(expectation) & (r["column"].eq(column) if column else True)]
    assert len(hit) == 1, (expectation, column, r[["expectation", "column"]].to_dict("records"))
    return hit.iloc[0].to_dict()


def hukou_row(n: int, **cells) -> dict:
    return {"id_number": person(n), "name": f"人{n}", "hukou_household_id": f"H{n}", "address_code": "620421100201",
            "person_status": "正常", **cells}


def test_a_clean_register_passes_every_check(tmp_path, engine):
    _, outcome = gate("hukou", [hukou_row(n, birth_date="1980-01-01") for n in range(1, 6)], tmp_path, engine, previous=5)
    assert len(outcome.results) > 0          # validated, not a ValueError, outcome.results.to_dict("records")
    assert not outcome.blocked_because and outcome.reasons.empty
    assert {"expect_column_present", "expect_column_values_to_be_valid_resident_id", "expect_codes_in_vocabulary",
            "expect_dates_plausible", "expect_row_count_not_collapsed", "expect_files_fresh",
            "expect_column_values_to_be_first_occurrence"} <= set(outcome.results["expectation"])


def test_a_birth_in_the_future_is_quarantined_with_its_reason_and_the_source_goes_on(tmp_path, engine):
    rows = [hukou_row(1, birth_date="1980-01-01"), hukou_row(2, birth_date="2099-05-01"),
            hukou_row(3, birth_date="1899-12-31")]
    _, outcome = gate("hukou", rows, tmp_path, engine)
    assert outcome.reasons.index.tolist() == [1, 2]
    assert all("日期不合理 (implausible date) in birth_date" in r for r in outcome.reasons)
    check = result(outcome, "expect_dates_plausible", "birth_date")
    assert not check["success"] and check["unexpected_count"] == 2 and check["severity"] == "row"
    assert '"value": "2099-05-01"' in check["examples"] and '"row": 3' in check["examples"]
    assert not outcome.blocked_because


def test_a_date_after_as_of_but_not_after_today_is_plausible(tmp_path, engine):
    _, outcome = gate("hukou", [hukou_row(1, status_date=str(TODAY))], tmp_path, engine)
    assert outcome.reasons.empty


def test_an_appraisal_before_2000_is_implausible_and_a_scheduled_end_date_may_be_future(tmp_path, engine):
    head = person(1)
    _, appraisals = gate("housing_safety", [{"head_id_number": head, "grade": "C", "appraised": "1999-06-01"},
                                            {"head_id_number": head, "grade": "B", "appraised": "2019-06-01"}], tmp_path, engine)
    assert appraisals.reasons.index.tolist() == [0]
    _, assistance = gate("social_assistance", [{"id_number": head, "assistance_household_id": "M1",
                                                "assistance_type": "低保", "assistance_status": "在保",
                                                "end_date": "2099-12-31"}], tmp_path, engine)
    assert assistance.reasons.empty


def test_a_person_listed_twice_keeps_the_first_row_and_quarantines_the_later_one(tmp_path, engine):
    rows = [hukou_row(1), hukou_row(2), {**hukou_row(1), "name": "人1"}]
    _, outcome = gate("hukou", rows, tmp_path, engine)
    assert outcome.reasons.index.tolist() == [2] and "重复记录" in outcome.reasons[2]
    check = result(outcome, "expect_column_values_to_be_first_occurrence", "id_number")
    assert check["unexpected_count"] == 1 and '"row": 4' in check["examples"]


def register_row(n: int, household: str) -> dict:
    return {"household_id": household, "id_number": person(n), "name": f"人{n}", "village_code": "620421100201",
            "status": "未脱贫", "income_per_capita": "3000"}


def test_the_register_is_one_row_per_person_and_household(tmp_path, engine):
    # The same person in two households is DQ_MULTI_HOUSEHOLD, a rule: both rows stay. Twice in one household: a duplicate.
    rows = [register_row(1, "P1"), register_row(1, "P2"), register_row(2, "P3"), register_row(2, "P3")]
    _, outcome = gate("poverty_register", rows, tmp_path, engine)
    assert outcome.reasons.index.tolist() == [3]


def assisted(n: int, valid: bool = True) -> dict:
    pid = person(n) if valid else person(n)[:17] + ("0" if person(n)[17] != "0" else "1")
    return {"id_number": pid, "assistance_household_id": f"M{n}", "assistance_type": "低保", "assistance_status": "在保"}


def test_invalid_identity_numbers_below_the_threshold_are_quarantined_by_staging_and_do_not_block(tmp_path, engine):
    rows = [assisted(n) for n in range(1, 40)] + [assisted(99, valid=False)]  # 1 of 40: 2.5%
    staged, outcome = gate("social_assistance", rows, tmp_path, engine)
    check = result(outcome, "expect_column_values_to_be_valid_resident_id", "id_number")
    assert check["success"] and check["unexpected_count"] == 1 and check["severity"] == "source"
    assert not outcome.blocked_because
    assert staged.quarantine["reason"].str.contains("校验位").sum() == 1


def test_invalid_identity_numbers_above_the_threshold_block_the_source(tmp_path, engine):
    rows = [assisted(n) for n in range(1, 10)] + [assisted(n, valid=False) for n in range(90, 92)]  # 2 of 11: 18%
    _, outcome = gate("social_assistance", rows, tmp_path, engine)
    assert not result(outcome, "expect_column_values_to_be_valid_resident_id", "id_number")["success"]
    assert any("无效身份证号" in b for b in outcome.blocked_because)


def test_the_threshold_is_policy(tmp_path, engine):
    rows = [assisted(n) for n in range(1, 10)] + [assisted(n, valid=False) for n in range(90, 92)]
    _, outcome = gate("social_assistance", rows, tmp_path, engine, policy=Policy(max_invalid_id_share=0.25))
    assert not outcome.blocked_because


@pytest.mark.parametrize(("previous", "blocked"), [(10, True), (6, False), (None, False)])
def test_a_register_that_shrank_by_more_than_the_allowed_share_is_blocked(tmp_path, engine, previous, blocked):
    _, outcome = gate("hukou", [hukou_row(n) for n in range(1, 6)], tmp_path, engine, previous=previous)
    assert bool(outcome.blocked_because) is blocked
    if blocked:
        assert "行数" in outcome.blocked_because[0]


@pytest.mark.parametrize(("age", "blocked"), [(30.0, True), (7.0, False), (-1.0, False)])
def test_a_stale_file_blocks_its_source(tmp_path, engine, age, blocked):
    _, outcome = gate("hukou", [hukou_row(1)], tmp_path, engine, age=age)
    assert bool(outcome.blocked_because) is blocked
    assert result(outcome, "expect_files_fresh", "_file_age_days")["observed_value"] == str(age)


def test_a_code_outside_the_vocabulary_is_reported_with_its_value_and_quarantined_by_staging(tmp_path, engine):
    rows = [hukou_row(1), hukou_row(2, person_status="已迁走"), hukou_row(3, person_status="出国（境）")]
    staged, outcome = gate("hukou", rows, tmp_path, engine)
    check = result(outcome, "expect_codes_in_vocabulary", "person_status")
    assert not check["success"] and check["unexpected_count"] == 1 and "已迁走" in check["examples"]
    assert check["quarantined_by"] == "staging" and not outcome.blocked_because
    assert staged.quarantine["row"].tolist() == [3]


def test_a_required_value_left_empty_is_reported_once(tmp_path, engine):
    staged, outcome = gate("hukou", [hukou_row(1), hukou_row(2, name="  ")], tmp_path, engine)
    check = result(outcome, "expect_required_values_present", "name")
    assert check["unexpected_count"] == 1 and staged.quarantine["row"].tolist() == [3]
    assert json.loads(check["examples"]) == [{"file": "hukou/t.csv", "row": 3, "value": ""}]  # JSON, not NaN
    assert result(outcome, "expect_required_values_present", "person_status")["success"]


def test_an_unknown_vehicle_type_is_reported_by_the_gate_as_staging_quarantined_it(tmp_path, engine):
    rows = [{"owner_id_number": person(1), "plate": "甘D00001", "vehicle_type": "小型轿车", "vehicle_status": "正常"},
            {"owner_id_number": person(2), "plate": "甘D00002", "vehicle_type": "飞行汽车", "vehicle_status": "正常"}]
    staged, outcome = gate("vehicles", rows, tmp_path, engine)
    check = result(outcome, "expect_values_of_their_type", "vehicle_type")
    assert not check["success"] and check["unexpected_count"] == 1 and "飞行汽车" in check["examples"]
    assert staged.quarantine["row"].tolist() == [3] and "vehicle_class" in staged.rows.columns


@pytest.mark.parametrize("run_name", ["20261123T234537Z-3142ad", "20261123T234526Z-504caf"])
def test_any_run_id_names_a_validation(tmp_path, engine, run_name):
    """GX parses a run name as a date when it has no run time: 3142ad once read as an offset of 31 hours."""
    _, outcome = gate("deaths", [{"身份证号": valid_id("62042119500101001"), "死亡日期": "2026-01-02"}], tmp_path, engine,
                      run_name=run_name)
    assert len(outcome.results) > 0          # validated, not a ValueError


def test_no_batch_is_fingerprinted_by_hashing_the_whole_register(tmp_path):
    """Great Expectations would hash every row of each batch for a marker nothing reads (40 % of the gate's time
    on hukou); the stored result keeps its other markers and no fingerprint."""
    assisted_rows = [{"id_number": person(n), "assistance_household_id": f"M{n}", "assistance_type": "低保",
                      "assistance_status": "在保"} for n in range(1, 6)]
    gate("social_assistance", assisted_rows, tmp_path, None, run_name="r1")
    stored = [p.read_text(encoding="utf-8") for p in (tmp_path / "gx").rglob("*.json") if "validations" in p.parts]
    assert stored and all('"batch_markers"' in text for text in stored)
    assert not any("pandas_data_fingerprint" in text for text in stored)


def damaged(raw_rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """A department's file gone wrong in every way the gate checks, each more often than it keeps examples: rows sent
    twice, dates in the future, required cells left empty or filled with full-width spaces, codes and numbers that
    cannot be read, identity numbers with a wrong check digit."""
    rows = raw_rows.astype("str").copy()
    n = len(rows)
    spoil = lambda k: rows.index[(k * 7) % n::max(n // 30, 1)][:25]  # noqa: E731 - 25 rows spread over the file
    for k, col in enumerate(c for c in SOURCES[source].columns if c.name in rows.columns):
        if col.kind == "date":
            rows.loc[spoil(k), col.name] = "2099-01-01"
        elif col.kind == "id":
            rows.loc[spoil(k)[:3], col.name] = rows.loc[spoil(k)[:3], col.name].str[:17] + "X"
        elif col.kind in ("vocab", "money", "year", "code12"):
            rows.loc[spoil(k), col.name] = "无法识别"
        elif col.required:
            rows.loc[spoil(k)[:10], col.name] = "\u3000\u3000"
            rows.loc[spoil(k)[10:], col.name] = ""
    again = rows.iloc[: min(30, n)].assign(_row=lambda r: r["_row"].astype("int64") + 100000)  # sent twice
    return pd.concat([rows, again], ignore_index=True).astype({"_row": "int64"})


@pytest.mark.spark
@pytest.mark.parametrize("source", list(SOURCES))
def test_on_a_county_spark_decides_every_check_and_row_as_pandas_does(county, tmp_path, source):
    """The same suite on the same checked file of a damaged county register: every expectation's counts and observed
    value, the rows quarantined and their reasons, and whether the source is blocked, equal on both engines. The
    examples are the first ones in the file on both, except for repeated persons: Spark finds repeats by person, not
    by row, and its examples are some of the repeated rows, in file order."""
    from jingzhun.readers import read_source
    from jingzhun.spark import session

    raw_rows = damaged(read_source(county["landing"], SOURCES[source])[0], source)
    staged = STAGING[source](raw_rows, Policy())
    checked = tmp_path / f"{source}.checked.parquet"
    staged.checked.to_parquet(checked, index=False)
    ages = {f: 1.0 for f in staged.checked["_file"].unique()}
    tonight = Tonight(AS_OF, TODAY, len(raw_rows))

    on_pandas = run_gate(checked, source, ages, Policy(), tonight, tmp_path / "pandas")
    on_spark = run_gate(checked, source, ages, Policy(), tonight, tmp_path / "spark", spark=session(Policy().spark))

    assert (~on_pandas.results["success"]).sum() >= 2  # the damage was seen
    repeats = on_pandas.results["expectation"].eq("expect_column_values_to_be_first_occurrence")
    pd.testing.assert_frame_equal(on_spark.results[~repeats], on_pandas.results[~repeats])
    pd.testing.assert_frame_equal(on_spark.results[repeats].drop(columns="examples"),
                                  on_pandas.results[repeats].drop(columns="examples"))
    repeated = {(f, int(r)) for f, r in staged.checked.loc[on_pandas.reasons.index, ["_file", "_row"]].to_numpy()}
    for spark_examples, pandas_examples in zip(on_spark.results.loc[repeats, "examples"],
                                               on_pandas.results.loc[repeats, "examples"]):
        shown = [(e["file"], e["row"]) for e in json.loads(spark_examples)]
        assert len(shown) == len(json.loads(pandas_examples)) and set(shown) <= repeated
        assert shown == sorted(shown, key=lambda e: staged.checked.index[
            staged.checked["_file"].eq(e[0]) & staged.checked["_row"].eq(e[1])][0])  # in file order
    pd.testing.assert_series_equal(on_spark.reasons, on_pandas.reasons)
    assert on_spark.blocked_because == on_pandas.blocked_because


def test_a_check_that_raised_keeps_no_message_in_the_stored_results(tmp_path):
    """GX keeps a raising check's message and traceback (one, or one per metric that failed) in the validation
    result the Data Docs show; Spark's messages quote the value that failed (a cast, say). Both are withheld."""
    from jingzhun.quality.gate import RAISED, mask_stored_results

    quoted = f"[CAST_INVALID_INPUT] The value '{person(1)}' of the type \"STRING\" cannot be cast; 人1"
    one = {"raised_exception": True, "exception_message": quoted, "exception_traceback": quoted}
    stored = {"results": [{"expectation_config": {"kwargs": {"column": "birth_date"}}, "exception_info": one},
                          {"expectation_config": {"kwargs": {"column": "name"}},
                           "exception_info": {"('column_values.nonnull.count', 'abc', ())": one}}]}
    path = tmp_path / "validations" / "hukou" / "run" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stored, ensure_ascii=False), encoding="utf-8")

    mask_stored_results(tmp_path / "validations")

    text = path.read_text(encoding="utf-8")
    assert person(1) not in text and "人1" not in text and "CAST_INVALID_INPUT" not in text
    assert [r["exception_info"]["exception_message"] for r in json.loads(text)["results"]] == [RAISED, RAISED]
