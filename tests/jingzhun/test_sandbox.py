"""What a rule may touch: a pack's model reads the relations the engine registered and nothing else, from
``rules preview`` and from a run alike; the warehouse is left as it was and nothing is written elsewhere."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import AS_OF, publish_county, rule_pack, yaml_text
from jingzhun import cli, warehouse
from jingzhun.catalogue import CatalogueError, load_catalogue, read_catalogue
from jingzhun.engine import CARRIED_FUNCTIONS, Engine, check_catalogue, rule_relations
from jingzhun.policy import Policy
from jingzhun.sandbox import ModelFailed, ModelRefused, ModelTimedOut, check_model

ROOT = Path(__file__).resolve().parents[2]
# Each way a model tried to reach out, with the words its refusal says. {out} is a path outside the run.
ATTACKS = {
    "read a file": ("SELECT content AS x FROM read_text('/proc/self/environ')", "table function (read_text)"),
    "read a file named as a table": ("SELECT * FROM '/etc/passwd'", "which is not a register"),
    "read a CSV": ("SELECT * FROM read_csv('{out}')", "table function (read_csv)"),
    "list files": ("SELECT * FROM glob('/root/*')", "table function (glob)"),
    "a query in a string": ("SELECT * FROM query('SELECT 1')", "table function (query)"),
    "the environment": ("SELECT getenv('JINGZHUN_WAREHOUSE') AS x FROM hukou", "calls getenv"),
    "the clock": ("SELECT current_date AS x FROM hukou", "calls current"),
    "write a file": ("COPY (SELECT * FROM hukou) TO '{out}'", "COPY is not a query"),
    "attach a database": ("ATTACH '{out}' AS stolen", "ATTACH is not a query"),
    "install": ("INSTALL httpfs", "INSTALL is not a query"),
    "load": ("LOAD httpfs", "LOAD is not a query"),
    "set": ("SET enable_external_access = true", "SET is not a query"),
    "pragma": ("PRAGMA database_list", "PRAGMA is not a query"),
    "a second statement": ("SELECT * FROM hukou; COPY (SELECT * FROM hukou) TO '{out}'", "holds 2 statements"),
    "another database's table": ("SELECT * FROM stolen.main.poverty_register", "which is not a register"),
    "not SQL": ("SELEC * FORM hukou", "not a query"),
    "the clock, local": ("SELECT localtimestamp AS x FROM hukou", "calls local"),
    "the session": ("SELECT session_user AS x FROM hukou", "calls session"),
    "rows from a function": ("SELECT * FROM ROWS FROM (read_text('/etc/passwd'))", "table function"),
    "a CTE's name borrowed outside its query": (
        "SELECT c.*, d.path FROM (WITH duckdb_databases AS (SELECT 1 AS a) SELECT a FROM duckdb_databases) AS q, "
        "int_member_cars AS c, duckdb_databases AS d", "duckdb_databases, which is not a register"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_model_that_does_more_than_read_is_refused_naming_it(attack, tmp_path):
    sql, said = ATTACKS[attack]
    with pytest.raises(ModelRefused) as refused:
        check_model(sql.format(out=tmp_path / "out.csv"), rule_relations(), "X.sql", CARRIED_FUNCTIONS)
    assert "model X.sql" in str(refused.value) and said in str(refused.value)


def test_every_shipped_model_reads_only_what_the_engine_registers():
    """The shipped catalogue and the province pack pass the check (a new one that reaches out fails here)."""
    check_catalogue(load_catalogue())
    from jingzhun.engine import INTERMEDIATE, MARTS

    for folder, extra in ((INTERMEDIATE, set()), (MARTS, {"flags"})):
        models = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.sql")}
        for name, sql in models.items():
            check_model(sql, rule_relations() | set(models) | extra, name, CARRIED_FUNCTIONS)


@pytest.mark.parametrize("code, fields", [("RM_X'); DROP TABLE flags; --", {"id_number": "id_number"}),
                                          ("RM_X", {"id\"', 'x": "id_number"}), ("rm_lower", {"id_number": "id_number"})])
def test_rule_codes_and_evidence_keys_are_identifiers(code, fields, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / f"{code}.sql").write_text("SELECT 1", encoding="utf-8")
    entry = {"title": "t", "grain": "household", "direction": "remove", "needs": ["hukou"],
             "evidence": [{"source": "hukou", "fields": fields, "sentence": "s"}]}
    (tmp_path / "rules.yaml").write_text(yaml_text({"rules": {code: entry}}), encoding="utf-8")
    with pytest.raises(CatalogueError, match="is not"):
        read_catalogue(tmp_path / "rules.yaml")


# ---------------------------------------------------------------- from preview and from a run

def _pack(tmp_path: Path, sql: str, deployment: bool = False) -> Path:
    return rule_pack(tmp_path / "pack", sql, deployment)


@pytest.fixture(scope="module")
def published(tmp_path_factory, frames, county):
    """A warehouse with a county published (and its run recorded), and the digest of its file."""
    path = tmp_path_factory.mktemp("sandbox") / "wh.sqlite"
    url = f"sqlite:///{path}"
    engine, _ = publish_county(url, frames, county["landing"])
    warehouse.start_run(engine, "r1", AS_OF, str(county["landing"]), None, {})
    warehouse.finish_run(engine, "r1", "published")
    engine.dispose()
    return url, path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("attack", ["read a file", "write a file", "attach a database", "install",
                                    "a second statement", "the environment"])
def test_preview_and_run_refuse_a_pack_that_reaches_out_before_any_data_is_touched(attack, published, tmp_path,
                                                                                  capsys):
    url, path = published
    before, out = _digest(path), tmp_path / "out.csv"
    pack = _pack(tmp_path, ATTACKS[attack][0].format(out=out), deployment=True)
    assert cli.main(["rules", "preview", "--rules", str(pack), "--warehouse", url]) == 2
    said = capsys.readouterr().err
    assert "RM_PACK.sql" in said and "Traceback" not in said and len(said.strip().splitlines()) == 1
    assert cli.main(["run", "--landing", str(tmp_path), "--warehouse", url,
                     "--deployment", str(pack / "deployment.yaml"), "--as-of", str(AS_OF), "--today", str(AS_OF)]) == 2
    assert "RM_PACK.sql" in capsys.readouterr().err
    assert _digest(path) == before and not out.exists() and not (tmp_path / "jingzhun-work").exists()


def test_an_apostrophe_in_a_rule_code_is_refused_by_the_catalogue_not_the_parser(published, tmp_path, capsys):
    pack = _pack(tmp_path, "SELECT * FROM int_member_cars")
    text = (pack / "rules.yaml").read_text(encoding="utf-8").replace("RM_PACK:", "RM_PACK'X:")
    (pack / "rules.yaml").write_text(text, encoding="utf-8")
    assert cli.main(["rules", "preview", "--rules", str(pack), "--warehouse", published[0]]) == 2
    err = capsys.readouterr().err
    assert "rule code" in err and "Traceback" not in err


def test_the_engine_closes_duckdbs_own_door_after_registering_the_registers(frames, tmp_path):
    """Were the model check ever passed, DuckDB itself reads no file but the staged registers and takes no
    setting back."""
    staged = tmp_path / "hukou.parquet"
    frames["hukou"].to_parquet(staged)
    with Engine({"hukou": staged}, Policy(), pd.Timestamp(AS_OF), load_catalogue(), tmp_path / "engine") as run:
        assert run.con.execute("SELECT count(*) FROM hukou").fetchone()[0] == len(frames["hukou"])
        for sql in ("SELECT * FROM read_text('/etc/passwd')", f"COPY hukou TO '{tmp_path / 'x.csv'}'",
                    f"ATTACH '{tmp_path / 'x.db'}'", "SET enable_external_access = true", "INSTALL httpfs"):
            with pytest.raises(Exception) as closed:
                run.con.execute(sql)
            assert "disabled by configuration" in str(closed.value) or "locked" in str(closed.value)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.db").exists()


def test_a_model_that_never_ends_is_stopped_at_the_policys_limit_naming_it(frames, tmp_path):
    endless = _pack(tmp_path, "SELECT c.* FROM int_member_cars AS c, hukou AS a, hukou AS b, hukou AS d "
                              "WHERE a.name || b.name || d.name = 'never'")
    policy = Policy.model_validate({"engine": {"model_seconds": 5}})
    started = time.monotonic()
    with pytest.raises(ModelTimedOut, match=r"model RM_PACK.sql: stopped after 5 s"):
        with Engine(frames, policy, pd.Timestamp(AS_OF), read_catalogue(endless / "rules.yaml")) as run:
            run.flags({})
    assert time.monotonic() - started < 60


def test_a_failing_model_is_named_without_the_value_it_failed_on(frames, tmp_path):
    slip = _pack(tmp_path, "SELECT c.*, CAST(c.member_name AS INTEGER) AS n FROM int_member_cars AS c")
    with pytest.raises(ModelFailed) as failed:
        with Engine(frames, Policy(), pd.Timestamp(AS_OF), read_catalogue(slip / "rules.yaml")) as run:
            run.flags({})
    said = str(failed.value)
    assert said == ("RM_PACK.sql: model rows__RM_PACK__records failed: Conversion Error (details withheld: they "
                    "may quote the data)")
    assert not any(name and name in said for name in set(frames["hukou"]["name"].dropna().astype(str)))
    assert failed.value.__cause__ is None and failed.value.__context__ is None


def test_a_slip_in_a_models_names_is_said_with_them(frames, tmp_path):
    """What an author needs: the column the model names that does not exist (the SQL's text, not a value)."""
    slip = _pack(tmp_path, "SELECT c.*, c.no_such_column AS n FROM int_member_cars AS c")
    with pytest.raises(ModelFailed, match="no_such_column"):
        with Engine(frames, Policy(), pd.Timestamp(AS_OF), read_catalogue(slip / "rules.yaml")) as run:
            run.flags({})


def test_a_preview_stopped_by_sigterm_leaves_no_copy_of_the_registers(published, tmp_path):
    """The preview copies every published register into its own temporary folder: a SIGTERM ends it as an error
    would, and the folder goes with it."""
    url, path = published
    slow = _pack(tmp_path, "SELECT c.* FROM int_member_cars AS c, hukou AS a, hukou AS b, hukou AS d "
                           "WHERE a.name || b.name || d.name = 'never'")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    before = _digest(path)
    proc = subprocess.Popen([sys.executable, "-m", "jingzhun.cli", "rules", "preview", "--rules", str(slow),
                             "--warehouse", url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(temp.glob("jingzhun-preview-*/engine")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(temp.glob("jingzhun-preview-*")), "the preview never started its engine"
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Traceback" not in err
    assert list(temp.iterdir()) == [] and _digest(path) == before


def test_a_slip_in_a_preview_rule_is_one_line_without_a_value_or_a_traceback(published, frames, tmp_path, capsys):
    slip = _pack(tmp_path, "SELECT c.*, CAST(c.member_name AS INTEGER) AS n FROM int_member_cars AS c")
    assert cli.main(["rules", "preview", "--rules", str(slip), "--warehouse", published[0]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("failed: RM_PACK.sql: model rows__RM_PACK__records failed: Conversion Error")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(name and name in err for name in set(frames["hukou"]["name"].dropna().astype(str)))


def test_a_failure_that_quotes_a_row_unquoted_says_only_its_kind(frames, tmp_path):
    """The regular-expression library quotes a pattern built from a name and an identity number whole, in
    pieces no mask recognises: a failure met while reading rows says its kind only."""
    leak = _pack(tmp_path, "SELECT * FROM int_member_cars WHERE regexp_matches('x', '(' || member_name_norm || ' ' "
                           "|| substr(owner_id_number, 1, 3) || ' ' || substr(owner_id_number, 4, 3))")
    with pytest.raises(ModelFailed) as failed:
        with Engine(frames, Policy(), pd.Timestamp(AS_OF), read_catalogue(leak / "rules.yaml")) as run:
            run.flags({})
    said = str(failed.value)
    assert "(details withheld" in said and not any(ch.isdigit() for ch in said.split("failed:")[1])
    assert not any(name and name in said for name in set(frames["hukou"]["name"].dropna().astype(str)))


def test_what_is_checked_is_what_runs(frames, tmp_path, monkeypatch):
    """A model file swapped after the check changes nothing: the engine runs the text it checked."""
    pack = _pack(tmp_path, "SELECT * FROM int_member_cars")
    checked = Engine.check_models

    def check_then_swap(self, models, relations=None):
        checked(self, models, relations)
        (pack / "rules" / "RM_PACK.sql").write_text("SELECT * FROM read_text('/proc/self/environ')", encoding="utf-8")

    monkeypatch.setattr(Engine, "check_models", check_then_swap)
    with Engine(frames, Policy(), pd.Timestamp(AS_OF), read_catalogue(pack / "rules.yaml")) as run:
        raised, skipped = run.flags({})
    assert skipped == {} and len(raised) > 0 and not raised["evidence"].str.contains("PATH=").any()


def test_the_engine_spills_at_most_the_policys_limit(frames, tmp_path):
    policy = Policy.model_validate({"engine": {"spill_limit": "3GB"}})
    with Engine(frames, policy, pd.Timestamp(AS_OF), load_catalogue(), tmp_path / "engine") as run:
        limit = run.con.execute("SELECT current_setting('max_temp_directory_size')").fetchone()[0]
    assert limit.replace(" ", "").upper() in ("3.0GB", "3GB", "2.7GIB", "2.7GB")
