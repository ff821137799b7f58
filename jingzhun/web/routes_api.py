"""The JSON API (signoff.md, "The API"): ``Authorization: Bearer TOKEN`` (401 without a valid one; a browser's
session is not accepted here), the same authorisation as the pages (the chain and the owners filter by area; 404
outside it), and the chain's refusals as their statuses (403, 404, 409, 422)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from jingzhun import audit, dossier
from jingzhun.signoff import chain
from jingzhun.signoff.stages import Stage
from jingzhun.web.routes_admin import AUDIT_ID_MAX, since_day, since_instant
from jingzhun.web.routes_flags import FLAG_KEY
from jingzhun.web.routes_households import HOUSEHOLD_ID, audited_full_view
from jingzhun.web.routes_publicity import VILLAGE
from jingzhun.web.routes_queue import DIRECTION, RULE
from jingzhun.web.security import api_actor, engine_of, origin, require_page

router = APIRouter(prefix="/api")
LIST_FIELDS = ["flag_key", "rule_code", "direction", "household_id", "hukou_household_id", "village_code", "stage",
               "status", "evidence_hash", "state_token"]
AUDIT_LIMIT = 10_000  # rows of the audit log one answer carries at most (``next_before`` says where the rest start)
STEP_FIELDS = ["actor", "role", "action", "stage_before", "stage_after", "acted_at", "note", "verifiers"]


def plain(value):
    """A value JSON can carry: dates and instants as ISO text, numpy scalars as Python's, missing as null."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and np.isnan(value):
        return None
    if value is not None and not isinstance(value, (str, int, float, bool)) and pd.isna(value):
        return None
    return value


def answer(data, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(data), status_code=status)


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    present = [c for c in columns if c in frame.columns]
    return frame[present].astype(object).where(frame[present].notna(), None).to_dict("records")


@router.get("/flags")
def flags(request: Request, stage: Annotated[Stage | None, Query()] = None,
          village: Annotated[str | None, Query(pattern=VILLAGE)] = None,
          rule: Annotated[str | None, Query(pattern=RULE)] = None,
          direction: Annotated[str | None, Query(pattern=DIRECTION)] = None,
          status: Annotated[Literal["open", "confirmed", "dismissed", "resolved", "all"], Query()] = "open",
          limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
          offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0, actor=Depends(api_actor)):
    found = chain.queue(engine_of(request), actor, stage=stage.value if stage else None, village=village, rule=rule,
                        direction=direction, status=status, limit=limit, offset=offset, policy=request.app.state.policy)
    return answer({"flags": records(found, LIST_FIELDS)})


@router.get("/flags/{flag_key}")
def flag(request: Request, flag_key: str = Path(pattern=FLAG_KEY), actor=Depends(api_actor)):
    detail = chain.flag_detail(engine_of(request), actor, flag_key, policy=request.app.state.policy)
    out = {k: detail.get(k) for k in LIST_FIELDS}
    out.update(evidence=detail.get("evidence"),
               evidence_text=detail.get("evidence_text"), actions=[str(a) for a in detail.get("actions", [])],
               steps=[{k: s.get(k) for k in STEP_FIELDS} for s in detail.get("steps", [])])
    return answer(out)


class StepBody(BaseModel):
    """A step as a script sends it: the action, its note (reason, objection, answer), the evidence digest and the
    state token the script read, the verifiers' names (乡镇审核) and the department (转办)."""

    model_config = ConfigDict(extra="forbid", str_max_length=2000)

    action: str = Field(min_length=1, max_length=16)
    note: str = ""
    evidence_hash: str = Field(min_length=1, max_length=64)
    state_token: str = Field(min_length=1, max_length=64)
    verifiers: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    department: str = Field("", max_length=200)


@router.post("/flags/{flag_key}/steps")
def step(request: Request, body: StepBody, flag_key: str = Path(pattern=FLAG_KEY), actor=Depends(api_actor)):
    stage = chain.take_step(engine_of(request), actor, flag_key, body.action, note=body.note,
                            evidence_hash=body.evidence_hash, state_token=body.state_token, verifiers=body.verifiers,
                            department=body.department, via="api", origin=origin(request),
                            policy=request.app.state.policy)
    return answer({"stage": str(Stage(stage).value)})


@router.get("/households/{household_id}")
def household(request: Request, household_id: str = Path(pattern=HOUSEHOLD_ID), actor=Depends(api_actor)):
    """The dossier: full identity numbers for a role that may read them (each such answer audited first), masked
    for the others."""
    full = actor.reads_full_numbers
    if full:
        audited_full_view(request, actor, household_id, "api")
    return answer(dossier.household_view(engine_of(request), actor, household_id, request.app.state.policy, full=full))


@router.get("/publicity")
def publicity(request: Request, village: Annotated[str, Query(pattern=VILLAGE)],
              kind: Annotated[Literal["publicity", "announcement"], Query()] = "publicity", actor=Depends(api_actor)):
    from jingzhun.web.routes_publicity import entries

    listed, _ = entries(request, actor, village, kind)
    return answer({"village": village, "kind": kind, "entries": listed.astype(object).where(listed.notna(), None)
                   .to_dict("records")})


@router.get("/audit")
def audit_rows(request: Request, since: Annotated[date | datetime | None, Query()] = None,
               before: Annotated[int | None, Query(ge=1, le=AUDIT_ID_MAX)] = None,
               limit: Annotated[int, Query(ge=1, le=AUDIT_LIMIT)] = AUDIT_LIMIT, actor=Depends(api_actor)):
    """``{"rows": [...], "next_before": ID | null}``: at most ``limit`` rows, newest first; while ``next_before`` is
    not null, asking again with ``before`` set to it gives the next, older rows (the same ``since``)."""
    require_page(request, actor, "audit")
    policy = request.app.state.policy
    since_day(since.date() if isinstance(since, datetime) else since)
    if isinstance(since, datetime):
        instant = since if since.tzinfo else since.replace(tzinfo=ZoneInfo(policy.time_zone))
    else:
        instant = since_instant(since, policy.time_zone)
    rows = audit.rows(engine_of(request), actor, since=instant, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows.head(limit)
    return answer({"rows": rows.astype(object).where(rows.notna(), None).to_dict("records"),
                   "next_before": int(rows["audit_id"].iloc[-1]) if more else None})
