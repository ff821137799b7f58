"""prefect.yaml names a real flow and the schedule the county asked for."""

import importlib
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_nightly_deployment_points_at_the_flow_at_two_in_the_morning_shanghai_time():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    nightly = next(d for d in config["deployments"] if d["name"] == "nightly")
    module, _, name = nightly["entrypoint"].partition(":")
    flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
    assert isinstance(flow, Flow) and flow.name == "nightly"
    assert nightly["schedules"] == [{"cron": "0 2 * * *", "timezone": "Asia/Shanghai"}]
    assert set(nightly["parameters"]) <= set(flow.parameters.properties)


def test_the_province_runs_the_nightly_flow_on_spark_with_the_master_from_the_workers_environment():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    province = next(d for d in config["deployments"] if d["name"] == "nightly-province")
    module, _, name = province["entrypoint"].partition(":")
    flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
    assert flow.name == "nightly" and set(province["parameters"]) <= set(flow.parameters.properties)
    assert province["parameters"]["engine"] == "spark"
    assert "spark_master" not in province["parameters"]  # JINGZHUN_SPARK_MASTER, read by the worker at run time
    assert province["work_pool"]["name"] != "jingzhun"  # its own worker, where the cluster can be reached
