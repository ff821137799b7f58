"""The example province pack through a whole run: `jingzhun run --deployment` reads, validates (suites built for
its registers), loads (tables of its own) and flags with its rules; the review workbook names them."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select

from helpers import AS_OF
from jingzhun import cli, deployment, warehouse
from jingzhun.synth import EXPECTED_FLAGS, generate

pytestmark = pytest.mark.slow
PACK = Path(__file__).resolve().parents[2] / "examples" / "province-pack"


def test_a_run_with_the_pack_flags_its_cases_and_keeps_its_registers(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path / "work")
    try:
        summary = generate(tmp_path / "county", households=300, seed=4, as_of=AS_OF, pack=PACK)
        deployment.uninstall()   # the command installs it, as a fresh process would
        url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
        code = cli.main(["run", "--landing", summary["landing"], "--warehouse", url, "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat(),
                         "--deployment", str(PACK / "deployment.yaml")])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        engine = warehouse.connect(url)
        with engine.connect() as conn:
            flags = pd.read_sql(select(warehouse.flags), conn)
            employees = conn.execute(select(func.count()).select_from(warehouse.staging_tables["public_employees"])).scalar()
            results = pd.read_sql(select(warehouse.validation_results), conn)
            run = conn.execute(select(warehouse.runs)).mappings().one()
        expected = pd.read_csv(tmp_path / "county" / "ground_truth" / EXPECTED_FLAGS, dtype=str).fillna("")
        for rule in ("RM_PUBLIC_EMPLOYEE", "RM_BUSINESS_OWNER"):
            assert set(flags.loc[flags["rule_code"].eq(rule), "household_id"]) == \
                set(expected.loc[expected["rule_code"].eq(rule), "household_id"])
        assert employees == summary["rows"]["public_employees"]
        assert {"public_employees", "business_registry"} <= set(results["source"])
        assert results[results["source"].eq("business_registry")]["description"].str.contains("“身份”").any()
        assert "deployment.yaml" in run["parameters"]
        book = openpyxl.load_workbook(next((tmp_path).rglob("review_*.xlsx")))
        titles = {c.value for c in book.active["C"]}
        assert {"财政供养人员", "有工商注册(法定代表人或投资人)"} <= titles
    finally:
        deployment.uninstall()
