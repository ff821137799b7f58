"""``/households/{household_id}``: the household dossier (入户核实). Identity numbers are masked; a person whose role
may read them asks for the full numbers with an explicit form (POST), and that view is in the audit log. A family is
looked up by a number (an identity number among them) with a form too: no identity number is ever in a URL."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse

from jingzhun import audit, dossier
from jingzhun.web.render import page
from jingzhun.web.security import Forbidden, Signed, engine_of, origin, posted, signed_in

router = APIRouter()
HOUSEHOLD_ID = r"^[^/]{1,64}$"  # a register or hukou household number (never an identity number)


def household_page(request: Request, signed: Signed, household_id: str, full: bool = False):
    view = dossier.household_view(engine_of(request), signed.actor, household_id, request.app.state.policy, full=full)
    return page(request, "household.html", signed=signed, house=view)


def audited_full_view(request: Request, actor, household_id: str, via: str) -> None:
    """Check that the actor may read full numbers at all and that the household is theirs to see, then record the
    view: the audit row is written before any full number is shown."""
    if not actor.reads_full_numbers:
        raise Forbidden("您的角色不能查看完整身份证号 (your role may not see full identity numbers)")
    engine = engine_of(request)
    with engine.begin() as conn:
        village = dossier.household_in_area(conn, actor, household_id)
        if village is None:
            from jingzhun.signoff.access import Unknown

            raise Unknown("没有这个户 (no such household)")
        audit.record(conn, actor.username, audit.Event.full_number_view, "household", household_id, village,
                     origin(request), via)


@router.get("/households/{household_id}")
def household(request: Request, household_id: str = Path(pattern=HOUSEHOLD_ID), signed: Signed = Depends(signed_in)):
    return household_page(request, signed, household_id)


@router.post("/households/{household_id}/full")
def household_full(request: Request, household_id: str = Path(pattern=HOUSEHOLD_ID), signed: Signed = Depends(posted)):
    audited_full_view(request, signed.actor, household_id, "web")
    return household_page(request, signed, household_id, full=True)


@router.post("/households")
def find(request: Request, number: str = Form("", max_length=64), signed: Signed = Depends(posted)):
    """A family by any of its numbers (typed in a form, never in the URL): to its dossier's page."""
    found = dossier.find_household(engine_of(request), signed.actor, number)
    return RedirectResponse(f"/households/{quote(found, safe='')}", status_code=303)
