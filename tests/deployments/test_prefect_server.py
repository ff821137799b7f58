"""prefect.yaml on a real Prefect server: deployed as the README says, a reconciliation triggered through the API
and carried out by a real process worker, its artifacts, and parameters the server refuses."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from helpers import AS_OF

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, env, log):
    return subprocess.Popen(args, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def deployed(county, tmp_path_factory):
    """A Prefect server on a loopback port, the work pool, both deployments of prefect.yaml, and a worker."""
    base = tmp_path_factory.mktemp("prefect")
    landing = base / "landing"
    shutil.copytree(county["landing"], landing)
    api = f"http://127.0.0.1:{_free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(base / "home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "JINGZHUN_HOME": str(ROOT), "JINGZHUN_LANDING": str(landing), "JINGZHUN_WORK": str(base / "work"),
           "JINGZHUN_WAREHOUSE": f"sqlite:///{base / 'warehouse.sqlite'}"}
    port = api.rsplit(":", 1)[1].split("/")[0]
    server = _start([BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", port], env, base / "server.log")
    worker = None
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("the Prefect server did not start: " + (base / "server.log").read_text()[-2000:])
        cli = dict(env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        made = subprocess.run([BIN / "prefect", "work-pool", "create", "jingzhun", "--type", "process"], **cli)
        assert made.returncode == 0, made.stdout + made.stderr
        deploy = subprocess.run([BIN / "prefect", "--no-prompt", "deploy", "--name", "nightly", "--name", "reconcile"],
                                **cli)
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        # a province's own deployment, in its own pool (its worker would reach the Spark cluster)
        made = subprocess.run([BIN / "prefect", "work-pool", "create", "jingzhun-province", "--type", "process"], **cli)
        assert made.returncode == 0, made.stdout + made.stderr
        province = subprocess.run([BIN / "prefect", "--no-prompt", "deploy", "--name", "nightly-province"],
                                  **{**cli, "env": {**env, "JINGZHUN_PROVINCE_LANDING": str(landing)}})
        assert province.returncode == 0, province.stdout[-3000:] + province.stderr[-3000:]
        worker = _start([BIN / "prefect", "worker", "start", "--pool", "jingzhun"], env, base / "worker.log")
        yield {"api": api, "base": base}
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)


async def _reconcile_and_wait(api: str, parameters: dict) -> tuple:
    async with PrefectClient(api) as client:
        deployment = await client.read_deployment_by_name("reconcile/reconcile")
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        deadline = time.time() + 600
        while time.time() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                break
            await asyncio.sleep(2)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    return run, artifacts


def test_both_deployments_are_on_the_server_with_the_nightly_schedule(deployed):
    async def read():
        async with PrefectClient(deployed["api"]) as client:
            nightly = await client.read_deployment_by_name("nightly/nightly")
            reconcile = await client.read_deployment_by_name("reconcile/reconcile")
            province = await client.read_deployment_by_name("nightly/nightly-province")
            return nightly, reconcile, province, await client.read_deployment_schedules(nightly.id)
    nightly, reconcile, province, schedules = asyncio.run(read())
    assert nightly.work_pool_name == reconcile.work_pool_name == "jingzhun"
    assert province.work_pool_name == "jingzhun-province" and province.parameters["engine"] == "spark"
    assert [(s.schedule.cron, s.schedule.timezone) for s in schedules] == [("0 2 * * *", "Asia/Shanghai")]
    assert set(reconcile.parameter_openapi_schema["required"]) == {"landing", "region"}


def test_a_reconciliation_triggered_through_the_api_runs_on_the_worker_and_leaves_its_artifacts(deployed):
    run, artifacts = asyncio.run(_reconcile_and_wait(deployed["api"], {
        "region": "620421", "as_of": AS_OF.isoformat(), "today": AS_OF.isoformat(), "sources": ["poverty_register", "hukou", "deaths"]}))
    log = (deployed["base"] / "worker.log").read_text()[-3000:]
    assert run.state.is_completed(), (run.state, log)
    keys = {a.key for a in artifacts}
    assert {"jingzhun-sources", "jingzhun-flags", "jingzhun-validation-workbook", "jingzhun-data-docs",
            "jingzhun-review-workbook"} <= keys, keys
    assert list((deployed["base"] / "work" / "runs").glob("*/validation_*.xlsx"))
    assert (deployed["base"] / "warehouse.sqlite").exists()


@pytest.mark.parametrize("bad", [{"region": "6204x"}, {"region": "620421", "as_of": "2026-13-45"},
                                 {"region": "620421", "sources": ["weather"]}, {}])
def test_the_server_refuses_malformed_parameters_when_the_run_is_created(deployed, bad):
    async def create():
        async with PrefectClient(deployed["api"]) as client:
            deployment = await client.read_deployment_by_name("reconcile/reconcile")
            await client.create_flow_run_from_deployment(deployment.id, parameters=bad)
    with pytest.raises(Exception, match="Validation failed|required"):
        asyncio.run(create())
