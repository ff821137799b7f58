"""The audit log (signoff.md, "The audit log"): who did what, when, to which object, from where.

Grain: one row of ``audit_log`` per event: a login or failed login, a logout, a step, a view of a household's full
identity numbers, an export or import, a change to a user, a data-problem ticket opened, answered or closed. The table
is append-only (a trigger of migration 0008 refuses UPDATE and DELETE on both backends); :func:`record` is the only
writer and takes the caller's connection, so an event is stored in the same transaction as what it records, or not
at all.

A row names objects by their keys (a flag key, a household id, a user name), never by an identity number; its
``area`` is the object's division code and decides who may read it (:func:`rows`, filtered by the database).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pandas as pd
from sqlalchemy import Connection, Engine, Table, and_, false, or_, select

from jingzhun.clock import utc
from jingzhun.privacy import mask_id_shaped
from jingzhun.schema import audit_log
from jingzhun.signoff.access import Actor, area_valid, in_area
from jingzhun.signoff.stages import Role


class Event(StrEnum):
    login = "login"
    login_failed = "login_failed"
    locked = "locked"                       # failures in a row locked the account
    logout = "logout"
    step = "step"                           # a step of the sign-off chain
    full_number_view = "full_number_view"   # a page or answer showed a household's full identity numbers
    export = "export"
    import_ = "import"
    user_added = "user_added"
    user_disabled = "user_disabled"
    password_changed = "password_changed"
    token_issued = "token_issued"
    page_denied = "page_denied"             # a page or call outside the actor's role
    ticket_opened = "ticket_opened"         # a data-problem ticket sent to a department (jingzhun/tickets.py)
    ticket_answered = "ticket_answered"     # the department's answer recorded
    ticket_closed = "ticket_closed"


ORIGIN_CHARS = 64  # what a row keeps of an origin (the column's width): who counts rows by origin compares this much
COLUMNS = ["audit_id", "at", "actor", "action", "object_type", "object_key", "area", "origin", "detail"]
READERS = frozenset({Role.auditor, Role.county, Role.steward})  # who may read the log at all


def record(conn: Connection, actor: str, event: Event, object_type: str | None = None, object_key: str | None = None,
           area: str | None = None, origin: str | None = None, detail: str | None = None,
           now: datetime | None = None) -> None:
    """One row: ``actor`` (a user's name, or the name tried at a failed login) did ``event`` to the object
    (``object_type``, ``object_key``: a key, never an identity number) of division code ``area`` (None: no area, such
    as an auditor's account), from ``origin`` (a client address, ``"cli"``). ``detail`` is masked of anything shaped
    like an identity number. Inside the caller's transaction: rolled back with it."""
    from jingzhun.warehouse import now as current

    conn.execute(audit_log.insert().values(
        at=utc(now or current()), actor=str(actor)[:64], action=Event(event).value,
        object_type=None if object_type is None else str(object_type)[:16],
        object_key=None if object_key is None else str(object_key)[:64],
        area=area or None, origin=None if origin is None else str(origin)[:ORIGIN_CHARS],
        detail=None if detail is None else mask_id_shaped(str(detail))))


def visible(actor: Actor, log: Table = audit_log):
    """The SQL condition "the actor may read this row of the log": its area within theirs; a row of no area only for
    an auditor and for a steward of a whole province. False for a role that may not read the log. (``log``: the
    table, or an alias of it.)"""
    role = Role(actor.role)
    if role not in READERS or not area_valid(role, actor.area):
        return false()
    condition = in_area(actor, log.c.area)
    if role == Role.auditor or (role == Role.steward and len(actor.area) == 2):
        condition = or_(condition, log.c.area.is_(None))
    return condition


def rows(engine_or_conn: Engine | Connection, actor: Actor, since: datetime | None = None,
         limit: int = 1000, before: int | None = None) -> pd.DataFrame:
    """The newest ``limit`` rows (at or after ``since``) the actor may read, newest first (by time, then id),
    filtered in SQL (:func:`visible`); an empty frame, with the columns, for a role that may not read the log.

    ``before`` pages on: only the rows that come after the row of that id in this order (keyset paging: a page
    stays the same however many rows are logged meanwhile). A row the actor may not read, or none, gives none."""
    query = select(*[audit_log.c[c] for c in COLUMNS]).where(visible(actor))
    if since is not None:
        query = query.where(audit_log.c.at >= utc(since))
    if before is not None:
        anchor = audit_log.alias("anchor")
        at = select(anchor.c.at).where(anchor.c.audit_id == int(before), visible(actor, anchor)).scalar_subquery()
        query = query.where(or_(audit_log.c.at < at, and_(audit_log.c.at == at, audit_log.c.audit_id < int(before))))
    query = query.order_by(audit_log.c.at.desc(), audit_log.c.audit_id.desc()).limit(max(0, int(limit)))
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            found = conn.execute(query).all()
    else:
        found = engine_or_conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in found], columns=COLUMNS)
