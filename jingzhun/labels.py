"""Who and where a flag is about, in the words people use: region names for codes, and the names of the
person and of the household head. The one owner of those labels for every output a person reads (review
workbook, 公示 list, household dossier, indicators).

Region names come from a ``regions`` reference (one row per division code: code -> name), sent as the landing
folder's ``regions/`` files or named by the policy (``regions_file``), stored in the warehouse with each run
that has one. A county without an entry is named from GB/T 2260 (python-stdnum's table); a code without any
name reads as the code.
"""

from __future__ import annotations

import re
import uuid
from functools import lru_cache
from pathlib import Path

import pandas as pd
from sqlalchemy import Column as SqlColumn
from sqlalchemy import Connection, Engine, MetaData, Table, Text, func, select

from jingzhun import warehouse
from jingzhun.contract import Column, Source
from jingzhun.policy import ReaderLimits
from jingzhun.privacy import SafeError

REGIONS = Source("regions", "行政区划名称", (  # a reference, not a register: one row per division code
    Column("code", ("区划代码", "统计用区划代码", "行政区划代码", "代码"), True, "text"),
    Column("name", ("名称", "区划名称", "单位名称", "村名称", "乡镇名称"), True, "text"),
))
REGIONS_FOLDER = "regions"


class RegionsError(SafeError):
    """A regions reference that cannot be used: the message names the file, row and what is wrong."""


def read_regions(files: list[Path], limits: ReaderLimits) -> pd.DataFrame:
    """One row per division code (12 digits: a township's ``620421100`` is ``620421100000``): its name. Codes are
    digits of 6, 9 or 12; a row that is not is refused with its file and row; the last file named wins a code."""
    names, _, errors = read_regions_files(files, limits)
    if errors:
        raise RegionsError("; ".join(errors))
    return names


def read_regions_files(files: list[Path], limits: ReaderLimits) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """:func:`read_regions` without raising: the names, the record of every file (name, size, SHA-256, and its
    error when it could not be used: as a register's files), and the errors."""
    from jingzhun.readers import read_file, unread_record

    parts, records, errors = [], [], []
    for path in map(Path, files):
        label = f"{REGIONS_FOLDER}/{path.name}"
        try:
            data, _, record = read_file(path, REGIONS, label, limits)
            code = data["code"].fillna("").astype("str").str.strip()
            bad = ~code.str.fullmatch(r"[0-9]{6}|[0-9]{9}|[0-9]{12}")
            if bad.any():
                row = int(data.loc[bad, "_row"].iloc[0])
                raise RegionsError(f"{label}: 第{row}行 区划代码应为6、9或12位数字 (row {row}: a division code of 6, 9 "
                                   f"or 12 digits)")
        except SafeError as exc:
            records.append(unread_record(path, REGIONS, label, error=str(exc)).as_dict())
            errors.append(str(exc))
            continue
        records.append(record.as_dict())
        parts.append(pd.DataFrame({"code": code.str.ljust(12, "0"),
                                   "name": data["name"].fillna("").astype("str").str.strip()}))
    if not parts:
        return pd.DataFrame({"code": pd.Series([], dtype="str"), "name": pd.Series([], dtype="str")}), records, errors
    names = pd.concat(parts).drop_duplicates("code", keep="last").query("name != ''").reset_index(drop=True)
    return names, records, errors


def regions_files(landing: str | Path, regions_file: str | None) -> list[Path]:
    """The reference files of a run: the policy's ``regions_file``, then the landing folder's ``regions/``."""
    folder = Path(landing) / REGIONS_FOLDER
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".xlsx")
                   and not p.name.startswith((".", "~$"))) if folder.is_dir() else []
    return ([Path(regions_file)] if regions_file else []) + found


def stored_regions(warehouse_db: Engine | Connection) -> pd.Series:
    """The reference the last run that had one stored: code -> name."""
    query = select(warehouse.regions.c.code, warehouse.regions.c.name)
    if isinstance(warehouse_db, Engine):
        with warehouse_db.connect() as conn:
            rows = conn.execute(query).all()
    else:
        rows = warehouse_db.execute(query).all()
    return pd.Series(dict(rows), dtype="object", name="name").rename_axis("code")


@lru_cache(maxsize=1)
def _gb2260_counties() -> dict[str, str]:
    """Current GB/T 2260 county names by 6-digit code (the latest name where a code was renamed)."""
    from stdnum import numdb

    names = {}
    for _, plo, phi, _, children in numdb.get("cn/loc").prefixes:
        for _, clo, chi, props, _ in children:
            if "county" not in props or plo != phi or clo != chi:
                continue
            names[f"{int(plo):02d}{int(clo):04d}"] = re.sub(r"^\[[0-9-]*\]", "", props["county"])
    return names


LEVEL_DIGITS = {"county": 6, "township": 9, "village": 12}


def region_name(code: str | None, reference: pd.Series, level: str) -> str:
    """The name of the county, township or village (``level``) a division code lies in, from ``reference`` (code ->
    name, 12-digit codes); a county not in it from GB/T 2260; else the code itself at that level."""
    short = str(code or "")[:LEVEL_DIGITS[level]]
    name = reference.get(short.ljust(12, "0"))
    if name is None or name != name:
        name = _gb2260_counties().get(short[:6], short) if level == "county" else short
    return str(name)


