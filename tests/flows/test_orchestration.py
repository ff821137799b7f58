"""How the county runs jingzhun: database sources, retries, failing sources, typed parameters of a
reconciliation, the run's artifacts, and no personal data in logs or artifacts. Real Prefect runs (the
session's throw-away server), real PostgreSQL."""

import asyncio
import shutil

import pandas as pd
import psycopg
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.exceptions import ParameterTypeError
from sqlalchemy import func, select

from jingzhun.nightly import nightly
from jingzhun.reconcile import UnknownScope, reconcile
from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.readers import read_source

from conftest import _postgres_database
from helpers import AS_OF

pytestmark = pytest.mark.slow


@pytest.fixture
def landing(county, tmp_path):
    target = tmp_path / "landing"
    shutil.copytree(county["landing"], target)
    return target


@pytest.fixture
def department_db():
    """A department's database on the PostgreSQL of this machine (a throw-away database)."""
    yield from _postgres_database()


def cadres_to_database(landing, db_url: str) -> int:
    """Move the cadres register from the landing folder into the department's database, under its Chinese
    column names; plus a function that fails twice before answering, and a counter of its calls."""
    rows, _, _ = read_source(landing, SOURCES["cadres"])
    shutil.rmtree(landing / "cadres")
    frame = rows[["id_number", "name", "position", "term_status", "village_code"]]
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE cadres_export (身份证号 text, 姓名 text, 职务 text, 任职状态 text, 村代码 text)')
        with conn.cursor().copy("COPY cadres_export FROM STDIN") as copy:
            for record in frame.itertuples(index=False):
                copy.write_row(record)
        conn.execute("CREATE SEQUENCE attempts")
        conn.execute("""CREATE FUNCTION cadres_flaky() RETURNS SETOF cadres_export AS $$
                        BEGIN
                          IF nextval('attempts') <= 2 THEN RAISE EXCEPTION 'department database busy'; END IF;
                          RETURN QUERY SELECT * FROM cadres_export;
                        END $$ LANGUAGE plpgsql""")
    return len(frame)


def sources_file(tmp_path, db_url: str, query: str):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"cadres": {"url": db_url, "query": query}}, allow_unicode=True), encoding="utf-8")
    return str(path)


def run(landing, tmp_path, **kw):
    return nightly(landing=str(landing), warehouse_url=f"sqlite:///{tmp_path / 'wh.sqlite'}", as_of=AS_OF, today=AS_OF,
                   work_dir=str(tmp_path / "work"), **kw)


async def _task_runs(flow_run_id):
    async with get_client() as client:
        return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


@pytest.mark.postgres
def test_a_source_read_from_a_database_with_two_failures_first_is_retried_and_loads(landing, tmp_path, county,
                                                                                    department_db):
    rows = cadres_to_database(landing, department_db)
    config = sources_file(tmp_path, department_db, "SELECT * FROM cadres_flaky()")
    state = run(landing, tmp_path, sources_config=config, return_state=True)
    result = state.result()
    assert state.is_completed() and state.name == "Completed"
    cadres = result["sources"]["cadres"]
    assert cadres["status"] == "loaded" and cadres["rows_read"] == rows and cadres["files"] == 1
    expected = pd.read_csv(county["out"] / "ground_truth" / "expected_flags.csv", dtype=str)
    assert result["flags_raised"] == len(expected)  # the additions' cadre exemption read from the database
    extract = next(t for t in asyncio.run(_task_runs(state.state_details.flow_run_id)) if t.name == "extract-cadres")
    assert extract.run_count == 3 and extract.state.is_completed()
    with warehouse.connect(result["warehouse"]).connect() as conn:
        files = pd.read_sql(select(warehouse.run_files).where(warehouse.run_files.c.source == "cadres"), conn)
    assert files["format"].tolist() == ["sql"] and files["file"].str.startswith("cadres/postgresql+psycopg://").all()


@pytest.mark.postgres
def test_a_source_that_keeps_failing_fails_alone_and_the_run_says_which(landing, tmp_path, department_db):
    cadres_to_database(landing, department_db)
    config = sources_file(tmp_path, department_db, "SELECT * FROM no_such_export")
    state = run(landing, tmp_path, sources_config=config, return_state=True)
    result = state.result()
    assert state.is_completed() and state.name == "Partially loaded" and state.message == "failed: cadres"
    assert result["sources"]["cadres"]["status"] == "failed"
    assert "no_such_export" in result["sources"]["cadres"]["message"]
    assert all(s["status"] == "loaded" for n, s in result["sources"].items() if n != "cadres")
    assert "cadres: failed" in result["not_evaluated"]["ADD_DIBAO"]
    extract = next(t for t in asyncio.run(_task_runs(state.state_details.flow_run_id)) if t.name == "extract-cadres")
    assert extract.run_count == 3 and extract.state.is_failed()


def _runs(url) -> int:
    with warehouse.connect(url).connect() as conn:
        return conn.execute(select(func.count()).select_from(warehouse.runs)).scalar()


@pytest.mark.parametrize("bad", [{"region": "6204x"}, {"region": "62042"}, {"as_of": "2026-13-45"},
                                 {"sources": ["weather"]}, {"households": "P1"}])
def test_malformed_parameters_are_refused_before_any_work(landing, tmp_path, bad):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    params = {"landing": str(landing), "region": "620421", "warehouse_url": url, "work_dir": str(tmp_path / "w"), **bad}
    with pytest.raises(ParameterTypeError):
        reconcile(**params)
    assert _runs(url) == 0


