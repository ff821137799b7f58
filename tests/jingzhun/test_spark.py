"""The Spark backend runs the models the in-process engine runs and gives the same flags, evidence and village
indicators, on the same staged registers (read as Parquet where they lie, as a run reads them)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import AS_OF, rule_pack

from jingzhun.catalogue import current
from jingzhun.engine import INTERMEDIATE, Engine, backend_for
from jingzhun.policy import Policy, SparkSettings
from jingzhun.spark import MASTER_ENV, master_of

pytestmark = pytest.mark.spark


def test_spark_gives_the_flags_evidence_and_indicators_duckdb_gives(frames, tmp_path):
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    out = {}
    for kind in ("duckdb", "spark"):
        backend = backend_for(kind, tmp_path / kind / "engine", Policy())
        with Engine(paths, Policy(), pd.Timestamp(AS_OF), current(), backend=backend) as engine:
            raised, skipped = engine.flags({})
            out[kind] = raised, skipped, engine.village_indicators(raised)
    (duck, duck_skipped, duck_villages), (spark, spark_skipped, spark_villages) = out["duckdb"], out["spark"]
    assert duck_skipped == spark_skipped == {}
    assert len(duck) > 100 and duck["rule_code"].nunique() == 21
    pd.testing.assert_frame_equal(duck, spark)
    pd.testing.assert_frame_equal(duck_villages, spark_villages)
    assert (tmp_path / "spark" / "engine" / "models" / "int_register_households").is_dir()  # models kept as Parquet


def test_what_spark_writes_is_its_owners_only(frames, tmp_path):
    """Hadoop sets a written file's mode from its own umask (022 unless told), not the process's: told 077."""
    import os

    from jingzhun.privacy import PRIVATE_UMASK

    path = tmp_path / "hukou.parquet"
    frames["hukou"].to_parquet(path, index=False)
    before = os.umask(PRIVATE_UMASK)  # as every command and run sets it
    try:
        backend = backend_for("spark", tmp_path / "engine", Policy())
        with Engine({"hukou": path}, Policy(), pd.Timestamp(AS_OF), current(), backend=backend) as engine:
            engine.build(INTERMEDIATE)
    finally:
        os.umask(before)
    written = list((tmp_path / "engine").rglob("*"))
    assert any(p.suffix == ".parquet" for p in written)
    assert [str(p) for p in written if p.stat().st_mode & 0o077] == []


def test_the_master_asked_for_wins_then_the_environment_then_the_policy(monkeypatch):
    settings = SparkSettings(master="spark://policy:7077")
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert master_of(settings) == "spark://policy:7077"
    monkeypatch.setenv(MASTER_ENV, "spark://env:7077")
    assert master_of(settings) == "spark://env:7077"
    assert master_of(settings, "local[2]") == "local[2]"


def test_a_model_failing_on_spark_is_named_with_its_condition_never_with_a_value(tmp_path):
    import pyarrow as pa

    from jingzhun.spark import ModelFailed

    backend = backend_for("spark", tmp_path / "engine", Policy())
    backend.register("people", pa.table({"name": ["欧阳秀兰"], "id_number": ["620421195001010019"]}))
    try:
        with pytest.raises(ModelFailed) as failed:
            backend.table("int_ages", "SELECT CAST(name AS INTEGER) AS age, id_number FROM people")
    finally:
        backend.close()
    message = str(failed.value)
    assert message.startswith("model int_ages failed on Spark: CAST_INVALID_INPUT")
    assert "欧阳秀兰" not in message and "620421" not in message and failed.value.__cause__ is None


def test_a_model_that_never_ends_on_spark_is_stopped_at_the_policys_limit(frames, tmp_path):
    """The time limit holds on Spark too: its jobs are cancelled and the model is named."""
    import time

    from jingzhun.catalogue import read_catalogue
    from jingzhun.sandbox import ModelTimedOut

    pack = rule_pack(tmp_path / "pack", "SELECT c.* FROM int_member_cars AS c, hukou AS a, hukou AS b, hukou AS d "
                                        "WHERE a.name || b.name || d.name = 'never'")
    policy = Policy.model_validate({"engine": {"model_seconds": 20}})
    started = time.monotonic()
    backend = backend_for("spark", tmp_path / "engine", policy)
    with pytest.raises(ModelTimedOut, match=r"model RM_PACK.sql: stopped after 20 s"):
        with Engine(frames, policy, pd.Timestamp(AS_OF), read_catalogue(pack / "rules.yaml"),
                    backend=backend) as engine:
            engine.flags({})
    assert time.monotonic() - started < 300