def place_names(code: str | None, reference: pd.Series) -> dict[str, str]:
    """County, township and village names of one division code (a page's heading)."""
    return {level: region_name(code, reference, level) for level in LEVEL_DIGITS}


def scope_title(prefix: str, reference: pd.Series) -> str:
    """A division-code prefix as people name it (靖远县乌兰镇 for 620421100): its county, township and village names as
    far as the prefix reaches; empty where none is known (a prefecture, a province, a code no reference has)."""
    levels = [level for level, digits in LEVEL_DIGITS.items() if len(prefix) >= digits]
    names = [region_name(prefix, reference, level) for level in levels]
    known = [n for n, level in zip(names, levels) if n != prefix[:LEVEL_DIGITS[level]]]
    return "".join(known)


def region_names(codes: pd.Series, reference: pd.Series, level: str) -> pd.Series:
    """:func:`region_name` of every code, each distinct code looked up once (a report asks for every village)."""
    codes = codes.fillna("").astype("str")
    named = {code: region_name(code, reference, level) for code in pd.unique(codes.to_numpy(dtype=object))}
    return codes.map(named).astype("str")


def township_names(codes: pd.Series, reference: pd.Series) -> pd.Series:
    """Township names for village codes; where the codes span several counties (a province's outputs), each led
    by its county's name (永登县乌兰镇): townships of different counties share names."""
    names = region_names(codes, reference, "township")
    if codes.fillna("").astype("str").str[:6].nunique() > 1:
        names = region_names(codes, reference, "county") + names
    return names


def area_name(codes: pd.Series, reference: pd.Series) -> str:
    """What a list of village codes covers, for a title: its county, or, across counties, its province (GB/T 2260;
    empty across provinces or for no code)."""
    codes = codes.fillna("").astype("str")
    if codes.str[:6].nunique() == 1:
        return region_names(codes.head(1), reference, "county").iloc[0]
    if codes.str[:2].nunique() == 1:
        return province_name(codes.iloc[0][:2])
    return ""


def province_name(code: str) -> str:
    """A province's GB/T 2260 name by its 2-digit code (python-stdnum's table; empty when unknown)."""
    from stdnum import numdb

    return next((props.get("province", "") for _, low, _, props, _ in numdb.get("cn/loc").prefixes if low == code), "")


def people(warehouse_db: Engine | Connection, flags: pd.DataFrame) -> pd.DataFrame:
    """Per flag (same index): ``person_name`` (the register's name of its person, else hukou's) and ``head_name``
    (the register household's head, else the hukou household's), as the registers compare names. Read from the
    published registers, only for the numbers and households of ``flags``."""
    reg, hk = warehouse.staging_tables["poverty_register"].c, warehouse.staging_tables["hukou"].c
    ids = set(flags["id_number"]) - {""}
    named = pd.concat([_values(warehouse_db, reg.id_number, reg.name_norm, ids),
                       _values(warehouse_db, hk.id_number, hk.name_norm, ids)])
    named = named[~named.index.duplicated()]  # the register's name first
    return pd.DataFrame({"person_name": flags["id_number"].map(named).fillna(""),
                         "head_name": household_heads(warehouse_db, flags, "name_norm").fillna("")}, index=flags.index)


def household_heads(warehouse_db: Engine | Connection, flags: pd.DataFrame, column: str) -> pd.Series:
    """Per flag (same index): ``column`` (``name_norm``, ``id_number``) of its household's head: the register
    household's, else the hukou household's (the least value, where a household lists two heads)."""
    reg, hk = warehouse.staging_tables["poverty_register"].c, warehouse.staging_tables["hukou"].c
    households, hukou_households = set(flags["household_id"]) - {""}, set(flags["hukou_household_id"]) - {""}
    heads = _values(warehouse_db, reg.household_id, reg[column], households, reg.relation == "户主")
    hukou_heads = _values(warehouse_db, hk.hukou_household_id, hk[column], hukou_households, hk.relation == "户主")
    return flags["household_id"].map(heads).fillna(flags["hukou_household_id"].map(hukou_heads))


def _values(db, key, value, wanted: set[str], *where) -> pd.Series:
    """key -> the least ``value`` of the rows whose ``key`` is in ``wanted`` (and ``where``). The wanted keys go
    into a temporary table the query joins: one pass over the register whatever their number (an IN list of
    bound parameters scanned the register once per few hundred keys)."""
    if not wanted:
        return pd.Series(dtype="str")
    if isinstance(db, Engine):
        with db.connect() as conn:
            return _values(conn, key, value, wanted, *where)
    keys = Table(f"_wanted_{uuid.uuid4().hex[:12]}", MetaData(), SqlColumn("key", Text, primary_key=True),
                 prefixes=["TEMPORARY"])
    keys.create(db)
    try:
        db.execute(keys.insert(), [{"key": k} for k in sorted(wanted)])
        query = select(key.label("key"), func.min(value).label("value")).join(keys, keys.c.key == key)
        return pd.read_sql(query.where(*where).group_by(key), db).set_index("key")["value"]
    finally:
        keys.drop(db)
