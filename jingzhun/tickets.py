"""Data-problem tickets (signoff.md, the steward's "data-problem tickets to departments"): what a steward sent back
to a department about its register, to whom, when, and whether and how it was answered.

Grain: one row of ``tickets`` per ticket. A ticket goes ``open`` → ``answered`` (the department's answer, as the
steward recorded it) → ``closed``; an open ticket may be closed unanswered (withdrawn, or settled another way).
Every change is one row of the audit log, in the same transaction (:func:`jingzhun.audit.record`).

Who (our choice; the spec names the tickets among the steward's pages only): a steward opens, answers and closes the
tickets of their area (:data:`WRITERS`). A county and an auditor may read them within their area (:data:`READERS`),
never write: the departments are the county's own bureaus and the county follows up what stays unanswered; what
was asked and answered is the auditor's to check. A village or township sees none: a ticket speaks of a
department's files, not of a place. A ticket's area is a division-code prefix within its steward's area: the run's
region when it was opened from a run of a part of that area, a part the steward names, else the steward's whole
area. A reader sees the tickets whose area lies within theirs, filtered by the database, and a ticket outside answers
exactly as one that does not exist (404): a province steward's ticket about one county's run is that county's to
read, one about the whole province is not every county's.

What is wrong is said in words: files, rows and columns, never a cell's value. The words a run pre-fills
(:func:`jingzhun.run_report.problems`) say nothing else; typed words are cleaned as the chain cleans a reason
(invisible characters out, spaces trimmed, line by line) and refused (422, saying why) when empty, too long or
holding anything shaped like an identity number: never cut or changed silently. A name typed into the text cannot
be told from other words; the form asks for none.

These are pure functions on the caller's connection: the caller's transaction holds the change and its audit row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import pandas as pd
from sqlalchemy import Connection, case, false, func, insert, select, update

from jingzhun import audit
from jingzhun import normalise as nz
from jingzhun.clock import utc
from jingzhun.contract import SOURCES
from jingzhun.privacy import Refused, typed_id_number
from jingzhun.schema import audit_log, runs, tickets
from jingzhun.signoff.access import Actor, Unknown, area_valid, in_area, runs_visible
from jingzhun.signoff.stages import Role


class Status(StrEnum):
    open = "open"            # sent, waiting for the department
    answered = "answered"    # the department's answer recorded
    closed = "closed"


STATUS_TITLES = {Status.open: "待答复", Status.answered: "已答复", Status.closed: "已关闭"}
WRITERS = frozenset({Role.steward})
READERS = frozenset({Role.steward, Role.county, Role.auditor})
SUBJECT_CHARS = ANSWER_CHARS = 2000
NAME_CHARS = 64
AREA_LENGTHS = (2, 4, 6, 9, 12)  # a division-code prefix: province, prefecture, county, township, village
LISTED = 500  # tickets a page lists (newest first within each department and status; the counts count them all)
COLUMNS = ["ticket_id", "area", "department", "source", "run_id", "subject", "opened_by", "opened_at", "answered_at",
           "answered_by", "answer", "closed_at", "closed_by", "status"]


class NotAllowed(Refused):
    """Not a steward's own area, or not a role that writes tickets (HTTP 403)."""

    status = 403


class Changed(Refused):
    """The ticket was answered or closed since the page was produced (HTTP 409)."""

    status = 409


class Malformed(Refused):
    """What was typed cannot be kept as typed: empty, too long, an identity number in it, an unknown source or
    department (HTTP 422)."""

    status = 422


def departments() -> list[str]:
    """The departments tickets go to: those of the contract's sources, in the contract's order, each once."""
    return list(dict.fromkeys(s.department for s in SOURCES.values() if s.department))


