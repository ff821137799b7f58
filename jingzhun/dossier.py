"""The household dossier (入户核实): everything every department sent about one family in the last published
run, member by member, with the family's flags and their history — what a steward prints before a home visit.

The family is found by a register household number, a public-security household number or a member's
identity number. Its members are the register household's and the hukou household's people together.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
from sqlalchemy import Connection, Engine, or_, select

from jingzhun import clock, labels, warehouse
from jingzhun.contract import SOURCES
from jingzhun.privacy import Refused
from jingzhun.review import DIRECTION_TITLES, STATUS_TITLES, rule_titles
from jingzhun.sheets import table_sheet
from jingzhun.written import save_workbook

def person_keys() -> dict[str, str]:
    """Per source, its identity-number column (a deployment's sources included)."""
    return {name: next(c.name for c in source.columns if c.kind == "id") for name, source in SOURCES.items()}


class NoSuchHousehold(Refused):
    """No register household, hukou household or person with the number given (the number is not repeated)."""


def family(conn: Connection, number: str) -> tuple[set[str], set[str], set[str]]:
    """(register household ids, hukou household ids, member identity numbers) of the family ``number`` names."""
    reg, hk = warehouse.staging_tables["poverty_register"].c, warehouse.staging_tables["hukou"].c
    households = set(conn.execute(select(reg.household_id).where(
        or_(reg.household_id == number, reg.id_number == number))).scalars())
    hukou_households = set(conn.execute(select(hk.hukou_household_id).where(
        or_(hk.hukou_household_id == number, hk.id_number == number))).scalars())
    for _ in range(2):  # the register household's people lead to their hukou household, and back
        ids = set(conn.execute(select(reg.id_number).where(reg.household_id.in_(sorted(households)))).scalars()) | set(
            conn.execute(select(hk.id_number).where(hk.hukou_household_id.in_(sorted(hukou_households)))).scalars())
        hukou_households |= set(conn.execute(select(hk.hukou_household_id).where(hk.id_number.in_(sorted(ids)))).scalars())
        households |= set(conn.execute(select(reg.household_id).where(reg.id_number.in_(sorted(ids)))).scalars())
    ids = set(conn.execute(select(reg.id_number).where(reg.household_id.in_(sorted(households)))).scalars()) | set(
        conn.execute(select(hk.id_number).where(hk.hukou_household_id.in_(sorted(hukou_households)))).scalars())
    if not ids:
        raise NoSuchHousehold("最近一次发布的数据中没有这个户编号、户号或身份证号 (no household or person with that "
                              "number in the last published run)")
    return households - {"", None}, hukou_households - {"", None}, ids - {"", None}


def records(conn: Connection, ids: set[str]) -> dict[str, pd.DataFrame]:
    """Per source, the published rows about the members (by the source's identity-number column)."""
    out = {}
    for name, key in person_keys().items():
        table = warehouse.staging_tables[name]
        found = conn.execute(select(table).where(table.c[key].in_(sorted(ids))).order_by(
            table.c[key], table.c["_file"], table.c["_row"]))
        # a family's handful of rows: plain objects (pandas' typed reading costs more than the query, 13 times)
        out[name] = pd.DataFrame(found.all(), columns=list(found.keys()), dtype=object)
    return out


def members(found: dict[str, pd.DataFrame], ids: set[str]) -> pd.DataFrame:
    """One row per member: name, relation, number, sex, birth date, hukou status, both household numbers, and how
    many records each department sent about them. (A family's handful of rows, read as plain records: pandas'
    per-call cost would be most of a dossier page's time.)"""
    reg = _first_by_id(found["poverty_register"])
    hk = _first_by_id(found["hukou"])
    sent = {name: Counter(found[name][key].tolist()) for name, key in person_keys().items()}
    people = []
    for number in sorted(ids):
        r, h = reg.get(number, {}), hk.get(number, {})
        people.append({"id_number": number,
                       "name": _given(r.get("name_norm"), h.get("name_norm")),
                       "relation": _given(r.get("relation"), h.get("relation")),
                       "sex": _given(h.get("sex")), "birth_date": _day(h.get("birth_date")),
                       "person_status": _given(h.get("person_status"), "不在户籍库") if h else "不在户籍库",
                       "household_id": _given(r.get("household_id")),
                       "hukou_household_id": _given(h.get("hukou_household_id")),
                       **{f"n_{name}": counts[number] for name, counts in sent.items()}})
    people.sort(key=lambda p: (p["relation"] != "户主", p["birth_date"]))
    columns = ["id_number", "name", "relation", "sex", "birth_date", "person_status", "household_id",
               "hukou_household_id"] + [f"n_{name}" for name in sent]
    return pd.DataFrame(people, columns=columns)


def _first_by_id(rows: pd.DataFrame) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in rows.to_dict("records"):
        out.setdefault(row["id_number"], row)
    return out


def _given(*values) -> str:
    """The first value that is there (a department's empty cell is not a value)."""
    return next((str(v) for v in values if v is not None and v == v and v != ""), "")


def _day(value) -> str:
    if value is None or value != value or value == "":
        return ""
    day = pd.to_datetime(value, errors="coerce")
    return "" if pd.isna(day) else day.strftime("%Y-%m-%d")


def flag_history(conn: Connection, households: set[str], hukou_households: set[str], ids: set[str]) -> pd.DataFrame:
    """Every flag about the family (any status), with its decisions in order: who, when, what, why."""
    f, r = warehouse.flags.c, warehouse.reviews.c
    flagged = pd.read_sql(select(warehouse.flags).where(or_(
        f.household_id.in_(sorted(households)), f.hukou_household_id.in_(sorted(hukou_households)),
        f.id_number.in_(sorted(ids)))), conn)
    decisions = pd.read_sql(select(r.flag_key, r.review_id, r.decision, r.reviewer, r.decided_at, r.note)
                            .where(r.flag_key.in_(flagged["flag_key"].tolist())), conn).sort_values("review_id")
    when = clock.local_times(decisions["decided_at"]).dt.strftime("%Y-%m-%d")
    decisions["line"] = when + " " + decisions["reviewer"] + " " + decisions["decision"] + \
        decisions["note"].fillna("").map(lambda n: f":{n}" if n else "")   # a family's handful of decisions
    history = decisions.groupby("flag_key")["line"].agg("\n".join)
    return flagged.assign(rule_title=flagged["rule_code"].map(rule_titles()),
                          direction_title=flagged["direction"].map(DIRECTION_TITLES),
                          status_title=flagged["status"].map(STATUS_TITLES),
                          history=flagged["flag_key"].map(history).fillna("")).sort_values(["status", "rule_code"])


MEMBER_COLUMNS = [("姓名", "name", 9), ("与户主关系", "relation", 8), ("身份证号", "id_number", 20), ("性别", "sex", 5),
                  ("出生日期", "birth_date", 11), ("户籍状态", "person_status", 9), ("户编号", "household_id", 20),
                  ("户号", "hukou_household_id", 16)] + [
                  (SOURCES[s].title, f"n_{s}", 8) for s in SOURCES if s not in ("poverty_register", "hukou")]
FLAG_COLUMNS = [("规则", "rule_title", 14), ("方向", "direction_title", 6), ("状态", "status_title", 8),
                ("身份证号", "id_number", 20), ("首次发现(运行)", "first_seen_run", 24), ("最近发现(运行)", "last_seen_run", 24),
                ("证据", "evidence_text", 50), ("决定记录(日期 核查人 决定:备注)", "history", 34)]


def write_dossier(engine: Engine, number: str, out: Path) -> dict:
    """Write the dossier of the family ``number`` names; returns counts (members, records, flags), no names."""
    with engine.connect() as conn:
        households, hukou_households, ids = family(conn, number)
        found = records(conn, ids)
        people = members(found, ids)
        flagged = flag_history(conn, households, hukou_households, ids)
        reference = labels.stored_regions(conn)
        run = conn.execute(select(warehouse.runs.c.run_id, warehouse.runs.c.as_of).where(
            warehouse.runs.c.status == "published").order_by(warehouse.runs.c.run_id.desc()).limit(1)).first()
    village = found["poverty_register"]["village_code"].dropna()
    village = village.iloc[0] if len(village) else (found["hukou"]["address_code"].dropna().iloc[0]
                                                     if found["hukou"]["address_code"].notna().any() else "")
    place = "".join(labels.place_names(village, reference).values()) if village else ""
    head = people.loc[people["relation"].eq("户主"), "name"]
    wb = openpyxl.Workbook()
    table_sheet(wb.active, f"{place} {head.iloc[0] if len(head) else ''}户 入户核实资料",
                people, MEMBER_COLUMNS, name="家庭成员",
                subtitle=f"户编号 {'、'.join(sorted(households)) or '—'};户号 {'、'.join(sorted(hukou_households)) or '—'};"
                         f"数据来自运行 {run.run_id if run else '—'}(核对日期 {run.as_of if run else '—'});"
                         f"各部门列为该成员的记录条数")
    table_sheet(wb.create_sheet("标记与决定"), "该户的核查标记及历次决定", flagged, FLAG_COLUMNS)
    for name, rows in found.items():
        if rows.empty:
            continue
        spec = SOURCES[name]
        columns = [(c.header, c.name, 20 if c.kind == "id" or c.max_chars else 14 if c.kind == "code12" else 11)
                   for c in spec.columns
                   if c.name in rows and rows[c.name].notna().any()]
        rows = rows.assign(_where=rows["_file"].astype("str") + " 第" + rows["_row"].astype("Int64").astype("str") + "行")
        table_sheet(wb.create_sheet(spec.title[:31]), f"{spec.title}(报送部门:{spec.department})", rows,
                    columns + [("来源文件及行号", "_where", 30)])
    out = Path(out)
    save_workbook(wb, out)
    return {"members": len(people), "records": int(sum(len(r) for r in found.values())), "flags": len(flagged)}


# ---------------------------------------------------------------- the workbench's dossier (pages and API)

ID_COLUMNS_HIDDEN = ("_valid", "_problem")  # the staging's checks of an identity number: not for people


def household_in_area(conn: Connection, actor, household_id: str) -> str | None:
    """The village code of the register household (or, for a family not on the register, the hukou household)
    ``household_id`` names, if it lies in ``actor``'s area (filtered by the database); None otherwise."""
    from jingzhun.signoff.access import in_area

    reg, hk = warehouse.staging_tables["poverty_register"].c, warehouse.staging_tables["hukou"].c
    village = conn.execute(select(reg.village_code).where(reg.household_id == household_id,
                                                          in_area(actor, reg.village_code)).limit(1)).scalar()
    if village is None:
        village = conn.execute(select(hk.address_code).where(hk.hukou_household_id == household_id,
                                                             in_area(actor, hk.address_code)).limit(1)).scalar()
    return village


def family_in_area(conn: Connection, actor, household_id: str) -> tuple[set[str], set[str], set[str]]:
    """:func:`family` as far as it lies in ``actor``'s area: a member who moved to a household of another village is
    followed there by the family's numbers, but what that household holds is that village's to see."""
    households, hukou_households, _ = family(conn, household_id)
    households = {h for h in households if household_in_area(conn, actor, h) is not None}
    hukou_households = {h for h in hukou_households if household_in_area(conn, actor, h) is not None}
    reg, hk = warehouse.staging_tables["poverty_register"].c, warehouse.staging_tables["hukou"].c
    ids = set(conn.execute(select(reg.id_number).where(reg.household_id.in_(sorted(households)))).scalars()) | set(
        conn.execute(select(hk.id_number).where(hk.hukou_household_id.in_(sorted(hukou_households)))).scalars())
    return households, hukou_households, ids - {"", None}


def find_household(engine: Engine, actor, number: str) -> str:
    """The household id (the register's, else the hukou household's) of the family a register household number, a
    hukou household number or a member's identity number names, within ``actor``'s area; :class:`Unknown`
    otherwise (a number outside the area answers as one that does not exist)."""
    from jingzhun.signoff.access import Unknown

    with engine.connect() as conn:
        for typed in typed_forms(number):
            try:
                households, hukou_households, _ = family(conn, typed)
            except NoSuchHousehold:
                continue
            for candidate in sorted(households) + sorted(hukou_households):
                if household_in_area(conn, actor, candidate) is not None:
                    return candidate
    raise Unknown("没有这个户 (no such household)")


def typed_forms(number) -> list[str]:
    """What a person typed into the lookup, as staging reads the same in a department's file (full-width folded,
    spaces and invisible characters gone, a lower-case x upper-cased, a 15-digit number made 18), then as typed
    (trimmed): a household number is looked up as it is too."""
    from jingzhun.normalise import normalise_ids

    typed = str(number or "").strip()[:64]
    if not typed:
        return []
    normalised = normalise_ids(pd.Series([typed], dtype="str"))["id_number"].iloc[0]
    return list(dict.fromkeys(v for v in (normalised, typed) if v))


def household_view(engine: Engine, actor, household_id: str, policy, full: bool = False) -> dict:
    """The dossier of one household as the workbench shows it to ``actor``: members, every department's records
    about them (with file and row), the family's flags in the actor's area and where each stands in the chain.
    Identity numbers masked as on a 公示 unless ``full`` (the caller audits that view). :class:`Unknown` for a
    household that does not exist or lies outside the area (alike). A family's handful of rows is shaped as plain
    records: a page costs its queries, not pandas' per-call work."""
    from jingzhun.signoff.access import Unknown, in_area
    from jingzhun.signoff.views import masked

    with engine.connect() as conn:
        village = household_in_area(conn, actor, household_id)
        if village is None:
            raise Unknown("没有这个户 (no such household)")
        households, hukou_households, ids = family_in_area(conn, actor, household_id)
        found = records(conn, ids)
        people = members(found, ids).to_dict("records")
        f = warehouse.flags.c
        flagged = [dict(row) for row in conn.execute(select(
            f.flag_key, f.rule_code, f.direction, f.status, f.stage, f.id_number, f.village_code, f.evidence_text).where(
            or_(f.household_id.in_(sorted(households)), f.hukou_household_id.in_(sorted(hukou_households)),
                f.id_number.in_(sorted(ids))), in_area(actor, f.village_code)).order_by(f.status, f.rule_code)).mappings()]
        reference = labels.stored_regions(conn)
        run = conn.execute(select(warehouse.runs.c.run_id, warehouse.runs.c.as_of).where(
            warehouse.runs.c.status == "published").order_by(warehouse.runs.c.run_id.desc()).limit(1)).first()

    shown = _numbers_shown(found, people, flagged, policy, full)
    for person in people:
        person["id_number"] = shown(person["id_number"])
        if not full:
            person["birth_date"] = ""
    sources = []
    for name, rows in found.items():
        if rows.empty:
            continue
        spec = SOURCES[name]
        columns = [c for c in spec.columns if c.name in rows and rows[c.name].notna().any()]
        body = []
        for row in rows[[c.name for c in columns] + ["_file", "_row"]].to_dict("records"):
            for c in columns:
                if c.kind == "id":
                    row[c.name] = shown(row[c.name])
                elif c.name == "birth_date" and not full:  # the middle of an identity number: hidden with it
                    row[c.name] = None
                elif c.kind == "date":
                    row[c.name] = _day(row[c.name]) or None
            body.append({k: (None if v is None or v != v else v) for k, v in row.items()})
        sources.append({"source": name, "title": spec.title, "department": spec.department,
                        "columns": [{"name": c.name, "title": c.header} for c in columns], "rows": body})
    for flag in flagged:
        flag["id_number"] = shown(flag["id_number"])
        if not full:  # the evidence's sentences may quote a number too
            flag["evidence_text"] = masked(flag["evidence_text"], policy)
    return {
        "household_id": household_id, "village_code": village,
        "place": labels.place_names(village, reference),
        "household_ids": sorted(households), "hukou_household_ids": sorted(hukou_households),
        "full_numbers": bool(full),
        "run": {"run_id": run.run_id, "as_of": str(run.as_of)} if run else None,
        "members": people, "sources": sources, "flags": flagged,
    }


def _numbers_shown(found: dict[str, pd.DataFrame], people: list[dict], flagged: list[dict], policy, full: bool):
    """How the page shows an identity number: as it is (``full``), else masked as on a 公示 — every number of the
    family masked in one call."""
    from jingzhun.publicity import mask_id

    if full:
        return lambda value: "" if value is None or value != value else str(value)
    numbers = {str(p["id_number"]) for p in people} | {str(f["id_number"]) for f in flagged if f["id_number"]}
    for name, rows in found.items():
        for c in SOURCES[name].columns:
            if c.kind == "id" and c.name in rows:
                numbers |= {str(v) for v in rows[c.name].tolist() if v is not None and v == v}
    numbers.discard("")
    ordered = sorted(numbers)
    masks = dict(zip(ordered, mask_id(pd.Series(ordered, dtype="str"), policy).tolist()))
    return lambda value: "" if value is None or value != value or value == "" else masks.get(str(value), "")
