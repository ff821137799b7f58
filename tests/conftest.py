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
