"""``/tickets``: the data-problem tickets of my area, grouped by department with their open and answered counts, and
``/tickets/{ticket_id}``, one ticket with its history. The steward opens a ticket freehand here or from a run's page
(pre-filled), records the department's answer and closes it; a county and an auditor read (:mod:`jingzhun.tickets`
decides who, and filters by area in the database; a ticket outside the area is a 404 as an unknown one). A refused
form comes back with what was typed and why (422), nothing cut."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from jingzhun import tickets
from jingzhun.contract import SOURCES
from jingzhun.privacy import Refused, describe
from jingzhun.signoff.access import Unknown
from jingzhun.tickets import Status
from jingzhun.web.render import page
from jingzhun.web.security import Signed, engine_of, opens, origin, posted, require_page, signed_in

router = APIRouter()
TICKET_ID = Path(ge=1, le=2**31 - 1)
DONE = {"opened": "问题单已开具。", "answered": "已记录部门答复。", "closed": "问题单已关闭。"}
OPEN_FIELDS = ("source", "department", "run_id", "area", "subject")
ANSWER_FIELDS = ("answer", "answered_by")


def list_page(request: Request, signed: Signed, shown: Status | None = None, status: int = 200, message: str = "",
              typed: dict | None = None):
    actor = signed.actor
    with engine_of(request).connect() as conn:
        listed = tickets.listing(conn, actor, status=shown)
        counts = tickets.counts(conn, actor)
    rows = listed.astype(object).where(listed.notna(), None).to_dict("records")
    groups = {}
    for row in rows:   # at most tickets.LISTED, already in the database's order
        groups.setdefault(row["department"], []).append(row)
    return page(request, "tickets.html", status=status, signed=signed, groups=groups, shown=shown,
                counts=counts.to_dict("records"), total=int(counts[[s.value for s in Status]].to_numpy().sum()),
                listed=tickets.LISTED, statuses=list(Status), writer=opens(actor.role, "tickets_write"),
                sources=[(name, s.title, s.department) for name, s in SOURCES.items()],
                departments=tickets.departments(), message=message,
                typed={k: "" for k in OPEN_FIELDS} | (typed or {}), subject_chars=tickets.SUBJECT_CHARS)


def ticket_page(request: Request, signed: Signed, ticket_id: int, status: int = 200, message: str = "",
                typed: dict | None = None):
    with engine_of(request).connect() as conn:
        found = tickets.ticket(conn, signed.actor, ticket_id)
    done = request.query_params.get("done", "") if status == 200 else ""
    return page(request, "ticket.html", status=status, signed=signed, ticket=found, message=message,
                done=DONE.get(done, ""), writer=opens(signed.actor.role, "tickets_write"),
                runs_reader=opens(signed.actor.role, "runs"), typed={k: "" for k in ANSWER_FIELDS} | (typed or {}),
                answer_chars=tickets.ANSWER_CHARS, name_chars=tickets.NAME_CHARS)


@router.get("/tickets")
def ticket_list(request: Request, status: Annotated[Status | None, Query()] = None,
                signed: Signed = Depends(signed_in)):
    require_page(request, signed.actor, "tickets")
    return list_page(request, signed, shown=status)


@router.get("/tickets/{ticket_id}")
def ticket(request: Request, ticket_id: int = TICKET_ID, signed: Signed = Depends(signed_in)):
    require_page(request, signed.actor, "tickets")
    return ticket_page(request, signed, ticket_id)


async def _typed(request: Request, fields: tuple[str, ...]) -> dict:
    form = await request.form()
    return {k: str(form.get(k) or "") for k in fields}   # as typed: tickets.clean refuses, never cuts


@router.post("/tickets")
async def open_ticket(request: Request, signed: Signed = Depends(posted)):
    typed = await _typed(request, OPEN_FIELDS)

    def work():
        require_page(request, signed.actor, "tickets_write")
        try:
            with engine_of(request).begin() as conn:
                ticket_id = tickets.open_ticket(conn, signed.actor, typed["source"], typed["subject"],
                                                department=typed["department"] or None, run_id=typed["run_id"] or None,
                                                area=typed["area"] or None, origin=origin(request))
        except Unknown:
            raise
        except Refused as exc:
            return list_page(request, signed, status=getattr(exc, "status", 422), message=describe(exc), typed=typed)
        return RedirectResponse(f"/tickets/{ticket_id}?done=opened", status_code=303)

    return await run_in_threadpool(work)


@router.post("/tickets/{ticket_id}/answer")
async def answer(request: Request, ticket_id: int = TICKET_ID, signed: Signed = Depends(posted)):
    typed = await _typed(request, ANSWER_FIELDS)
    return await run_in_threadpool(_change, request, signed, ticket_id, "answered", typed)


@router.post("/tickets/{ticket_id}/close")
async def close(request: Request, ticket_id: int = TICKET_ID, signed: Signed = Depends(posted)):
    return await run_in_threadpool(_change, request, signed, ticket_id, "closed", {})


def _change(request: Request, signed: Signed, ticket_id: int, done: str, typed: dict):
    """Answer or close the ticket; a refusal (409, 422) shows the ticket as it is now, what was typed and why."""
    require_page(request, signed.actor, "tickets_write")
    try:
        with engine_of(request).begin() as conn:
            if done == "answered":
                tickets.answer_ticket(conn, signed.actor, ticket_id, typed["answer"], typed["answered_by"],
                                      origin=origin(request))
            else:
                tickets.close_ticket(conn, signed.actor, ticket_id, origin=origin(request))
    except Unknown:
        raise
    except Refused as exc:
        return ticket_page(request, signed, ticket_id, status=getattr(exc, "status", 422), message=describe(exc),
                           typed=typed)
    return RedirectResponse(f"/tickets/{ticket_id}?done={done}", status_code=303)
