"""The one clock: what "today" is for a run, and how a stored instant reads for people.

Instants are stored in UTC; people read them in the policy's time zone (``Policy.time_zone``, Asia/Shanghai by
default): a decision taken in Beijing at 07:30 is dated that day, not the day before. A run's "today" (the latest
date a record may carry, the day its 公示 starts) is a parameter of the flow that defaults to :func:`today`, so a
test or a deliberate re-run fixes it and nothing depends on the calendar it happens to run on.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Asia/Shanghai"


def now() -> datetime:
    """This instant, in UTC (what is stored)."""
    return datetime.now(timezone.utc)


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC, as stored and compared (a naive one is taken to be UTC already): SQLite keeps an instant
    as text without its offset, so one given in another zone would compare wrongly."""
    return instant.astimezone(timezone.utc) if instant.tzinfo is not None else instant.replace(tzinfo=timezone.utc)


def today(time_zone: str = DEFAULT_TIME_ZONE) -> date:
    """Today's date where the policy is (``time_zone``): the default of every run's and command's "today"."""
    return now().astimezone(ZoneInfo(time_zone)).date()


def local(instant: datetime | None, time_zone: str = DEFAULT_TIME_ZONE) -> datetime | None:
    """A stored instant as people read it (a naive stored value is UTC, as SQLite gives it back)."""
    import pandas as pd

    if instant is None or pd.isna(instant):
        return None
    instant = pd.Timestamp(instant).to_pydatetime()
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(ZoneInfo(time_zone))


def local_times(instants, time_zone: str = DEFAULT_TIME_ZONE):
    """Stored instants (a column) as people read them, without a time zone (what a workbook cell holds)."""
    import pandas as pd

    stamps = pd.to_datetime(instants, utc=True, errors="coerce")
    return stamps.dt.tz_convert(time_zone).dt.tz_localize(None)
