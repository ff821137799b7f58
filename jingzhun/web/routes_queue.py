"""``/``: my queue. What waits in my area, by village with counts, filtered by rule, direction and stage (codes only
in the query string; the chain filters by area and orders overdue first)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from jingzhun import labels
from jingzhun.signoff import chain
from jingzhun.signoff.stages import Stage, stages_of
from jingzhun.web.render import DIRECTIONS, page
from jingzhun.web.security import Signed, engine_of, signed_in

router = APIRouter()
PAGE_SIZE = 100
RULE = r"^[A-Z][A-Z0-9_]{0,31}$"
VILLAGE = r"^[0-9]{12}$"
TOWNSHIP = r"^[0-9]{9}$"
DIRECTION = "^(" + "|".join(DIRECTIONS) + ")$"


class Filters:
    """The queue's filters, as the query string gives them (an unknown code is a 422, never a search)."""

    def __init__(self, stage: Annotated[Stage | None, Query()] = None,
                 village: Annotated[str | None, Query(pattern=VILLAGE)] = None,
                 township: Annotated[str | None, Query(pattern=TOWNSHIP)] = None,
                 rule: Annotated[str | None, Query(pattern=RULE)] = None,
                 direction: Annotated[str | None, Query(pattern=DIRECTION)] = None,
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1):
        self.stage, self.village, self.rule, self.direction, self.page = stage, village, rule, direction, page
        self.township = township

    def chain_args(self) -> dict:
        return {"stage": self.stage.value if self.stage else None, "village": self.village, "rule": self.rule,
                "direction": self.direction, "township": self.township}

    def query(self, **changes) -> str:
        values = {**self.chain_args(), "page": None, **changes}
        return urlencode({k: v for k, v in values.items() if v})


@router.get("/")
def queue(request: Request, filters: Filters = Depends(), signed: Signed = Depends(signed_in)):
    engine, policy, actor = engine_of(request), request.app.state.policy, signed.actor
    counts = chain.queue_counts(engine, actor, **filters.chain_args())
    offset = (filters.page - 1) * PAGE_SIZE
    flags = chain.queue(engine, actor, **filters.chain_args(), limit=PAGE_SIZE + 1, offset=offset, policy=policy)
    more = len(flags) > PAGE_SIZE
    flags = flags.head(PAGE_SIZE)
    reference = labels.stored_regions(engine)
    level = by_level(actor, filters)
    places = counts["village_code"].str.slice(0, 9) if level == "township" else counts["village_code"]
    counts = counts.assign(place=places).groupby(["place", "stage"], as_index=False)["n"].sum()
    villages = sorted(set(counts["place"].tolist()))
    names = dict(zip(villages, labels.region_names(_series(villages), reference, level)))
    townships = dict(zip(villages, labels.township_names(_series(villages), reference)))
    mine = set(stages_of(actor.role))
    stages = [s for s in Stage if s in set(counts["stage"]) or (s in mine and not filters.stage)]  # mine, even at 0
    table = {(v, s): int(n) for v, s, n in zip(counts["place"].tolist(), counts["stage"].tolist(), counts["n"].tolist())}
    return page(request, "queue.html", signed=signed, filters=filters, flags=flags.to_dict("records"), more=more,
                rows=count_rows(filters, villages, stages, table, level), names=names, townships=townships,
                stages=stages, mine=mine, classes=["n mine" if s in mine else "n" for s in stages], level=level,
                total=int(counts["n"].sum()) if len(counts) else 0,
                waiting=int(sum(n for (v, s), n in table.items() if s in mine)),
                flag_names=dict(zip(flags["village_code"], labels.region_names(flags["village_code"], reference,
                                                                                "village"))) if len(flags) else {})


def by_level(actor, filters: Filters) -> str:
    """What a row of the counts table is: a township for someone whose area holds several townships (a county has
    hundreds of villages) until they pick one, a village otherwise."""
    return "township" if len(actor.area) < 9 and not (filters.township or filters.village) else "village"


def count_rows(filters: Filters, places: list[str], stages: list[Stage], table: dict, level: str) -> list[dict]:
    """The counts table, one row per township or village: each stage's count and the link that filters the queue
    to it (the filters' query string made once per row, not once per cell)."""
    rows = []
    for v in places:
        by_village = filters.query(**{level: v})
        rows.append({"place": v, "href": "/?" + by_village,
                     "cells": [(table.get((v, s), 0), f"/?{by_village}&{urlencode({'stage': s.value})}") for s in stages]})
    return rows


def _series(values):
    import pandas as pd

    return pd.Series(list(values), dtype="str")
