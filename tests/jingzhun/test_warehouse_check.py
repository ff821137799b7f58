"""The warehouse a command names is checked before any work, for every command that takes one (the table is read
from the command line's own parser, so a new command cannot go untested): only run creates a warehouse, in a
folder that exists, and says so; a mistyped path, an unknown database kind or an unreachable server is one line,
exit 2, no traceback, no password."""

from __future__ import annotations

import argparse
import os

import pytest

from jingzhun import cli, warehouse

from helpers import published_empty


def _commands() -> dict[str, list[str]]:
    """Every command with --warehouse, as the words that call it with its required arguments filled in."""
    out = {}

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])
        if any(a.dest == "warehouse" for a in parser._actions):
            filled = []
            for a in parser._actions:
                if not a.option_strings and not isinstance(a, argparse._SubParsersAction):
                    filled.append("x")
                elif a.required:
                    filled += [a.option_strings[0], "x.xlsx" if a.dest == "out" else "x"]
            out[" ".join(words)] = [*words, *filled]
    walk(cli.parser(), [])
    return out


COMMANDS = _commands()


def test_the_table_holds_every_command_that_reads_a_warehouse():
    assert {"run", "flags export", "flags publicity", "review import", "review export", "rules preview", "household",
            "indicators"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"run"}))
def test_a_mistyped_warehouse_is_refused_and_not_created(command, tmp_path, capsys):
    missing = tmp_path / "warehuose.sqlite"
    assert cli.main([*COMMANDS[command], "--warehouse", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err
    assert "no warehouse at" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()


BEFORE_THE_FIRST_NIGHT = {c for c in COMMANDS if c.startswith("users ")}  # accounts are made before any run


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"run"} - BEFORE_THE_FIRST_NIGHT))
def test_a_warehouse_no_run_published_into_is_refused(command, tmp_path, capsys):
    from jingzhun import warehouse

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    warehouse.connect(url)  # the schema, and nothing published
    assert cli.main([*COMMANDS[command], "--warehouse", url]) == 2
    assert "holds no published run" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(BEFORE_THE_FIRST_NIGHT))
def test_the_users_commands_take_a_warehouse_before_its_first_night_but_not_a_file_that_is_none(command, tmp_path,
                                                                                                capsys):
    from jingzhun import warehouse

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    warehouse.connect(url)  # the schema, and nothing published
    cli.main([*COMMANDS[command], "--warehouse", url])
    assert "holds no published run" not in capsys.readouterr().err
    not_one = tmp_path / "notes.txt"
    not_one.write_text("not a database, a mistyped path\n" * 100)
    assert cli.main([*COMMANDS[command], "--warehouse", f"sqlite:///{not_one}"]) == 2
    assert "not a jingzhun warehouse" in capsys.readouterr().err


def test_run_refuses_a_folder_that_does_not_exist_and_says_when_it_creates_a_warehouse(tmp_path, capsys):
    nowhere = tmp_path / "no-such-folder" / "wh.sqlite"
    assert cli.main(["run", "--landing", str(tmp_path), "--warehouse", f"sqlite:///{nowhere}"]) == 2
    assert "no folder" in capsys.readouterr().err and not nowhere.parent.exists()
    from jingzhun.warehouse_check import check_warehouse

    assert "new warehouse created at" in check_warehouse(f"sqlite:///{tmp_path / 'new.sqlite'}", may_create=True)
    published_empty(f"sqlite:///{tmp_path / 'old.sqlite'}")
    assert check_warehouse(f"sqlite:///{tmp_path / 'old.sqlite'}", may_create=True) is None


@pytest.mark.parametrize("url, said", [
    ("postgres://jz:s3cret@127.0.0.1:5432/jz", "unknown database kind"),
    ("postgresql+psycopg://jz:s3cret@127.0.0.1:1/jz", "cannot reach the warehouse at 127.0.0.1:1/jz"),
    ("not a url", "not a database URL"),
])
def test_a_malformed_or_unreachable_warehouse_is_one_line_without_the_password(url, said, capsys, monkeypatch):
    monkeypatch.setenv("JINGZHUN_WAREHOUSE", url)  # where a password may be given (the process list hides it)
    assert cli.main(["flags", "export", "--out", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert said in err and "s3cret" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["flags", "export", "--warehouse", "postgresql+psycopg://jz:s3cret@127.0.0.1/jz", "--out", "x.csv"],
    ["run", "--landing", ".", "--warehouse=postgresql://jz:s3cret@db.example/jz"],
    ["review", "export", "--out", "x.xlsx", "--warehouse", "sqlite://u:s3cret@/x.sqlite"],
    ["flags", "export", "--out", "x.csv", "--warehouse", "postgresql+psycopg://jz@127.0.0.1/jz?password=s3cret"],
    ["flags", "export", "--out", "x.csv", "--warehouse", "postgresql+psycopg://jz:s3/cret@127.0.0.1/jz"],
])
def test_a_password_on_the_command_line_is_refused_at_once_naming_the_safe_ways(argv, capsys, tmp_path, monkeypatch):
    """The process list shows every argument to every user for as long as the command runs: a URL with a
    password is refused before anything is parsed, read or connected, and the refusal names the safe ways."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a password" in err and "JINGZHUN_WAREHOUSE" in err and ".pgpass" in err and "service" in err
    assert "s3cret" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written, no warehouse created


def test_the_password_check_names_each_place_and_lets_a_url_without_one_pass():
    assert cli.secret_arguments(["--warehouse", "postgresql+psycopg://jz@127.0.0.1/jz",
                                 "--spark-master", "spark://10.0.0.9:7077"]) == []
    assert cli.secret_arguments(["x", "--warehouse", "postgresql://a:b@h/d"]) == [3]


def test_a_service_file_is_one_of_the_safe_ways(postgres_url, tmp_path, monkeypatch, capsys):
    """What the refusal names works: the warehouse named by a PostgreSQL service file (no password anywhere)."""
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    (tmp_path / "pg_service.conf").write_text(f"[jingzhun]\nhost={server.host}\nport={server.port}\n"
                                              f"user={server.username}\ndbname={server.database}\n", encoding="utf-8")
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "pg_service.conf"))
    published_empty(postgres_url)
    out = tmp_path / "flags.csv"
    assert cli.main(["flags", "export", "--warehouse", "postgresql+psycopg:///?service=jingzhun", "--out", str(out)]) == 0
    assert out.is_file() and "0 flags" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["postgresql+psycopg://jz@db/jz?sslmode=require&password=s3cret",
                                 "postgresql+psycopg://jz:s3/c ret@db/jz"])
def test_a_password_in_the_query_or_with_slashes_is_taken_out_wherever_a_url_is_shown(url, monkeypatch):
    """libpq takes ``?password=`` too, and SQLAlchemy reads a password holding ``/`` or a space: the warehouse URL
    passed on and a database source's recorded label (its rows' ``_file``) hold neither."""
    from jingzhun.landing import DatabaseSource

    monkeypatch.delenv(warehouse.PASSWORD_VARIABLE, raising=False)
    shown = warehouse.without_password(url)
    assert "s3" not in shown and "password" not in shown and shown.startswith("postgresql+psycopg://jz@db/jz")
    assert os.environ[warehouse.PASSWORD_VARIABLE] in ("s3cret", "s3/c ret")
    label = DatabaseSource(url=url, query="SELECT 1").label
    assert "s3" not in label and "password" not in label
