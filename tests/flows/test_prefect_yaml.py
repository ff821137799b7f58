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
