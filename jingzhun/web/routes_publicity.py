"""``/publicity/{village_code}`` (公示: the village's flags in a 公示 period) and ``/announcement/{village_code}``
(公告: the approved ones), printable on A4 from the browser: title, period, the list with identity numbers masked
(the chain masks them), where to object (the policy's contact line), signature and date lines."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Path, Request

from jingzhun import clock, labels
from jingzhun.publicity import CATEGORIES
from jingzhun.signoff import chain
from jingzhun.signoff.access import Unknown, holds
from jingzhun.web.render import page
from jingzhun.web.security import Signed, engine_of, signed_in

router = APIRouter()
VILLAGE = r"^[0-9]{12}$"
KINDS = {"publicity": "公示", "announcement": "公告"}


def entries(request: Request, actor, village: str, kind: str) -> tuple[pd.DataFrame, dict]:
    """The chain's entries of the village (404 when it lies outside the actor's area) and the place's names."""
    if not holds(actor, village):
        raise Unknown("没有这个村 (no such village)")
    engine = engine_of(request)
    listed = chain.publicity_entries(engine, actor, village, kind=kind)
    reference = labels.stored_regions(engine)
    place = labels.place_names(village, reference)
    return listed, place


def _rows(listed: pd.DataFrame) -> list[dict]:
    """The chain's entries as the sheet's rows: category, reason, head, person, masked number, period."""
    names = {"类别": "category", "事由": "reason", "户主姓名": "head_name", "姓名": "name", "身份证号": "id_number"}
    rows = listed.rename(columns=names)
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


@router.get("/publicity/{village_code}")
def publicity(request: Request, village_code: str = Path(pattern=VILLAGE), signed: Signed = Depends(signed_in)):
    return _sheet(request, signed, village_code, "publicity")


@router.get("/announcement/{village_code}")
def announcement(request: Request, village_code: str = Path(pattern=VILLAGE), signed: Signed = Depends(signed_in)):
    return _sheet(request, signed, village_code, "announcement")


def _sheet(request: Request, signed: Signed, village: str, kind: str):
    listed, place = entries(request, signed.actor, village, kind)
    rows = _rows(listed)
    starts = [r["period_start"] for r in rows if r.get("period_start")]
    ends = [r["period_end"] for r in rows if r.get("period_end")]
    kinds = "/".join(k for k in CATEGORIES.values() if k in {r.get("category") for r in rows})
    today = clock.today(request.app.state.policy.time_zone)
    return page(request, "publicity.html", signed=signed, kind=kind, kind_title=KINDS[kind], rows=rows, place=place,
                village=village, kinds=kinds, first=min(starts) if starts else None, last=max(ends) if ends else None,
                today=today, year=today.year)
