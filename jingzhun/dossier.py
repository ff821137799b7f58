"""The household dossier (入户核实): everything every department sent about one family in the last published
run, member by member, with the family's flags and their history — what a steward prints before a home visit.

The family is found by a register household number, a public-security household number or a member's
identity number. Its members are the register household's and the hukou household's people together.
"""

from __future__ import annotations

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
        rows = pd.read_sql(select(table).where(table.c[key].in_(sorted(ids))), conn)
        out[name] = rows.sort_values([key, "_file", "_row"]).reset_index(drop=True)
    return out


def members(found: dict[str, pd.DataFrame], ids: set[str]) -> pd.DataFrame:
    """One row per member: name, relation, number, sex, birth date, hukou status, both household numbers, and how
    many records each department sent about them."""
    reg = found["poverty_register"].drop_duplicates("id_number").set_index("id_number")
    hk = found["hukou"].drop_duplicates("id_number").set_index("id_number")
    out = pd.DataFrame(index=pd.Index(sorted(ids), name="id_number"))
    out["name"] = reg["name_norm"].reindex(out.index).fillna(hk["name_norm"].reindex(out.index)).fillna("")
    out["relation"] = reg["relation"].reindex(out.index).fillna(hk["relation"].reindex(out.index)).fillna("")
    out["sex"] = hk["sex"].reindex(out.index).fillna("") if "sex" in hk else ""
    out["birth_date"] = pd.to_datetime(hk["birth_date"].reindex(out.index), errors="coerce").dt.strftime("%Y-%m-%d").fillna("")
    out["person_status"] = hk["person_status"].reindex(out.index).fillna("不在户籍库")
    out["household_id"] = reg["household_id"].reindex(out.index).fillna("")
    out["hukou_household_id"] = hk["hukou_household_id"].reindex(out.index).fillna("")
    for name, key in person_keys().items():
        out[f"n_{name}"] = found[name][key].value_counts().reindex(out.index).fillna(0).astype("int64")
    order = out["relation"].ne("户主").astype(int)
    return out.assign(_order=order).sort_values(["_order", "birth_date"]).drop(columns="_order").reset_index()


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
    place = "".join(labels.region_names(pd.Series([village]), reference, level).iloc[0]
                    for level in ("county", "township", "village")) if village else ""
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
