"""YAML a deployment supplies is read without anchors or aliases: a "billion laughs" of under 1 KB in a policy,
sources, deployment, rules or cases file is refused at its first anchor, in about a second, with exit 2 and a
line naming the file and line (it ended in a MemoryError traceback after 26 s); the shipped catalogue keeps its
own anchors."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from jingzhun import cli, yamlfile
from jingzhun.catalogue import CATALOGUE, CatalogueError, load_catalogue, read_catalogue
from jingzhun.deployment import DeploymentError, read_deployment
from jingzhun.landing import load_database_sources
from jingzhun.policy import PolicyError, load_policy
from jingzhun.synth.cases import pack_cases

from helpers import AS_OF, published_empty

LAUGHS = "".join(f"{a}: &{a} [{', '.join([f'*{b}'] * 9)}]\n" for b, a in zip("abcdefgh", "bcdefghi"))
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + LAUGHS   # 9**9 values


def write(path, text: str = BOMB):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bomb_is_under_1_kb_and_refused_at_its_first_anchor():
    assert len(BOMB.encode()) < 1024
    started = time.monotonic()
    with pytest.raises(yamlfile.YamlFileError) as refused:
        yamlfile.parse(BOMB, "deployment.yaml")
    assert time.monotonic() - started < 0.1
    assert str(refused.value).startswith("deployment.yaml: 第1行使用了 YAML 锚点或别名")
    assert "line 1: a YAML anchor or alias" in str(refused.value)


@pytest.mark.parametrize("text, line", [
    ("a: 1\nb: *a\n", 2),                                        # an alias of nothing
    ("base: &base {url: x}\nhukou:\n  <<: *base\n", 1),          # a merge key needs an anchor
    ("rules:\n  R1:\n    needs: &n [hukou]\n", 3),
])
def test_any_anchor_or_alias_is_refused_naming_its_line(text, line):
    with pytest.raises(yamlfile.YamlFileError, match=f"x.yaml: 第{line}行.*line {line}: a YAML anchor or alias"):
        yamlfile.parse(text, "x.yaml")


def test_text_that_is_not_yaml_is_named_by_line_never_quoted():
    with pytest.raises(yamlfile.YamlFileError) as refused:
        yamlfile.parse("a: 1\nb: [张三, 620421195001010019\n", "x.yaml")
    message = str(refused.value)
    assert "cannot be read as YAML at line" in message and "张三" not in message and "6204211950" not in message


def test_plain_configuration_still_reads():
    assert yamlfile.parse("a: [1, 2]\nb: {c: 是}\n", "x.yaml") == {"a": [1, 2], "b": {"c": "是"}}


def test_the_shipped_catalogue_keeps_its_anchors_and_a_copy_of_it_elsewhere_does_not(tmp_path):
    assert "&living" in CATALOGUE.read_text(encoding="utf-8") and load_catalogue().rules
    copy = write(tmp_path / "rules.yaml", CATALOGUE.read_text(encoding="utf-8"))
    with pytest.raises(CatalogueError, match="rules.yaml: 第[0-9]+行使用了 YAML 锚点或别名"):
        read_catalogue(copy)


@pytest.mark.parametrize("read, error, name", [
    (load_policy, PolicyError, "policy.yaml"),
    (read_deployment, DeploymentError, "deployment.yaml"),
    (read_catalogue, CatalogueError, "rules.yaml"),
    (pack_cases, DeploymentError, "cases.yaml"),
    (load_database_sources, yamlfile.YamlFileError, "sources.yaml"),
])
def test_every_reader_of_a_deployments_yaml_refuses_the_bomb(tmp_path, read, error, name):
    started = time.monotonic()
    with pytest.raises(error, match=f"{name}: 第1行使用了 YAML 锚点或别名"):
        read(write(tmp_path / name))
    assert time.monotonic() - started < 1


@pytest.fixture
def landing(tmp_path):
    (tmp_path / "landing" / "hukou").mkdir(parents=True)
    return tmp_path / "landing"


@pytest.mark.parametrize("option, name", [("--deployment", "deployment.yaml"), ("--sources-config", "sources.yaml"),
                                          ("--config", "policy.yaml")])
def test_jingzhun_run_refuses_the_bomb_with_exit_2_in_about_a_second(tmp_path, landing, option, name):
    bomb = write(tmp_path / name)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "jingzhun.cli", "run", "--landing", str(landing), option, str(bomb),
                           "--warehouse", f"sqlite:///{tmp_path / 'wh.sqlite'}", "--as-of", AS_OF.isoformat()],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("refused: ") and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert f"{name}: 第1行使用了 YAML 锚点或别名" in done.stderr
    assert elapsed < 10                    # the interpreter and its imports included; the refusal itself is ms
    assert not (tmp_path / "wh.sqlite").exists()


@pytest.mark.parametrize("name", ["rules.yaml", "deployment.yaml"])
def test_rules_preview_refuses_a_bomb_in_its_folder_with_exit_2(tmp_path, capsys, name):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    published_empty(url)
    folder = tmp_path / "pack"
    write(folder / "rules.yaml", "rules: {}\n")
    write(folder / name)
    started = time.monotonic()
    assert cli.main(["rules", "preview", "--rules", str(folder), "--warehouse", url]) == 2
    assert time.monotonic() - started < 2
    err = capsys.readouterr().err
    assert err.startswith(f"refused: {name}: 第1行使用了 YAML 锚点或别名") and "Traceback" not in err


@pytest.mark.parametrize("read, error, name", [
    (load_policy, PolicyError, "policy.yaml"),
    (read_deployment, DeploymentError, "deployment.yaml"),
    (read_catalogue, CatalogueError, "rules.yaml"),
    (load_database_sources, yamlfile.YamlFileError, "sources.yaml"),
])
def test_nesting_too_deep_for_a_configuration_is_refused_in_one_line(tmp_path, read, error, name):
    """A few hundred brackets in under 1 KB made PyYAML's composer recurse past Python's limit (a traceback)."""
    deep = "a: " + "[" * 400 + "]" * 400 + "\n"
    assert len(deep) < 1024
    with pytest.raises(error, match=f"{name}: 嵌套层数过深"):
        read(write(tmp_path / name, deep))


def test_a_file_far_longer_than_a_configuration_is_refused_before_it_is_parsed(tmp_path):
    huge = "".join(f"k{i}: {i}\n" for i in range(600_000))
    started = time.monotonic()
    with pytest.raises(PolicyError, match="policy.yaml: 文件过大"):
        load_policy(write(tmp_path / "policy.yaml", huge))
    assert time.monotonic() - started < 2
