"""``/indicators``: the village indicators of my area with their chart (every signed-in role). The numbers are
:func:`jingzhun.indicators.indicators`'s, asked for the signed-in person: the database returns only the villages of
their area. The chart is SVG made here (:mod:`jingzhun.web.chart`); the page prints on A4."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, Request

from jingzhun import labels
from jingzhun.indicators import DIRECTIONS, NOT_EVALUATED, NothingPublished, indicators
from jingzhun.privacy import describe
from jingzhun.review import DIRECTION_TITLES, rule_titles
from jingzhun.signoff.access import Actor
from jingzhun.web.chart import charts, percent
from jingzhun.web.render import page
from jingzhun.web.security import Signed, engine_of, signed_in

router = APIRouter()


def area_title(actor: Actor, reference: pd.Series) -> str:
    """The actor's area as a title: a village with its township, a township, a county, a province, or all."""
    area = actor.area
    if not area:
        return "全部辖区"
    if len(area) == 2:
        return labels.province_name(area) or area
    code = pd.Series([area.ljust(12, "0")])
    levels = {6: ("county",), 9: ("county", "township"), 12: ("township", "village")}.get(len(area))
    if levels is None:
        return f"区划 {area}"
    return "".join(labels.region_names(code, reference, level).iloc[0] for level in levels)


def shown(frame: pd.DataFrame) -> list[dict]:
    """Rows for the tables: the incidence as a percentage, counts as whole numbers, 未评估 kept as words."""
    out = frame.assign(incidence_text=percent(frame["incidence"]))
    return out.astype(object).where(out.notna(), None).to_dict("records")


@router.get("/indicators")
def village_indicators(request: Request, signed: Signed = Depends(signed_in)):
    engine, policy, actor = engine_of(request), request.app.state.policy, signed.actor
    reference = labels.stored_regions(engine)
    context = {"place": area_title(actor, reference), "directions": [(d, DIRECTION_TITLES[d]) for d in DIRECTIONS],
               "not_evaluated_word": NOT_EVALUATED, "threshold": percent(pd.Series([policy.village_exit_incidence])).iloc[0]}
    try:
        villages, townships, about = indicators(engine, policy, actor)
    except NothingPublished as exc:
        return page(request, "indicators.html", signed=signed, nothing=describe(exc), **context)
    partly = {DIRECTION_TITLES[d]: [rule_titles().get(c, c) for c in codes] for d, codes in about["partly"].items()}
    return page(request, "indicators.html", signed=signed, nothing="", about=about, partly=partly,
                villages=shown(villages), townships=shown(townships) if len(actor.area) != 12 else [],
                figures=charts(villages, policy.village_exit_incidence),
                below=int(villages["below"].eq("是").sum()), **context)
