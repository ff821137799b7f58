"""Who may see what: one place (signoff.md, "People and areas"), applied in the query.

An actor's area is a division-code prefix; what lies outside it is filtered by the database, never after, and an
object outside it answers exactly as one that does not exist (:class:`Unknown`). Datasette 1.0's question "may this
actor perform this action on this resource", resolved in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, literal, or_, true

from jingzhun.privacy import Refused
from jingzhun.signoff.stages import AREA_DIGITS, Role


@dataclass(frozen=True)
class Actor:
    """A signed-in person (or a script with their token): their name, role and area (a division-code prefix;
    ``""`` for an auditor: everywhere)."""

    user_id: int
    username: str
    role: Role
    area: str

    @property
    def reads_full_numbers(self) -> bool:
        """Whether pages may show this actor full identity numbers at all (each such view is audited)."""
        return self.role in (Role.village, Role.township, Role.county, Role.steward)


class Unknown(Refused):
    """Not found, or outside the actor's area: the two answer alike (HTTP 404)."""

    status = 404


def area_valid(role: Role, area: str) -> bool:
    """Whether ``area`` is a division-code prefix of the length ``role`` works at (an auditor's may be empty)."""
    return area.isascii() and (area.isdigit() or area == "") and len(area) in AREA_DIGITS[Role(role)]


def in_area(actor: Actor, code_column: ColumnElement) -> ColumnElement:
    """The SQL condition "this row's division code lies in the actor's area" (``code_column``: a village code)."""
    if not area_valid(actor.role, actor.area):
        return false()
    if actor.area == "":
        return true()
    return and_(code_column.like(actor.area + "%"))


def holds(actor: Actor, code: str | None) -> bool:
    """The same test for one code already read (what an object's page checks before it says anything)."""
    return bool(code) and area_valid(actor.role, actor.area) and str(code).startswith(actor.area)


def holds_each(actor: Actor, codes):
    """:func:`holds` for a column of codes read (a pandas Series; a missing code lies nowhere)."""
    text = codes.astype(object).where(codes.notna(), "").astype("str")
    return text.ne("") & text.str.startswith(actor.area) & area_valid(actor.role, actor.area)


def runs_visible(actor: Actor) -> ColumnElement:
    """The SQL condition "a run the actor may see" (of ``runs``): one of the whole landing (no region), or one whose
    region overlaps the actor's area (within it, or holding it)."""
    from jingzhun.schema import runs

    r = runs.c
    if not area_valid(actor.role, actor.area):
        return false()
    if actor.area == "":
        return true()
    return or_(r.region.is_(None), r.region == "", r.region.like(actor.area + "%"),
               literal(actor.area).like(r.region + "%"))
