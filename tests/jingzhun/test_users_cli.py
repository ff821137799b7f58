"""``jingzhun users …`` on real warehouses of both backends: a password comes as one line on stdin or is generated
and printed once, a token is the last line printed, and every mistake is one line and exit 2, without the password."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from helpers import published_empty
from jingzhun import auth, cli
from jingzhun.policy import SignoffSettings

POLICY = SignoffSettings()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(monkeypatch, capsys, argv: list[str], stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", stdin if stdin is not None else io.StringIO(""))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_users_add_list_password_token_and_disable(warehouse_url, monkeypatch, capsys):
    engine = published_empty(warehouse_url)
    w = ["--warehouse", warehouse_url]
    code, out, _ = _run(monkeypatch, capsys, ["users", "add", "张三", "--role", "county", "--area", "620421", *w])
    assert code == 0
    generated = out.splitlines()[-1]
    assert len(generated) == 16 and out.count(generated) == 1
    assert auth.login(engine, "张三", generated, "cli-test", POLICY)[0].area == "620421"

    code, out, _ = _run(monkeypatch, capsys, ["users", "add", "audit1", "--role", "auditor", *w],
                        io.StringIO("a piped password\nnot this line\n"))
    assert code == 0 and "a piped password" not in out
    assert auth.login(engine, "audit1", "a piped password", "cli-test", POLICY)[0].area == ""

    code, out, _ = _run(monkeypatch, capsys, ["users", "password", "张三", *w], Terminal("typed at a terminal\n"))
    assert code == 0
    renewed = out.splitlines()[-1]
    assert len(renewed) == 16 and renewed != generated
    assert auth.login(engine, "张三", renewed, "cli-test", POLICY)[0].username == "张三"

    code, out, _ = _run(monkeypatch, capsys, ["users", "password", "张三", *w], io.StringIO("chosen password 2\r\n"))
    assert code == 0 and "chosen password 2" not in out
    auth.login(engine, "张三", "chosen password 2", "cli-test", POLICY)

    code, out, _ = _run(monkeypatch, capsys, ["users", "token", "张三", *w])
    token = out.splitlines()[-1]
    assert code == 0 and auth.token_actor(engine, token).username == "张三"

    code, out, _ = _run(monkeypatch, capsys, ["users", "list", *w])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["username", "role", "area", "disabled", "locked_until", "created_at"]
    assert [line.split()[:4] for line in lines[1:]] == [["audit1", "auditor", "(all)", "False"],
                                                        ["张三", "county", "620421", "False"]]
    assert "$argon2" not in out and "password" not in out

    code, out, _ = _run(monkeypatch, capsys, ["users", "disable", "张三", *w])
    assert code == 0 and auth.token_actor(engine, token) is None
    assert auth.list_users(engine).set_index("username").loc["张三", "disabled"]


@pytest.mark.parametrize("argv, stdin, said", [
    (["users", "add", "ana", "--role", "county", "--area", "62042"], "", "6 digits"),
    (["users", "add", "ana", "--role", "mayor", "--area", "620421"], "", "unknown role"),
    (["users", "add", "an a", "--role", "county", "--area", "620421"], "", "user name"),
    (["users", "add", "ana", "--role", "county", "--area", "620421"], "too short\n", "at least 10"),
    (["users", "add", "bob", "--role", "county", "--area", "620421"], "", "taken"),
    (["users", "password", "ana"], "", "no such user"),
    (["users", "password", "bob"], "too short\n", "at least 10"),
    (["users", "token", "ana"], "", "no such user"),
    (["users", "disable", "ana"], "", "no such user"),
])
def test_a_mistake_is_one_line_and_exit_2(argv, stdin, said, tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    auth.add_user(published_empty(url), "bob", "county", "620421", "bobs password")
    code, out, err = _run(monkeypatch, capsys, [*argv, "--warehouse", url], io.StringIO(stdin))
    assert code == 2 and out == ""
    assert err.startswith("refused: ") and err.count("\n") == 1 and said in err
    assert "too short" not in err


def test_a_mistake_on_postgresql_is_one_line_and_exit_2(postgres_url, monkeypatch, capsys):
    published_empty(postgres_url)
    argv = ["users", "add", "ana", "--role", "village", "--area", "620421", "--warehouse", postgres_url]
    code, out, err = _run(monkeypatch, capsys, argv)
    assert code == 2 and err.startswith("refused: ") and err.count("\n") == 1 and "12 digits" in err
    code, _, err = _run(monkeypatch, capsys, ["users", "disable", "ana", "--warehouse", postgres_url])
    assert code == 2 and "no such user" in err


def test_a_password_piped_to_the_command_is_the_accounts_and_is_never_printed(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = published_empty(url)
    env = {**os.environ, "JINGZHUN_WORK": str(tmp_path / "work")}
    env.pop("JINGZHUN_WAREHOUSE", None)
    done = subprocess.run([sys.executable, "-m", "jingzhun.cli", "users", "add", "li.si", "--role", "township",
                           "--area", "620421100", "--warehouse", url], input="piped secret 123\n",
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "piped secret 123" not in done.stdout + done.stderr
    actor, _, _ = auth.login(engine, "li.si", "piped secret 123", "cli-test", POLICY)
    assert (actor.role, actor.area) == ("township", "620421100")


def test_accounts_are_made_before_the_first_night_but_not_in_a_warehouse_that_is_not_there(warehouse_url, tmp_path,
                                                                                            monkeypatch, capsys):
    from jingzhun import warehouse

    warehouse.connect(warehouse_url).dispose()   # a warehouse with its schema and no run published yet
    code, out, err = _run(monkeypatch, capsys, ["users", "add", "li", "--role", "steward", "--area", "620421",
                                                "--warehouse", warehouse_url])
    assert code == 0, err
    code, out, _ = _run(monkeypatch, capsys, ["users", "list", "--warehouse", warehouse_url])
    assert code == 0 and "li" in out
    missing = f"sqlite:///{tmp_path / 'typo.sqlite'}"
    code, _, err = _run(monkeypatch, capsys, ["users", "add", "li", "--role", "steward", "--area", "620421",
                                              "--warehouse", missing])
    assert code == 2 and "no warehouse at" in err and not (tmp_path / "typo.sqlite").exists()
    code, _, err = _run(monkeypatch, capsys, ["flags", "export", "--warehouse", warehouse_url,
                                              "--out", str(tmp_path / "f.csv")])
    assert code == 2 and "holds no published run" in err          # every other command still needs a published run