def clean(text: str | None, limit: int, what: str, required: bool = True) -> str:
    """Typed text as it is kept: each line cleaned of control, invisible and filler characters and trimmed, blank
    lines at the ends dropped; refused (:class:`Malformed`) when nothing is left of a required text, when longer than
    ``limit``, or when it holds something shaped like an identity number (spaces and dashes between its digits too)."""
    lines = str(text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cleaned = nz.strip_invisible(pd.Series(lines, dtype="str"), marks=True)[0].str.strip()
    out = "\n".join(cleaned).strip("\n")
    if required and not out:
        raise Malformed(f"请填写{what} ({what} is required)")
    if len(out) > limit:
        raise Malformed(f"{what}过长:最多 {limit} 个字,现有 {len(out)} 个 (too long)")
    if typed_id_number(out):
        raise Malformed(f"{what}中不能写身份证号:请写明文件、行号和列名,不写单元格的值 (no identity numbers)")
    return out


def visible(actor: Actor):
    """The SQL condition "the actor may read this ticket": a reader's role, the ticket's area within theirs."""
    if Role(actor.role) not in READERS or not area_valid(actor.role, actor.area):
        return false()
    return in_area(actor, tickets.c.area)


def _writer(actor: Actor) -> None:
    if Role(actor.role) not in WRITERS or not area_valid(actor.role, actor.area) or not actor.area:
        raise NotAllowed("只有数据管理员可以开具、答复和关闭问题单 (only a data steward writes tickets)")


def _found(conn: Connection, actor: Actor, ticket_id: int):
    row = conn.execute(select(tickets).where(tickets.c.ticket_id == int(ticket_id), visible(actor))).first()
    if row is None:
        raise Unknown("没有这个问题单 (no such ticket)")
    return row


def open_ticket(conn: Connection, actor: Actor, source: str, subject: str, department: str | None = None,
                run_id: str | None = None, origin: str | None = None, now: datetime | None = None,
                area: str | None = None) -> int:
    """A new ticket from the steward ``actor`` to ``department`` (default: the source's) about ``source``; its id.
    ``run_id``, when given, must be a run the steward may see (else :class:`Unknown`, as for no such run). Its area:
    ``area`` when given (a division-code prefix within the steward's), else the run's region when that lies within
    the steward's area, else the steward's area."""
    from jingzhun.warehouse import now as current

    _writer(actor)
    if source not in SOURCES:
        raise Malformed("请选择数据源 (an unknown source)")
    department = clean(department, NAME_CHARS, "部门", required=False) or SOURCES[source].department
    if department not in departments():
        raise Malformed("请从列表中选择部门 (an unknown department)")
    subject = clean(subject, SUBJECT_CHARS, "问题说明")
    run_id, region = (run_id or "").strip() or None, None
    if run_id is not None:
        found = conn.execute(select(runs.c.region).where(runs.c.run_id == run_id, runs_visible(actor))).first()
        if found is None:
            raise Unknown("没有这次运行 (no such run)")
        region = found.region
    area = _area(actor, area, region)
    when = utc(now or current())
    ticket_id = conn.execute(insert(tickets).values(
        area=area, department=department, source=source, run_id=run_id, subject=subject,
        opened_by=actor.username, opened_at=when, status=Status.open.value)).inserted_primary_key[0]
    audit.record(conn, actor.username, audit.Event.ticket_opened, "ticket", str(ticket_id), area, origin,
                 detail=f"{source} → {department}" + (f" (run {run_id})" if run_id else ""), now=when)
    return int(ticket_id)


def _area(actor: Actor, typed: str | None, region: str | None) -> str:
    """A ticket's area (see the module's docstring); a typed one that is no part of the steward's area is refused."""
    typed = (typed or "").strip()
    if typed:
        if not (typed.isascii() and typed.isdigit() and len(typed) in AREA_LENGTHS and typed.startswith(actor.area)):
            raise Malformed("辖区须为本人辖区内的区划代码(2、4、6、9 或 12 位) (an area within the steward's)")
        return typed
    if region and region.isdigit() and len(region) in AREA_LENGTHS and region.startswith(actor.area):
        return region
    return actor.area


def answer_ticket(conn: Connection, actor: Actor, ticket_id: int, answer: str, answered_by: str = "",
                  origin: str | None = None, now: datetime | None = None) -> None:
    """Record the department's answer to an open ticket (who answered for it, optional)."""
    from jingzhun.warehouse import now as current

    _writer(actor)
    row = _found(conn, actor, ticket_id)
    if row.status != Status.open:
        raise Changed("该问题单已答复或已关闭,请刷新页面 (already answered or closed)")
    answer = clean(answer, ANSWER_CHARS, "答复")
    answered_by = clean(answered_by, NAME_CHARS, "答复人", required=False) or None
    when = utc(now or current())
    _move(conn, row, Status.answered, answer=answer, answered_by=answered_by, answered_at=when)
    audit.record(conn, actor.username, audit.Event.ticket_answered, "ticket", str(row.ticket_id), row.area, origin,
                 now=when)


def close_ticket(conn: Connection, actor: Actor, ticket_id: int, origin: str | None = None,
                 now: datetime | None = None) -> None:
    """Close a ticket, answered or not."""
    from jingzhun.warehouse import now as current

    _writer(actor)
    row = _found(conn, actor, ticket_id)
    if row.status == Status.closed:
        raise Changed("该问题单已关闭 (already closed)")
    when = utc(now or current())
    _move(conn, row, Status.closed, closed_at=when, closed_by=actor.username)
    audit.record(conn, actor.username, audit.Event.ticket_closed, "ticket", str(row.ticket_id), row.area, origin,
                 detail=f"was {row.status}", now=when)


def _move(conn: Connection, row, status: Status, **values) -> None:
    """The ticket from the status it was read in to ``status``; of two people moving it at once, the second is
    refused (the status read is in the UPDATE's WHERE)."""
    done = conn.execute(update(tickets).where(tickets.c.ticket_id == row.ticket_id, tickets.c.status == row.status)
                        .values(status=status.value, **values)).rowcount
    if done != 1:
        raise Changed("该问题单刚被他人处理,请刷新页面 (someone changed it just now)")


_ORDER = case({Status.open.value: 0, Status.answered.value: 1}, value=tickets.c.status, else_=2)


def listing(conn: Connection, actor: Actor, status: Status | None = None, limit: int = LISTED) -> pd.DataFrame:
    """The tickets the actor may read (of ``status``, or all): by department, open first, newest first."""
    query = select(*[tickets.c[c] for c in COLUMNS]).where(visible(actor))
    if status is not None:
        query = query.where(tickets.c.status == Status(status).value)
    query = query.order_by(tickets.c.department, _ORDER, tickets.c.opened_at.desc(), tickets.c.ticket_id.desc())
    return pd.DataFrame([tuple(r) for r in conn.execute(query.limit(max(0, int(limit)))).all()], columns=COLUMNS)


def counts(conn: Connection, actor: Actor) -> pd.DataFrame:
    """Per department the actor may read of: its tickets by status (columns department and each status)."""
    found = pd.DataFrame(conn.execute(select(tickets.c.department, tickets.c.status, func.count()).where(
        visible(actor)).group_by(tickets.c.department, tickets.c.status)).all(), columns=["department", "status", "n"])
    wide = found.pivot_table(index="department", columns="status", values="n", aggfunc="sum", fill_value=0)
    return wide.reindex(columns=[s.value for s in Status], fill_value=0).astype("int64").reset_index()


def ticket(conn: Connection, actor: Actor, ticket_id: int) -> dict:
    """One ticket the actor may read, with its history (the audit log's rows of it that the actor may read)."""
    row = _found(conn, actor, ticket_id)
    a = audit_log.c
    history = conn.execute(select(a.at, a.actor, a.action).where(
        a.object_type == "ticket", a.object_key == str(row.ticket_id), audit.visible(actor))
        .order_by(a.at, a.audit_id)).all()
    return dict(row._mapping) | {"history": [dict(h._mapping) for h in history]}


def of_run(conn: Connection, actor: Actor, run_id: str) -> dict[str, list[dict]]:
    """The tickets opened from a run that the actor may read, per source (what its page says was sent already)."""
    found = conn.execute(select(tickets.c.ticket_id, tickets.c.source, tickets.c.status).where(
        tickets.c.run_id == run_id, visible(actor)).order_by(tickets.c.ticket_id)).all()
    out: dict[str, list[dict]] = {}
    for ticket_id, source, status in found:   # a run's handful of tickets
        out.setdefault(source, []).append({"ticket_id": ticket_id, "status": status})
    return out
