"""``jingzhun run`` refuses bad parameters up front: before any server starts or any file is read, with exit 2
and a message naming the parameter or policy key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jingzhun import cli

from helpers import AS_OF


@pytest.fixture
def landing(tmp_path):
    (tmp_path / "landing" / "hukou").mkdir(parents=True)
    return tmp_path / "landing"


def _config(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("config, named", [
    ("stale_after_dayz: 3\n", "stale_after_dayz: unknown key"),
    ("stale_after_days: soon\n", "stale_after_days"),
    ("max_shrink_share: -0.1\n", "max_shrink_share"),
    ("max_invalid_id_share: 1.5\n", "max_invalid_id_share"),
    ("publicity_show_first: -1\n", "publicity_show_first"),
    ("publicity_show_last: -3\n", "publicity_show_last"),
    ("publicity_show_first: 10\n", "publicity_show_first"),     # would show the birth date
    ("limits: {max_sheet_cells: 0}\n", "limits.max_sheet_cells"),
    ("vocab: {colour: {}}\n", "vocab.colour: unknown key"),
    ("- a list\n", "a mapping"),
])
def test_a_bad_policy_file_is_refused_naming_the_key(tmp_path, landing, capsys, config, named):
    code = cli.main(["run", "--landing", str(landing), "--config", _config(tmp_path, config)])
    assert code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize("args, named", [
    (["--config", "/no/such/policy.yaml"], "no such policy file"),
    (["--as-of", "0001-01-01"], "--as-of 0001-01-01"),
    (["--as-of", "2015-06-01"], "no income_line for 2015"),
    (["--region", ""], "--region ''"),
    (["--region", "6204x"], "--region '6204x'"),
    (["--sources", "hukou,colour"], "unknown colour"),
])
def test_bad_parameters_are_refused_before_any_work(landing, capsys, args, named):
    assert cli.main(["run", "--landing", str(landing), *args]) == 2
    assert named in capsys.readouterr().err


def test_a_landing_folder_that_does_not_exist_or_holds_no_source_is_refused(tmp_path, capsys):
    assert cli.main(["run", "--landing", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["run", "--landing", str(tmp_path / "empty")]) == 2
    assert "holds none of the source folders" in capsys.readouterr().err


def test_an_unknown_policy_key_exits_2_without_starting_prefect(tmp_path, landing):
    """The process that refuses never imports Prefect (so no server starts: measured at about 1 s)."""
    config = _config(tmp_path, "stale_after_dayz: 3\n")
    probe = ("import sys; from jingzhun import cli; code = cli.main(sys.argv[1:]); "
             "print('prefect imported' if 'prefect' in sys.modules else 'prefect not imported'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, "run", "--landing", str(landing), "--config", config,
                           "--as-of", AS_OF.isoformat()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "stale_after_dayz: unknown key" in done.stderr and "Traceback" not in done.stderr
    assert "prefect not imported" in done.stdout


def test_an_unknown_region_on_a_fresh_warehouse_is_refused_without_a_traceback(county, tmp_path):
    done = subprocess.run([sys.executable, "-m", "jingzhun.cli", "run", "--landing", str(county["landing"]),
                           "--warehouse", f"sqlite:///{tmp_path / 'fresh.sqlite'}", "--region", "629999",
                           "--as-of", AS_OF.isoformat(), "--today", AS_OF.isoformat()],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2
    assert "refused: unknown region '629999'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
