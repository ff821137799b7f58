import hashlib
import shutil

import pandas as pd
import pytest
from sqlalchemy import func, select

from flows.nightly import nightly
from jingzhun import warehouse
from jingzhun.synth import EXPECTED_QUARANTINE

from helpers import AS_OF

pytestmark = pytest.mark.slow


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def landing(county, tmp_path):
    target = tmp_path / "landing"
    shutil.copytree(county["landing"], target)
    return target


def run(landing, tmp_path, **kw):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    return nightly(landing=str(landing), warehouse_url=url, as_of=AS_OF, work_dir=str(tmp_path / "work"), **kw), url


def test_nightly_loads_every_source_and_records_every_file(landing, tmp_path, county):
    before = {p: sha(p) for p in landing.rglob("*.*")}
    result, url = run(landing, tmp_path)
    assert result["status"] == "published"
    assert {s["status"] for s in result["sources"].values()} == {"loaded"}
    assert {p: sha(p) for p in landing.rglob("*.*")} == before  # files are only read

    engine = warehouse.connect(url)
    with engine.connect() as conn:
        record = conn.execute(select(warehouse.runs)).mappings().one()
        files = pd.read_sql(select(warehouse.run_files), conn)
        quarantined = pd.read_sql(select(warehouse.quarantine), conn)
        register_rows = conn.execute(select(func.count()).select_from(warehouse.staging_tables["poverty_register"])).scalar()
    assert record["status"] == "published" and str(record["as_of"]) == AS_OF.isoformat()
    assert len(files) == len(before)
    for _, f in files.iterrows():
        assert f["sha256"] == sha(landing / f["file"]) and f["size"] == (landing / f["file"]).stat().st_size
    assert register_rows == result["sources"]["poverty_register"]["rows_valid"]
    read = sum(s["rows_read"] for s in result["sources"].values())
    valid = sum(s["rows_valid"] for s in result["sources"].values())
    staged_out = quarantined[~quarantined["reason"].str.contains("totals row|blank row")]
    assert read == valid + len(staged_out)  # every data row is either loaded or quarantined
    planted = pd.read_csv(county["out"] / "ground_truth" / EXPECTED_QUARANTINE, dtype=str)
    for value in planted["value"]:
        assert quarantined["raw"].str.contains(value, regex=False).any()
    assert quarantined["reason"].str.contains("totals row").any()  # the register's 合计 rows, with a reason


def test_a_broken_source_is_recorded_and_the_others_still_load(landing, tmp_path):
    estate = next((landing / "real_estate").glob("*.xlsx"))
    estate.write_bytes(estate.read_bytes()[:300])
    cadres = next((landing / "cadres").glob("*.csv"))
    text = cadres.read_text(encoding="utf-8-sig").splitlines()
    cadres.write_text("\n".join(line.rsplit(",", 2)[0] for line in text), encoding="utf-8")  # drops 任职状态
    shutil.rmtree(landing / "deaths")

    result, url = run(landing, tmp_path)
    sources = result["sources"]
    assert sources["real_estate"]["status"] == "failed" and estate.name in sources["real_estate"]["message"]
    assert sources["cadres"]["status"] == "failed" and "term_status" in sources["cadres"]["message"]
    assert sources["deaths"]["status"] == "missing"
    assert all(s["status"] == "loaded" for name, s in sources.items() if name not in {"real_estate", "cadres", "deaths"})
    with warehouse.connect(url).connect() as conn:
        files = pd.read_sql(select(warehouse.run_files), conn)
    assert files.loc[files["source"] == "real_estate", "error"].str.contains("not a readable Excel workbook").all()


def test_dry_run_publishes_no_registers(landing, tmp_path):
    result, url = run(landing, tmp_path, dry_run=True)
    assert result["status"] == "dry_run"
    with warehouse.connect(url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(warehouse.staging_tables["hukou"])).scalar() == 0
        assert conn.execute(select(warehouse.runs.c.status)).scalar() == "dry_run"
