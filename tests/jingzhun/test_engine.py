"""The engine: staged Parquet files read where they lie give the flags that frames give; its limits come from
the policy and its spill stays in the run folder."""

from __future__ import annotations

import pandas as pd

from helpers import AS_OF
from jingzhun.catalogue import load_catalogue
from jingzhun.engine import Engine, flags
from jingzhun.policy import EngineSettings, Policy


def test_parquet_files_and_frames_give_the_same_flags(frames, tmp_path):
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    from_frames, skipped = flags(frames, Policy(), pd.Timestamp(AS_OF))
    from_files, skipped_files = flags(paths, Policy(), pd.Timestamp(AS_OF), work_dir=tmp_path / "engine",
                                      memory_limit="200MB")
    assert skipped == skipped_files == {}
    assert len(from_frames) > 100
    pd.testing.assert_frame_equal(from_frames, from_files)


def test_limits_come_from_the_policy_and_spill_goes_to_the_run_folder(frames, tmp_path):
    policy = Policy(engine=EngineSettings(memory_limit="300MB", threads=1))
    with Engine(frames, policy, pd.Timestamp(AS_OF), load_catalogue(), tmp_path / "engine",
                policy.engine.memory_limit, policy.engine.threads) as engine:
        settings = dict(engine.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'temp_directory', 'threads')"
        ).fetchall())
    assert settings["threads"] == "1"
    assert settings["memory_limit"] in ("286.1 MiB", "300.0 MB")
    assert settings["temp_directory"] == str(tmp_path / "engine" / "spill")


def test_a_source_that_did_not_arrive_reads_as_empty_and_its_rules_are_not_evaluated(frames):
    present = {k: v for k, v in frames.items() if k not in ("vehicles", "illness")}
    raised, skipped = flags(present, Policy(), pd.Timestamp(AS_OF), {"illness": "blocked: 质量检查未通过"})
    assert skipped["RM_CAR"] == "vehicles: 未收到 (not received)"
    assert skipped["REVERT_ILLNESS"] == "illness: blocked: 质量检查未通过"
    assert not raised["rule_code"].isin(["RM_CAR", "RV_CAR_ACQUIRED", "REVERT_ILLNESS", "REFER_HEALTH",
                                         "EXIT_ELIGIBLE"]).any()
    assert raised["rule_code"].isin(["RM_PROPERTY", "ADD_DIBAO"]).any()
