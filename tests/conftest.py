"""Shared fixtures: valid identity numbers and a generated county."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import AS_OF, valid_id


@pytest.fixture
def ids() -> list[str]:
    """Valid numbers: an elderly person born in 靖远县 before its code existed, one ending in X, others."""
    bodies = ["62042119500101001", "62042119800101123", "62042120100315002", "62042219920229004"]
    out = [valid_id(b) for b in bodies]
    x = next(v for n in range(100) if (v := valid_id(f"620421198001011{n:02d}")).endswith("X"))
    return out + [x]


@pytest.fixture(scope="session")
def county(tmp_path_factory) -> dict:
    """A small synthetic county, generated once per test session."""
    from jingzhun.synth import generate

    out = tmp_path_factory.mktemp("county")
    summary = generate(out, households=1500, seed=7, as_of=AS_OF)
    return {"out": out, "summary": summary, "landing": Path(summary["landing"])}


@pytest.fixture(scope="session")
def frames(county) -> dict:
    """The generated county's registers, read and staged (source -> usable rows)."""
    from jingzhun.contract import SOURCES
    from jingzhun.policy import Policy
    from jingzhun.readers import read_source
    from jingzhun.staging import STAGING

    return {name: STAGING[name](read_source(county["landing"], s)[0], Policy()).rows for name, s in SOURCES.items()}


PG_SERVER = "postgresql+psycopg://root@127.0.0.1:5432"


def _postgres_database():
    """A fresh database on the PostgreSQL of this machine, dropped afterwards."""
    import os
    import uuid

    import psycopg

    name = f"jz_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 dbname=postgres user=root", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs the PostgreSQL server on 127.0.0.1:5432: {exc}") from exc
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({exc}); CI runs these tests")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.sqlite),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path):
    """A fresh, empty warehouse on each backend: the embedded SQLite file and the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url():
    """A fresh, empty warehouse on the PostgreSQL server (production's backend)."""
    yield from _postgres_database()


@pytest.fixture(scope="session")
def province(tmp_path_factory) -> dict:
    """A synthetic province of three counties with its cross-county cases, generated once per test session."""
    from jingzhun.synth.province import generate_province

    out = tmp_path_factory.mktemp("province")
    summary = generate_province(out, counties=3, households=1500, seed=11, as_of=AS_OF)
    return {"out": out, "summary": summary, "landing": Path(summary["landing"])}
