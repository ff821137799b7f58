"""A province on Spark: a real nightly run with ``engine="spark"`` (Spark in local mode) into PostgreSQL, against
the in-process engine, on a three-county province with cross-county cases."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import AS_OF
from sqlalchemy import select

from jingzhun import warehouse
from jingzhun.nightly import nightly
from jingzhun.synth.province import CROSS_CASES

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.postgres]

KEY = ["rule_code", "household_id", "hukou_household_id", "id_number"]


def published_flags(url: str) -> pd.DataFrame:
    with warehouse.connect(url).connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    return flags.sort_values("flag_key").reset_index(drop=True)


def test_spark_and_the_in_process_engine_publish_the_same_flags_and_evidence(province, tmp_path, postgres_url):
    landing = tmp_path / "landing"
    shutil.copytree(province["landing"], landing)
    on_spark = nightly(landing=str(landing), warehouse_url=postgres_url, as_of=AS_OF, today=AS_OF, work_dir=str(tmp_path / "spark"),
                       engine="spark")
    in_process = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    nightly(landing=str(landing), warehouse_url=in_process, as_of=AS_OF, today=AS_OF, work_dir=str(tmp_path / "duckdb"))
    assert on_spark["status"] == "published" and not on_spark["not_evaluated"]

    # the quality gate ran on Spark: the same checks, counts, examples and quarantined rows, source by source
    gated = 0
    for source in on_spark["sources"]:
        spark_results, duck_results = (
            pd.read_parquet(run_folder(tmp_path / e) / "validated" / f"{source}.results.parquet") for e in ("spark", "duckdb"))
        pd.testing.assert_frame_equal(spark_results, duck_results)
        spark_q, duck_q = (pd.read_parquet(run_folder(tmp_path / e) / "staged" / f"{source}.quarantine.parquet")
                           for e in ("spark", "duckdb"))
        pd.testing.assert_frame_equal(spark_q, duck_q)
        gated += int(spark_q["reason"].str.contains("日期不合理|重复记录").sum())
    assert gated > 0  # rows the gate itself quarantined (not only staging)
    validations = run_folder(tmp_path / "spark") / "gx" / "uncommitted" / "validations"
    stored = [json.loads(p.read_text(encoding="utf-8")) for p in validations.rglob("*.json")]
    assert len(stored) == len(on_spark["sources"])
    assert {v["meta"]["active_batch_definition"]["datasource_name"] for v in stored} == {"jingzhun_spark"}
    shown = "".join(p.read_text(encoding="utf-8") for p in validations.rglob("*.json")) + "".join(
        pd.read_parquet(p)["examples"].str.cat() for p in run_folder(tmp_path / "spark").glob("validated/*.results.parquet"))
    assert shown and re.search(r"[1-9]\d{16}[\dXx]", shown) is None  # no identity number shown

    spark, duck = published_flags(postgres_url), published_flags(in_process)
    same = ["flag_key", *KEY, "direction", "village_code", "evidence_hash", "evidence_text", "status"]
    pd.testing.assert_frame_equal(spark[same], duck[same], check_dtype=False)
    evidence = pd.read_parquet(on_spark["flags_path"]).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(evidence, pd.read_parquet(nightly_flags(tmp_path / "duckdb")).sort_values(KEY)
                                  .reset_index(drop=True))

    truth = pd.read_csv(province["out"] / "ground_truth" / "expected_flags.csv", dtype=str).fillna("")
    got = spark[KEY].fillna("")
    both = got.merge(truth[KEY + ["case"]], how="outer", indicator=True)
    assert both["_merge"].eq("both").all(), both[both["_merge"] != "both"]
    cross = both[both["case"].isin(list(CROSS_CASES))]
    assert set(cross["case"]) == set(CROSS_CASES) - {"hukou_held_in_another_county"}  # that one raises nothing
    assert len(cross) >= 3 * 4 * 3  # three counties, three repeats, four cases raising flags (one raises two)


def run_folder(work: Path) -> Path:
    """The folder of the one run in ``work``."""
    return next((work / "runs").iterdir())


def nightly_flags(work: Path) -> str:
    """The flags (with their evidence) the one run in ``work`` raised."""
    return str(run_folder(work) / "flags" / "flags.parquet")
