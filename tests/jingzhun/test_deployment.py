"""A deployment file: read and checked against the contract; what cannot be used is refused naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from jingzhun import cli
from jingzhun.deployment import DeploymentError, read_deployment

PACK = Path(__file__).resolve().parents[2] / "examples" / "province-pack"


def _pack(tmp_path: Path, change) -> Path:
    """A copy of the example pack with one change to its deployment file."""
    folder = tmp_path / "pack"
    shutil.copytree(PACK, folder)
    data = yaml.safe_load((folder / "deployment.yaml").read_text(encoding="utf-8"))
    change(data, folder)
    (folder / "deployment.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder / "deployment.yaml"


def test_the_example_pack_is_read():
    d = read_deployment(PACK / "deployment.yaml")
    assert set(d.sources) == {"poverty_register", "public_employees", "business_registry"}
    assert set(d.catalogue.rules) == {"RM_PUBLIC_EMPLOYEE", "RM_BUSINESS_OWNER"}
    role = d.sources["business_registry"].column("role")
    assert role.kind == "vocab" and dict(role.vocabulary)["股东"] == "投资人"
    assert d.departments["business_registry"] == "市场监督管理局"


def _source(data) -> dict:
    return data["sources"]["public_employees"]


@pytest.mark.parametrize("change, message", [
    (lambda d, f: d.update(schedule="nightly"), "unknown key(s) schedule"),
    (lambda d, f: d["sources"]["poverty_register"]["aliases"].update(colour=["颜色"]),
     "sources.poverty_register.aliases: unknown column 'colour' of poverty_register"),
    (lambda d, f: _source(d)["columns"][2].update(kind="money2"),
     "sources.public_employees.columns[2].kind: unknown kind 'money2'"),
    (lambda d, f: _source(d)["columns"][2].update(colour="red"),
     "sources.public_employees.columns[2]: unknown key(s) colour"),
    (lambda d, f: _source(d).pop("title"), "sources.public_employees.title: missing"),
    (lambda d, f: _source(d)["columns"][2].update(kind="id"),
     "sources.public_employees.columns: exactly one column of kind id"),
    (lambda d, f: _source(d)["columns"][2].update(vocabulary={"a": "b"}),
     "sources.public_employees.columns[2].vocabulary: only a column of kind vocab has one"),
    (lambda d, f: _source(d)["columns"][2].update(name="Employer"), "columns[2].name: a column's name is lower-case"),
    (lambda d, f: d.update(rules="nowhere.yaml"), "rules: no catalogue file 'nowhere.yaml'"),
    (lambda d, f: (f / "rules.yaml").write_text((f / "rules.yaml").read_text(encoding="utf-8").replace(
        "[poverty_register, hukou, deaths, public_employees]", "[poverty_register, payroll]"), encoding="utf-8"),
     "rules: rules.yaml: rule RM_PUBLIC_EMPLOYEE: unknown source 'payroll' in needs"),
    (lambda d, f: (f / "rules.yaml").write_text((f / "rules.yaml").read_text(encoding="utf-8").replace(
        "source: public_employees", "source: public_employee"), encoding="utf-8"),
     "rule RM_PUBLIC_EMPLOYEE: unknown source 'public_employee' in evidence"),
])
def test_a_deployment_that_cannot_be_used_is_refused_naming_it(tmp_path, change, message):
    with pytest.raises(DeploymentError) as caught:
        read_deployment(_pack(tmp_path, change))
    assert message in str(caught.value)
    assert str(caught.value).startswith("deployment.yaml: ")


def test_the_command_line_refuses_a_bad_deployment_before_any_work(tmp_path, capsys):
    bad = _pack(tmp_path, lambda d, f: _source(d)["columns"][2].update(kind="money2"))
    (tmp_path / "landing" / "hukou").mkdir(parents=True)
    assert cli.main(["run", "--landing", str(tmp_path / "landing"), "--deployment", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refused: deployment.yaml: sources.public_employees.columns[2].kind: unknown kind 'money2'")
