"""Smoke test of the benchmark at a small size: it runs and reports every stage (no timing asserted)."""

import json
import sqlite3

import pytest

from jingzhun import cli
from jingzhun.bench import STAGES

from helpers import AS_OF

pytestmark = pytest.mark.slow


def test_bench_reports_every_stage_and_the_workbench_under_load(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path)
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--residents", "3000", "--as-of", AS_OF.isoformat(), "--json", str(out),
                     "--workbench", "--users", "3", "--seconds", "3", "--think", "0", "--nightly-nice", "5"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["best"]["stages"]) == set(STAGES)
    measured = report["best"]["stages"]
    assert all(v["seconds"] is not None for v in measured.values())
    assert all(v["seconds"] > 0 and v["peak_rss_mib"] > 0 for v in measured.values())
    assert report["floor"]["rows"] >= report["rows"] > 2500
    assert report["residents"] > 2500 and report["best"]["flags_raised"] > 0
    published = sqlite3.connect(tmp_path / "bench" / "warehouse-3000-0.sqlite")
    registers = [name for (name,) in published.execute("SELECT name FROM sqlite_master WHERE name LIKE 'stg_%'")]
    loaded = sum(published.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in registers)
    assert report["write_floor"]["rows"] == loaded > 2500     # the floor writes exactly what the run loaded
    assert report["write_floor"]["seconds"] > 0
    printed = capsys.readouterr().out
    assert "read-only floor" in printed and "write floor" in printed
    load = report["workbench"]      # people on every page while a second nightly run published (at nice 5)
    assert load["nightly_exit_code"] == 0 and load["nightly_nice"] == 5 and load["login_errors"] == 0
    assert {row["page"] for row in load["pages"]} == {"queue", "flag", "household"}
    assert all(row["requests"] > 0 and row["errors"] == 0 and row["p95_ms"] > 0 for row in load["pages"])
    assert "nice 5" in printed


@pytest.mark.spark
def test_bench_of_a_province_on_spark_reports_the_jvms_memory(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path)
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--counties", "2", "--residents", "2000", "--engine", "spark",
                     "--as-of", AS_OF.isoformat(), "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["counties"] == 2 and report["engine"] == "spark" and report["residents"] > 2 * 1500
    match = report["best"]["stages"]["match"]
    assert match["peak_jvm_rss_mib"] > 100  # Spark's JVM, sampled apart from this process
    assert report["best"]["peak_jvm_rss_mib"] >= match["peak_jvm_rss_mib"]
    assert report["spark"]["master"].startswith("local")
    assert "2 counties, rules on spark" in capsys.readouterr().out
