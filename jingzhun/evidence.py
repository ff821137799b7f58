"""Evidence of flags: one owner of its format and of its canonical digest.

A *record* is one row of one source behind a flag: a JSON object ``{"source", "file", "row", <field>…}`` for
machines and a Chinese sentence for stewards. A flag's evidence is ``{"as_of", "records": [...]}`` with its records
in canonical order (by what they say, then file and row), its text the sentences in the same order joined by
``；``. Both are built in the engine by the SQL of :func:`flags_sql` (pure builders: SQL text from the catalogue's
fields and the model's column types). Its digest covers the records without the run's date, file names or row
numbers, sorted (:func:`digest_body`): a re-sent, renamed or reordered export of the same facts is the same
evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from jingzhun.catalogue import GRAIN_KEYS, EvidencePart, Rule


def text_sql(column: str, sql_type: str) -> str:
    """A value as evidence text: dates YYYY-MM-DD, whole numbers without decimals, missing as empty."""
    c = identifier(column)
    t = sql_type.upper()
    if t.startswith(("TIMESTAMP", "DATE")):
        return f"coalesce(strftime({c}, '%Y-%m-%d'), '')"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return (f"coalesce(CASE WHEN {c} = round({c}) THEN CAST(CAST(round({c}) AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({c} AS VARCHAR) END, '')")
    if t == "BOOLEAN":
        return f"coalesce(CASE WHEN {c} THEN 'True' ELSE 'False' END, '')"
    if t == '"NULL"' or t == "NULL":
        return "''"
    return f"coalesce(CAST({c} AS VARCHAR), '')"


def json_string_sql(text: str) -> str:
    """A text as a JSON string literal (backslash, quote, line breaks and tab escaped)."""
    out = text
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        raw_sql = {"\n": "chr(10)", "\r": "chr(13)", "\t": "chr(9)"}.get(raw, f"'{raw}'")
        out = f"replace({out}, {raw_sql}, '{escaped}')"
    return f"('\"' || {out} || '\"')"


def item_sql(part: EvidencePart, types: Mapping[str, str]) -> tuple[str, str]:
    """The JSON object of one record (``{"source", "file", "row", <field>…}``) and its content (without file and
    row: what orders a flag's records and what its digest covers)."""
    fields = ""
    for key, column in part.fields.items():
        value = text_sql(column, types.get(column, "NULL"))
        fields += f" || ', \"{key}\": ' || CASE WHEN {value} = '' THEN 'null' ELSE {json_string_sql(value)} END"
    location = (f"', \"file\": ' || {json_string_sql(text_sql('_file', types['_file']))} || ', \"row\": ' || "
                f"coalesce(CAST(_row AS VARCHAR), 'null')")
    head = f"'{{\"source\": \"{part.source}\"'"
    return f"{head} || {location}{fields} || '}}'", f"{head}{fields} || '}}'"


def sentence_sql(template: str, types: Mapping[str, str]) -> str:
    """The Chinese sentence of one record: ``{column}`` fields filled, an empty value read as ``—``."""
    pieces = []
    for text, column in re.findall(r"([^{]*)(?:\{([^}]*)\})?", template):
        if text:
            pieces.append(literal(text))
        if column:
            value = text_sql(column, types.get(column, "NULL"))
            pieces.append(f"CASE WHEN {value} = '' THEN '—' ELSE {value} END")
    return " || ".join(pieces) or "''"


def flags_sql(rule: Rule, parts: list[tuple[str, Mapping[str, str]]], as_of: str) -> str:
    """One row per flag of ``rule`` from its models' rows (``parts``: a relation and its column types per evidence
    part): its keys, the evidence JSON (records in canonical order: by what they say, then file and row) and the
    sentences in the same order."""
    keys = GRAIN_KEYS[rule.grain]
    records = []
    for i, (part, (relation, types)) in enumerate(zip(rule.evidence, parts)):
        item, content = item_sql(part, types)
        village = "village_code" if rule.grain == "hukou_household" and i == 0 else "CAST(NULL AS VARCHAR)"
        records.append(f"SELECT {', '.join(identifier(k) for k in keys)}, {i} AS _part, {item} AS _item, "
                       f"{content} AS _content, {sentence_sql(part.sentence, types)} AS _text, "
                       f"CAST(_file AS VARCHAR) AS _f, CAST(_row AS BIGINT) AS _r, {village} AS _village "
                       f"FROM {relation}")
    order = "_part, _content, _f, _r"
    grouped = (f"SELECT {', '.join(keys)}, "
               f"'{{\"as_of\": \"{as_of}\", \"records\": [' || string_agg(_item, ',' ORDER BY {order}) || ']}}' "
               f"AS evidence, string_agg(_text, '；' ORDER BY {order}) AS evidence_text, min(_village) AS _village "
               f"FROM ({' UNION ALL '.join(records)}) AS records GROUP BY {', '.join(keys)}")
    if rule.grain == "hukou_household":
        columns = ("CAST(NULL AS VARCHAR) AS household_id, f.hukou_household_id, CAST(NULL AS VARCHAR) AS id_number, "
                   "f._village AS village_code")
        source = f"({grouped}) AS f"
    else:
        person = "f.id_number" if rule.grain == "person" else "CAST(NULL AS VARCHAR) AS id_number"
        columns = f"f.household_id, h.hukou_household_id, {person}, h.village_code"
        source = f"({grouped}) AS f JOIN int_register_households AS h ON h.household_id = f.household_id"
    return (f"SELECT {literal(rule.code)} AS rule_code, {literal(rule.direction)} AS direction, {columns}, f.evidence, "
            f"f.evidence_text FROM {source}")


def identifier(name: str) -> str:
    """A name quoted for SQL (every dialect the models run on quotes with double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A text quoted as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# Where an item says which file and row it came from: not part of what it says (a re-sent, renamed or reordered
# export of the same facts is the same evidence).
LOCATION = r'"file": "(?:[^"\\]|\\.)*", "row": (?:\d+|null), '


def content(item: pd.Series) -> pd.Series:
    """Items without their file and row: what orders the records of a flag's evidence (canonically)."""
    return item.str.replace(LOCATION, "", regex=True)


_RECORD_BOUNDARY = r'(?<=\}),(?=\{"source": ")'  # between two records (a value's quotes are escaped: never inside one)


def digest_body(evidence: pd.Series) -> pd.Series:
    """What a flag's evidence digest covers: its records without the run's date, file names or row numbers, in
    sorted order, so that neither the order of rows and files sent nor the order a rule appended records in
    changes it. Column-wise: records split, stripped, sorted and joined again per flag."""
    if evidence.empty:
        return evidence.astype("str")
    inner = evidence.str.extract(r'"records": \[(.*)\]\}$', expand=False).fillna("")
    records = content(inner.str.split(_RECORD_BOUNDARY, regex=True).explode())
    ordered = records.rename("record").rename_axis("flag").reset_index().sort_values(["flag", "record"])
    joined = ordered.groupby("flag", sort=False)["record"].agg(",".join)
    return '{"records": [' + joined.reindex(evidence.index).fillna("") + "]}"
