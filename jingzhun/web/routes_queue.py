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
DIRECTION = "^(" + "|".join(DIRECTIONS) + ")$"


class Filters:
    """The queue's filters, as the query string gives them (an unknown code is a 422, never a search)."""

    def __init__(self, stage: Annotated[Stage | None, Query()] = None,
                 village: Annotated[str | None, Query(pattern=VILLAGE)] = None,
                 rule: Annotated[str | None, Query(pattern=RULE)] = None,
                 direction: Annotated[str | None, Query(pattern=DIRECTION)] = None,
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1):
        self.stage, self.village, self.rule, self.direction, self.page = stage, village, rule, direction, page

    def chain_args(self) -> dict:
        return {"stage": self.stage.value if self.stage else None, "village": self.village, "rule": self.rule,
                "direction": self.direction}

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
    villages = sorted(set(counts["village_code"]))
    names = dict(zip(villages, labels.region_names(_series(villages), reference, "village")))
    townships = dict(zip(villages, labels.township_names(_series(villages), reference)))
    mine = set(stages_of(actor.role))
    stages = [s for s in Stage if s in set(counts["stage"]) or (s in mine and not filters.stage)]  # mine, even at 0
    table = {(v, s): int(n) for v, s, n in zip(counts["village_code"], counts["stage"], counts["n"])}
    return page(request, "queue.html", signed=signed, filters=filters, flags=flags.to_dict("records"), more=more,
                villages=villages, names=names, townships=townships, stages=stages, table=table, mine=mine,
                total=int(counts["n"].sum()) if len(counts) else 0,
                waiting=int(sum(n for (v, s), n in table.items() if s in mine)),
                flag_names=dict(zip(flags["village_code"], labels.region_names(flags["village_code"], reference,
                                                                                "village"))) if len(flags) else {})


def _series(values):
    import pandas as pd

    return pd.Series(list(values), dtype="str")
