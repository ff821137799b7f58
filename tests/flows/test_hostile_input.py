"""A night of hostile and careless input, end to end through ``jingzhun run`` on both backends.

Every file below is written by the test into an otherwise good landing folder (the generated county): an
identity number in Arabic-Indic digits, an unbalanced quote, a 34-character identity number and a household
number ``\\N``, control characters and ``_x0000_`` in names, a worksheet claiming the whole sheet, a 10 MB cell,
the date 0000-01-01, an amount of 400 nines, a link leading outside the landing folder, a subfolder, a file
name that is not UTF-8, and a warehouse URL with a password; and (#24) a workbook of 5 MB declaring 2 GB of
unused shared strings, a CSV of UTF-8 rows then GB18030 rows, a source folder that is itself a link outside the
landing folder, and names holding U+0336, U+3164, U+202E and U+200B. The run must finish with its summary, name each
file in its record, load every other source, account for every row, and leave no identity number or name of
the input (nor the password) in stdout, stderr, the Prefect logs, state messages, parameters, artifacts, any
run-record column or the Data Docs site.
"""

from __future__ import annotations

import json
import os
import shutil

import openpyxl
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select
from sqlalchemy.engine import make_url

from jingzhun import cli, warehouse
from jingzhun.contract import SOURCES
from jingzhun.readers import read_source

from helpers import AS_OF, valid_id, write_padded_xlsx

pytestmark = pytest.mark.slow

