"""Storage conditions (a full disk, a read-only or busy warehouse) told from the drivers' real errors, without
their messages (jingzhun.storage); the runs that meet them are in tests/flows/test_storage.py."""

from __future__ import annotations

import sqlite3

import pytest


@pytest.mark.parametrize("make, kind", [("readonly", "NotWritable"), ("locked", "StorageBusy"),
                                        ("other", None)])
def test_storage_conditions_are_told_from_the_drivers_real_errors(make, kind, tmp_path):
    from jingzhun.storage import storage_problem

    path = tmp_path / "x.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.commit()
    if make == "readonly":
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        sql = "INSERT INTO t VALUES ('张三')"
    elif make == "locked":
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        conn = sqlite3.connect(path, timeout=0.1)
        sql = "INSERT INTO t VALUES ('张三')"
    else:
        conn, sql = sqlite3.connect(path), "INSERT INTO nowhere VALUES ('张三')"
    with pytest.raises(sqlite3.Error) as raised:
        conn.execute(sql)
    problem = storage_problem(raised.value)
    assert (type(problem).__name__ if problem else None) == kind
    assert problem is None or "张三" not in str(problem)
