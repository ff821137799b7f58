"""The audit log (signoff.md): one append-only row per login, failed login, step, full-number view, export and user
change. (A first cut: record only; the reader and the rest of the events come with the users' module.)"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert

from jingzhun import warehouse


class Event(StrEnum):
    login = "login"
    login_failed = "login_failed"
    locked = "locked"
    logout = "logout"
    step = "step"
    full_number_view = "full_number_view"
    export = "export"
    import_ = "import"
    user_added = "user_added"
    user_disabled = "user_disabled"
    password_changed = "password_changed"
    token_issued = "token_issued"
    page_denied = "page_denied"


def record(conn, actor: str, event: Event, object_type=None, object_key=None, area=None, origin=None, detail=None,
           now: datetime | None = None) -> None:
    """One row, in the caller's transaction."""
    conn.execute(insert(warehouse.audit_log).values(
        at=now or warehouse.now(), actor=str(actor)[:64], action=Event(event).value, object_type=object_type,
        object_key=object_key, area=area, origin=(origin or None) and str(origin)[:64], detail=detail))