PASSWORD = "Zq7-secret-pw"
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _csv(path, rows: list[list[str]], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write("\n".join(",".join(r) for r in rows) + "\n")


def plant(landing, outside) -> dict:
    """Write the hostile files; returns what the test expects of each (source -> file label -> what)."""
    person = valid_id("62042119610203004")
    _csv(landing / "hukou" / "zz_arabic.csv", [
        ["公民身份号码", "姓名", "户号", "住址区划代码", "人员状态"],
        [valid_id("62042119700101901").translate(ARABIC), "阿拉伯", "H-ARABIC", "620421100201", "正常"],
        [valid_id("62042119700101902"), "控\x0b制", "H-CTRL", "620421100201", "正常"],
        [valid_id("62042119700101912"), "划\u0336线\u0336", "H-MARK", "620421100201", "正常"],
        [valid_id("62042119700101913"), "\u3164填\u202e充\u200b", "H-FILL", "620421100201", "正常"]])
    book = openpyxl.Workbook()
    book.active.append(["公民身份号码", "姓名", "户号", "住址区划代码", "人员状态"])
    book.active.append([valid_id("62042119700101903"), "零_x0000_字", "H-NUL", "620421100201", "正常"])
    book.save(landing / "hukou" / "zz_nul.xlsx")
    _csv(landing / "poverty_register" / "zz_keys.csv", [
        ["户编号", "证件号码", "姓名", "行政区划代码", "贫困户状态", "人均纯收入"],
        ["P-LONG", "6" * 34, "长号码", "620421100201", "未脱贫", "3000"],
        ["\\N", valid_id("62042119700101904"), "反斜杠", "620421100201", "未脱贫", "3000"]])
    _csv(landing / "students" / "zz_quote.csv", [
        ["学生身份证号", "姓名", "学籍状态"], [valid_id("62042120150101905"), "引号", "在读"],
        ['"' + valid_id("62042120150101906"), "未闭合", "在读"], [valid_id("62042120150101907"), "后面", "在读"]])
    bomb = openpyxl.Workbook()
    bomb.active.append(["身份证号", "职务", "任职状态"])
    bomb.active.append([valid_id("62042119700101908"), "文书", "在任"])
    bomb.active["XFD1048576"] = "x"
    bomb.save(landing / "cadres" / "zz_bomb.xlsx")
    _csv(landing / "illness" / "zz_bigcell.csv", [
        ["身份证号", "疾病类别", "疾病名称"], [valid_id("62042119700101909"), "大病", "x" * 10_000_000]])
    write_padded_xlsx(landing / "cadres" / "zz_strings.xlsx", [["身份证号", "职务", "任职状态"],
                                                               [valid_id("62042119700101914"), "文书", "在任"]], 2048)
    mixed = landing / "illness" / "zz_mixed.csv"
    _csv(mixed, [["身份证号", "疾病类别", "疾病名称"], [valid_id("62042119700101915"), "大病", "尘肺病"]])
    with open(mixed, "ab") as f:
        f.write(f"{valid_id('62042119700101916')},慢性病,高血压\n".encode("gb18030"))
    shutil.move(landing / "medical_insurance", outside / "medical_insurance")
    os.symlink(outside / "medical_insurance", landing / "medical_insurance", target_is_directory=True)
    _csv(landing / "deaths" / "zz_year0.csv", [
        ["身份证号", "死亡日期", "姓名"], [valid_id("62042119300101910"), "0000-01-01", "零年"]])
    _csv(landing / "social_assistance" / "zz_nines.csv", [
        ["身份证号", "姓名", "救助户号", "救助类别", "状态", "家庭人均年收入"],
        [person, "九九", "A-NINES", "低保", "在保", "9" * 400]])
    secret = outside / "secret.csv"
    _csv(secret, [["所有人身份证号", "号牌号码", "车辆类型", "机动车状态"], [valid_id("62042119700101911"), "甘A1", "K33", "A"]])
    os.symlink(secret, landing / "vehicles" / "zz_link.csv")
    (landing / "real_estate" / "old").mkdir()
    shutil.copy(next((landing / "real_estate").glob("*.*")), landing / "real_estate" / "old" / "last_year.xlsx")
    name = os.fsdecode("房屋".encode("gb18030") + b".csv")
    first = sorted((landing / "housing_safety").iterdir())[0]
    rows, _, _ = read_source(landing, SOURCES["housing_safety"])
    head = rows.head(1).drop(columns=["_file", "_sheet", "_row"])
    head.to_csv(landing / "housing_safety" / name, index=False, encoding="gb18030")
    assert first.exists()
    return {
        "refused": {"students/zz_quote.csv", "cadres/zz_bomb.xlsx", "illness/zz_bigcell.csv", "vehicles/zz_link.csv",
                    "cadres/zz_strings.xlsx", "illness/zz_mixed.csv", "medical_insurance/"},
        "ignored": {"real_estate/old"},
        "read": {"hukou/zz_arabic.csv", "hukou/zz_nul.xlsx", "poverty_register/zz_keys.csv", "deaths/zz_year0.csv",
                 "social_assistance/zz_nines.csv", "housing_safety/房屋.csv"},
    }


def personal_data(landing) -> tuple[set[str], set[str]]:
    """Every identity number and name the landing folder holds (hostile files included), as sent and
    normalised: what must never appear outside the data tables and the stewards' workbooks."""
    ids, names = set(), set()
    for name, source in SOURCES.items():
        data, _, _ = read_source(landing, source)
        for col in source.columns:
            if col.name in data.columns and col.kind in ("id", "name"):
                values = data[col.name].astype("str").str.strip()
                (ids if col.kind == "id" else names).update(values[values.str.len() >= 2])
    ids = {i for i in ids if sum(c.isdigit() for c in i) >= 15}
    ids |= {i.lstrip("'").upper() for i in ids}
    ids |= {valid_id("62042119700101901"), "6" * 34}
    names |= {"控\x0b制", "零\x00字", "控 制", "零字", "未闭合", "划线", "填充", "尘肺病", "高血压"}
    return ids, names


def leaks(blob: str, ids: set[str], names: set[str]) -> list[str]:
    found = [i for i in ids if i in blob]
    found += [n for n in names if n in blob]
    return found


def prefect_texts(since) -> dict[str, str]:
    """Everything the Prefect server holds of the flow runs since ``since``: log lines, state messages (of the
    flow and task runs), parameters, artifacts."""
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterStartTime, LogFilter, LogFilterFlowRunId)

    with get_client(sync_client=True) as client:
        flows = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))
        ids = [f.id for f in flows]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": ids}))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
    assert flows and tasks and logs and artifacts
    return {
        "logs": "\n".join(log.message for log in logs),
        "states": "\n".join(f"{r.state.name} {r.state.message}" for r in [*flows, *tasks] if r.state),
        "parameters": json.dumps([f.parameters for f in flows], ensure_ascii=False, default=str),
        "artifacts": json.dumps([[a.data, a.description] for a in artifacts], ensure_ascii=False, default=str),
    }


def run_records(url: str, run_id: str) -> dict[str, str]:
    out = {}
    with warehouse.connect(url).connect() as conn:
        for table in (warehouse.runs, warehouse.run_files, warehouse.run_rules, warehouse.validation_results):
            frame = pd.read_sql(select(table).where(table.c.run_id == run_id), conn)
            out[table.name] = frame.to_json(force_ascii=False)
    return out


