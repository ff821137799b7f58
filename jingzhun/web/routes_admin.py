"""``/audit`` (the audit log of my area: auditor, county, steward; :mod:`jingzhun.audit` filters it) and ``/runs``
(the steward's runs: status, counts per source, the quality gate's checks per source with the blocked sources kept
apart from those that only set rows aside (:mod:`jingzhun.run_report`), quarantine with every cell masked).

The Data Docs of a run are files of its run folder, which the workbench does not serve: the run page does not link
to them (the validation workbook and the Data Docs stay the steward's files on the server)."""

from __future__ import annotations

import json
from urllib.parse import urlencode
from datetime import date, datetime, time, timezone
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, select

from jingzhun import audit, run_report, tickets, warehouse
from jingzhun.privacy import mask_cell
from jingzhun.signoff.access import Unknown, runs_visible
from jingzhun.web.render import page
from jingzhun.web.security import Signed, engine_of, require_page, signed_in

router = APIRouter()
AUDIT_ROWS = 1000                # rows of the audit log a page shows
AUDIT_ID_MAX = 2**31 - 1         # the largest audit_id a page may start before (the column is a 32-bit integer)
QUARANTINE_ROWS = 200
RUN_ID = r"^[0-9A-Za-z_.:\-]{1,40}$"


def since_day(day: date | None) -> date | None:
    """``since`` as a day the audit log can start at (a time zone's shift stays a date), else a 422."""
    if day is not None and not date(1900, 1, 2) <= day <= date(9999, 12, 30):
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError([{"type": "value_error", "loc": ("query", "since"), "input": None,
                                       "msg": "since: a date between 1900 and 9999"}])
    return day


def since_instant(since: date | None, time_zone: str) -> datetime | None:
    """The start of a day where the policy is, in UTC (what the audit log compares)."""
    if since is None:
        return None
    from zoneinfo import ZoneInfo

    return datetime.combine(since, time(0), ZoneInfo(time_zone)).astimezone(timezone.utc)


@router.get("/audit")
def audit_log(request: Request, since: Annotated[date | None, Query()] = None,
              before: Annotated[int | None, Query(ge=1, le=AUDIT_ID_MAX)] = None, signed: Signed = Depends(signed_in)):
    """A page of :data:`AUDIT_ROWS` rows, newest first; ``before`` (the last row's id) opens the next, older page."""
    require_page(request, signed.actor, "audit")
    policy = request.app.state.policy
    since = since_day(since)
    rows = audit.rows(engine_of(request), signed.actor, since=since_instant(since, policy.time_zone),
                      limit=AUDIT_ROWS + 1, before=before)
    more = len(rows) > AUDIT_ROWS
    rows = rows.head(AUDIT_ROWS)
    older = urlencode({"since": since or "", "before": int(rows["audit_id"].iloc[-1])}) if more else ""
    return page(request, "audit.html", signed=signed, rows=rows.astype(object).where(rows.notna(), None).to_dict("records"),
                since=since, limit=AUDIT_ROWS, before=before, older=older.replace("since=&", ""),
                newest=urlencode({"since": since}) if since else "")


def _summary(text: str | None) -> dict:
    """The run record's per-source summary (``runs.sources``, JSON): source -> its status and counts."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    return {str(k): v if isinstance(v, dict) else {} for k, v in data.items()} if isinstance(data, dict) else {}


def _sources(text: str | None) -> list[dict]:
    data = _summary(text)
    out = []
    for name, s in (data.items() if isinstance(data, dict) else []):
        s = s if isinstance(s, dict) else {}
        out.append({"source": name, **{k: s.get(k) for k in ("status", "validation", "files", "rows_read", "rows_valid",
                                                             "rows_quarantined")}})
    return out


@router.get("/runs")
def runs(request: Request, signed: Signed = Depends(signed_in)):
    require_page(request, signed.actor, "runs")
    r, q, rr = warehouse.runs.c, warehouse.quarantine.c, warehouse.run_rules.c
    with engine_of(request).connect() as conn:
        found = pd.read_sql(select(r.run_id, r.started_at, r.finished_at, r.status, r.as_of, r.region, r.sources)
                            .where(runs_visible(signed.actor)).order_by(r.started_at.desc()).limit(200), conn)
        ids = found["run_id"].tolist()
        quarantined = dict(conn.execute(select(q.run_id, func.count()).where(q.run_id.in_(ids)).group_by(q.run_id)).all())
        raised = dict(conn.execute(select(rr.run_id, func.sum(rr.raised)).where(rr.run_id.in_(ids)).group_by(rr.run_id)).all())
    listed = []
    for row in found.astype(object).where(found.notna(), None).to_dict("records"):
        sources = _sources(row.pop("sources"))
        listed.append({**row, "quarantined": int(quarantined.get(row["run_id"], 0)),
                       "raised": int(raised.get(row["run_id"]) or 0),
                       "rows_read": sum(int(s["rows_read"] or 0) for s in sources),
                       "rows_valid": sum(int(s["rows_valid"] or 0) for s in sources)})
    return page(request, "runs.html", signed=signed, runs=listed)


def masked_raw(raw: str | None) -> str:
    """A quarantined row's cells, each masked (the first and last characters of a long value, the first of a short
    one): what was wrong with the row is told by its reason, file and row, never by its values."""
    try:
        cells = json.loads(raw) if raw else {}
    except ValueError:
        return mask_cell(raw)
    if not isinstance(cells, dict):
        return mask_cell(raw)
    return ";".join(f"{k}={mask_cell(v)}" for k, v in cells.items() if v not in (None, ""))


@router.get("/runs/{run_id}")
def run(request: Request, run_id: str = Path(pattern=RUN_ID), signed: Signed = Depends(signed_in)):
    require_page(request, signed.actor, "runs")
    r, q = warehouse.runs.c, warehouse.quarantine.c
    with engine_of(request).connect() as conn:
        found = conn.execute(select(warehouse.runs).where(r.run_id == run_id, runs_visible(signed.actor))).first()
        if found is None:
            raise Unknown("没有这次运行 (no such run)")
        counts = conn.execute(select(q.source, func.count()).where(q.run_id == run_id).group_by(q.source)).all()
        rows = conn.execute(select(q.source, q.file, q.row, q.reason, q.raw).where(q.run_id == run_id)
                            .order_by(q.source, q.file, q.row).limit(QUARANTINE_ROWS)).all()
        checked = run_report.validation(conn, run_id, _summary(found.sources))
        problems = run_report.problems(conn, run_id, found.as_of)
        sent = tickets.of_run(conn, signed.actor, run_id)
    quarantine = [{"source": s, "file": f, "row": n, "reason": why, "raw": masked_raw(raw)} for s, f, n, why, raw in rows]
    return page(request, "run.html", signed=signed, run=found._asdict() | {"sources": _sources(found.sources)},
                counts=dict(counts), quarantine=quarantine, shown=QUARANTINE_ROWS, checked=checked,
                problems=problems, sent=sent)
