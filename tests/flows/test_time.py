"""Time does not run backwards by accident: a run dated before the last published one is refused (exit 2, naming
both dates) unless it is a dry run, or a deliberate re-run (--earlier) that keeps every decision."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select, update

from jingzhun import cli, warehouse

from helpers import AS_OF

pytestmark = [pytest.mark.slow, pytest.mark.sqlite]
EARLIER = date(2026, 10, 1)


def run(county, url: str, as_of: date, *extra: str) -> int:
    return cli.main(["run", "--landing", str(county["landing"]), "--warehouse", url, "--as-of", as_of.isoformat(),
                     "--today", AS_OF.isoformat(), *extra])


def flags(url: str) -> pd.DataFrame:
    with warehouse.connect(url).connect() as conn:
        return pd.read_sql(select(warehouse.flags.c.flag_key, warehouse.flags.c.status), conn).sort_values(
            "flag_key").reset_index(drop=True)


def test_an_earlier_as_of_is_refused_then_looked_at_then_rerun_keeping_every_decision(county, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    assert run(county, url, AS_OF) == 0
    with warehouse.connect(url).begin() as conn:
        conn.execute(update(warehouse.flags).values(status="confirmed"))
    decided = flags(url)
    capsys.readouterr()

    assert run(county, url, EARLIER) == 2
    err = capsys.readouterr().err
    assert "2026-10-01" in err and "2026-11-22" in err and "--earlier" in err and "Traceback" not in err
    pd.testing.assert_frame_equal(flags(url), decided)

    assert run(county, url, EARLIER, "--dry-run") in (0, 3)
    pd.testing.assert_frame_equal(flags(url), decided)

    assert run(county, url, EARLIER, "--earlier") in (0, 3)
    after = flags(url)
    kept = after[after["flag_key"].isin(decided["flag_key"])]
    assert kept["status"].eq("confirmed").all() and len(kept) == len(decided)  # not one confirmation lost