def test_a_hostile_night_finishes_accounts_for_every_row_and_leaks_nothing(county, tmp_path, capfd, monkeypatch,
                                                                          warehouse_url):
    landing = tmp_path / "landing"
    shutil.copytree(county["landing"], landing)
    outside = tmp_path / "outside"
    outside.mkdir()
    expected = plant(landing, outside)
    url = warehouse_url
    if url.startswith("postgresql"):  # the server trusts local connections: the password is only carried
        url = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path / "work")
    monkeypatch.delenv(warehouse.PASSWORD_VARIABLE, raising=False)
    monkeypatch.setenv("JINGZHUN_WAREHOUSE", url)  # a password is never an argument (the process list shows it)
    since = pd.Timestamp.now(tz="UTC")
    capfd.readouterr()
    started = pd.Timestamp.now(tz="UTC")
    code = cli.main(["run", "--landing", str(landing), "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat()])
    out, err = capfd.readouterr()
    print(f"hostile night: {(pd.Timestamp.now(tz='UTC') - started).total_seconds():.0f} s")
    plain = warehouse.without_password(url)
    with warehouse.connect(plain).connect() as conn:
        run = conn.execute(select(warehouse.runs).order_by(warehouse.runs.c.started_at.desc())).first()
        files = pd.read_sql(select(warehouse.run_files).where(warehouse.run_files.c.run_id == run.run_id), conn)
        q = pd.read_sql(select(warehouse.quarantine).where(warehouse.quarantine.c.run_id == run.run_id), conn)
        register = pd.read_sql(select(warehouse.staging_tables["poverty_register"]), conn)
        hukou = pd.read_sql(select(warehouse.staging_tables["hukou"]), conn)

    # the run finishes with its summary and names every hostile file
    assert code == 3, err[-3000:]          # finished; some sources failed
    assert run.status == "published" and "flags raised" in out
    by_file = files.set_index("file")
    for label in expected["refused"]:
        assert by_file.loc[label, "error"], label
        assert label.split("/")[1] in out or label.split("/")[0] in out
    for label in expected["ignored"]:
        assert by_file.loc[label, "ignored"], label
    for label in expected["read"]:
        assert not by_file.loc[label, "error"] and by_file.loc[label, "rows_read"] >= 1, label

    # every other source loads, and every row is accounted for
    sources = json.loads(run.sources)
    failed = {label.split("/")[0] for label in expected["refused"]}
    assert {n for n, s in sources.items() if s["status"] == "failed"} == failed
    assert all(s["status"] == "loaded" for n, s in sources.items() if n not in failed)
    for name, s in sources.items():
        if s["status"] == "loaded":
            assert s["rows_read"] == s["rows_valid"] + s["rows_quarantined"], name
        elif name == "medical_insurance":  # its folder is a link outside the landing folder: nothing read
            assert s["rows_read"] == 0 and files[files["source"] == name]["file"].tolist() == ["medical_insurance/"]
        else:  # the readable files of a failed source are still counted
            readable = files[(files["source"] == name) & files["error"].fillna("").eq("")
                             & files["ignored"].fillna("").eq("")]
            assert s["rows_read"] == int((readable["rows_read"] - readable["rows_not_data"]).sum()) > 0, name
    assert sources["hukou"]["cleaned"] == {"name": 4}       # the \x0b, the NUL, the strokes, the fillers: removed, recorded

    # each hostile row is quarantined with its reason, or stored as sent
    reasons = q.set_index(["file", "row"])["reason"]
    assert "格式不符" in reasons[("hukou/zz_arabic.csv", 2)]
    assert "32" in reasons[("poverty_register/zz_keys.csv", 2)]
    assert "无法识别" in reasons[("deaths/zz_year0.csv", 2)]
    assert "无法识别" in reasons[("social_assistance/zz_nines.csv", 2)]
    assert "\\N" in set(register["household_id"])                # a value, not NULL
    assert {"控 制", "零字", "划线", "填充"} <= set(hukou["name"])

    # no identity number, name or password outside the data tables and the stewards' workbooks
    ids, names = personal_data(landing)
    assert len(ids) > 1000 and len(names) > 1000
    texts = {"stdout": out, "stderr": err, **prefect_texts(since), **run_records(plain, run.run_id)}
    site = tmp_path / "work" / "runs" / run.run_id / "gx"          # the Data Docs anyone with the share can open
    pages = [p for p in site.rglob("*") if p.suffix in (".html", ".json")]
    assert any(p.name == "index.html" for p in pages)
    texts |= {str(p.relative_to(site)): p.read_text(encoding="utf-8", errors="replace") for p in pages}
    for where, blob in texts.items():
        found = leaks(blob, ids, names)
        assert not found, f"{where}: {len(found)} leaked, e.g. at {[blob.find(f) for f in found[:3]]}"
        assert PASSWORD not in blob, where
