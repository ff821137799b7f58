"""``/flags/{flag_key}``: one flag. The departments' records side by side (file and row), the history of its steps,
and a form per action the chain says the person may take now, each carrying the evidence digest and the state token
the page was made from (a step on changed evidence or state is refused by the chain, 409, and the page says why)."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse

from jingzhun import labels
from jingzhun.privacy import Refused, describe
from jingzhun.signoff import chain
from jingzhun.signoff.access import Unknown
from jingzhun.signoff.periods import due_dates
from jingzhun.signoff.stages import MOVES, PUBLICITY, Action, Stage
from jingzhun.web.render import page
from jingzhun.web.security import Signed, engine_of, origin, posted, signed_in

router = APIRouter()
FLAG_KEY = r"^[0-9a-f]{1,64}$"
NOTE_CHARS = 2000
MORE_VERIFIERS = 2  # name fields beyond the policy's minimum


def flag_page(request: Request, signed: Signed, flag_key: str, status: int = 200, message: str = "",
              typed: dict | None = None):
    engine, policy = engine_of(request), request.app.state.policy
    detail = chain.flag_detail(engine, signed.actor, flag_key, policy=policy)
    stage = Stage(detail["stage"])
    forms = []
    for action in detail["actions"]:
        move = MOVES.get((stage, Action(action)))
        forms.append({"action": str(action), "needs_note": bool(move and move.needs_note),
                      "needs_verifiers": bool(move and move.needs_verifiers),
                      "needs_department": bool(move and move.needs_department)})
    reference = labels.stored_regions(engine)

    place = labels.place_names(detail["village_code"], reference)
    records = (detail.get("evidence") or {}).get("records", []) if isinstance(detail.get("evidence"), dict) else []
    sentences = [s for s in str(detail.get("evidence_text") or "").split("；") if s]
    verifier_fields = policy.signoff.min_verifiers + MORE_VERIFIERS
    period_end = None  # a 公示's last day, as the chain counts it (signoff.periods)
    if stage in PUBLICITY and detail.get("stage_since") is not None:
        period_end = due_dates(pd.Series([detail["stage_since"]]), policy.signoff.publicity_days, policy).iloc[0]
    return page(request, "flag.html", status=status, signed=signed, flag=detail, forms=forms, place=place,
                records=records, sentences=sentences, message=message,
                typed={"action": "", "note": "", "department": "", "verifiers": [], **(typed or {})},
                verifier_fields=verifier_fields, period_end=period_end, note_chars=chain.NOTE_CHARS,
                name_chars=chain.NAME_CHARS, done=request.query_params.get("done", ""))


@router.get("/flags/{flag_key}")
def flag(request: Request, flag_key: str = Path(pattern=FLAG_KEY), signed: Signed = Depends(signed_in)):
    return flag_page(request, signed, flag_key)


@router.post("/flags/{flag_key}/steps")
async def step(request: Request, flag_key: str = Path(pattern=FLAG_KEY), signed: Signed = Depends(posted)):
    form = await request.form()
    fields = {name: str(form.get(name) or "")[:NOTE_CHARS if name == "note" else 200]
              for name in ("action", "note", "evidence_hash", "state_token", "department")}
    verifiers = [str(v)[:64] for v in form.getlist("verifier")][:20]
    from starlette.concurrency import run_in_threadpool

    try:
        stage = await run_in_threadpool(
            chain.take_step, engine_of(request), signed.actor, flag_key, fields["action"], note=fields["note"],
            evidence_hash=fields["evidence_hash"], state_token=fields["state_token"], verifiers=verifiers,
            department=fields["department"], via="web", origin=origin(request), policy=request.app.state.policy)
    except Unknown:
        raise
    except Refused as exc:  # 403 / 409 / 422: the flag as it is now, what was typed, and why it was refused
        status = getattr(exc, "status", 422)
        typed = {"action": fields["action"], "note": fields["note"], "department": fields["department"],
                 "verifiers": verifiers}
        return await run_in_threadpool(flag_page, request, signed, flag_key, status, describe(exc), typed)
    return RedirectResponse(f"/flags/{flag_key}?done={Stage(stage).value}", status_code=303)