@pytest.mark.parametrize("flow", ["nightly", "reconcile"])
def test_a_password_in_a_flow_parameter_is_refused_before_any_work(landing, tmp_path, flow):
    """Prefect stores a run's parameters with it: a warehouse_url holding a password is refused, not used."""
    from jingzhun.nightly import nightly
    from jingzhun.privacy import Refused

    url = "postgresql+psycopg://jz@127.0.0.1/jz?password=s3cret"
    with pytest.raises(Refused, match="may not hold a password") as refused:
        if flow == "nightly":
            nightly(landing=str(landing), warehouse_url=url, work_dir=str(tmp_path / "w"), as_of=AS_OF, today=AS_OF)
        else:
            reconcile(landing=str(landing), region="620421", warehouse_url=url, work_dir=str(tmp_path / "w"))
    assert "s3cret" not in str(refused.value) and not (tmp_path / "w").exists()


def test_a_region_or_household_the_register_does_not_hold_is_refused_before_any_work(landing, tmp_path):
    first = run(landing, tmp_path)
    kw = dict(landing=str(landing), warehouse_url=first["warehouse"], work_dir=str(tmp_path / "work"), as_of=AS_OF, today=AS_OF)
    with pytest.raises(UnknownScope, match="unknown region '99'"):
        reconcile(region="99", **kw)
    with pytest.raises(UnknownScope, match="unknown households .*NO-SUCH"):
        reconcile(region="620421", households=["NO-SUCH"], **kw)
    assert _runs(first["warehouse"]) == 1


def test_a_region_outside_tonights_register_is_refused_even_before_anything_is_published(landing, tmp_path, capsys,
                                                                                         monkeypatch):
    """On an empty warehouse the published register cannot tell; tonight's poverty register does, before any
    flag is raised or published (exit 2, the run recorded as refused with the reason)."""
    from jingzhun import cli

    monkeypatch.setattr(cli, "WORK_DIR", tmp_path / "work")
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    code = cli.main(["run", "--landing", str(landing), "--warehouse", url, "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat(),
                     "--region", "99"])
    out, err = capsys.readouterr()
    assert code == 2 and "(reconciliation of region) 99" in out
    assert "unknown region '99': no village of tonight's poverty register" in err
    with warehouse.connect(url).connect() as conn:
        runs = conn.execute(select(warehouse.runs.c.status, warehouse.runs.c.error)).all()
        assert conn.execute(select(func.count()).select_from(warehouse.flags)).scalar() == 0
    assert len(runs) == 1 and runs[0].status == "failed" and "unknown region '99'" in runs[0].error


def test_a_reconciliation_of_one_village_and_some_sources_touches_only_them(landing, tmp_path):
    first = run(landing, tmp_path)
    with warehouse.connect(first["warehouse"]).connect() as conn:
        flags = pd.read_sql(select(warehouse.flags), conn)
    village = flags["village_code"].value_counts().index[0]
    result = reconcile(landing=str(landing), region=village, sources=["poverty_register", "hukou", "deaths"],
                       warehouse_url=first["warehouse"], work_dir=str(tmp_path / "work"), as_of=AS_OF, today=AS_OF)
    assert result["sources"]["vehicles"]["status"] == "skipped"
    assert result["sources"]["vehicles"]["validation"] == "not read"           # #28: not "passed"
    book = result["review_workbook"]                                            # #28: named and titled by its scope
    assert book.endswith(f"_reconciliation_{village}.xlsx")
    import openpyxl

    title = openpyxl.load_workbook(book).worksheets[0].oddHeader.center.text     # the printed title
    assert f"动态调整核实清单(对账 {village})" in title
    assert "RM_CAR" in result["not_evaluated"] and "DQ_NOT_IN_HUKOU" not in result["not_evaluated"]
    with warehouse.connect(first["warehouse"]).connect() as conn:
        after = pd.read_sql(select(warehouse.flags), conn).set_index("flag_key")
    before = flags.set_index("flag_key")
    touched = after["last_seen_run"].eq(result["run_id"])
    assert touched.any() and after.loc[touched, "village_code"].eq(village).all()
    elsewhere = before["village_code"].ne(village)
    pd.testing.assert_series_equal(before.loc[elsewhere, "last_seen_run"], after.loc[before.index[elsewhere], "last_seen_run"])


async def _logs_and_artifacts(flow_run_id):
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        flow_run = await client.read_flow_run(flow_run_id)
    return logs, artifacts, flow_run


def test_artifacts_show_sources_flags_and_reports_and_no_identity_number_or_name_leaks(landing, tmp_path):
    state = run(landing, tmp_path, return_state=True)
    result = state.result()
    logs, artifacts, flow_run = asyncio.run(_logs_and_artifacts(state.state_details.flow_run_id))
    keys = {a.key for a in artifacts}
    assert {"jingzhun-sources", "jingzhun-flags", "jingzhun-validation-workbook", "jingzhun-data-docs",
            "jingzhun-review-workbook"} <= keys
    sources = next(a for a in artifacts if a.key == "jingzhun-sources")
    assert "poverty_register" in str(sources.data) and "rows_quarantined" in str(sources.data)
    flags = next(a for a in artifacts if a.key == "jingzhun-flags")
    assert "RM_CAR" in str(flags.data) and "still_open" in str(flags.data)
    assert len(logs) > 10

    people = set()
    for name, source in SOURCES.items():
        rows, _, _ = read_source(landing, source)
        for col in source.columns:
            if col.kind in ("id", "name") and col.name in rows:
                people |= {v.strip() for v in rows[col.name] if len(v.strip()) >= 2}
    assert len(people) > 1000
    text = "\n".join([*(log.message for log in logs), *(str(a.data) + str(a.description) for a in artifacts),
                      str(flow_run.state.message), str(flow_run.parameters)])
    leaked = sorted(p for p in people if p in text)
    assert leaked == [], leaked[:10]
    assert result["flags_raised"] > 0
