"""Evidence for flags, built column-wise: JSON for machines, Chinese sentences for stewards.

An *item* is one record behind a flag (one row of one source). Items are
rendered as JSON objects with string operations on whole columns, then
grouped into one JSON list and one sentence per flag.
"""

from __future__ import annotations

import pandas as pd

from jingzhun.normalise import normalise_names

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(values: pd.Series) -> pd.Series:
    s = values.astype("str")
    for raw, escaped in _ESCAPES.items():
        s = s.str.replace(raw, escaped, regex=False)
    return '"' + s + '"'


def _text(values: pd.Series) -> pd.Series:
    """Values as display text: dates as YYYY-MM-DD, integral numbers without decimals, missing as empty."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").fillna("")
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        numeric = pd.to_numeric(values, errors="coerce")
        whole = numeric.round().eq(numeric)
        text = numeric.astype("Float64").astype("str").where(~whole, numeric.round().astype("Int64").astype("str"))
        return text.where(numeric.notna(), "")
    return values.astype(object).where(values.notna(), "").astype("str")


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column, or an empty one where the department did not send that (optional) column."""
    return frame[column] if column in frame.columns else pd.Series(None, index=frame.index, dtype=object)


def items(frame: pd.DataFrame, source: str, fields: dict[str, str]) -> pd.Series:
    """One JSON object per row: ``{"source", "file", "row", <field>: <value>…}``; ``fields`` maps key -> column."""
    out = '{"source": "' + source + '", "file": ' + _json_string(frame["_file"]) + ', "row": ' + \
        _text(frame["_row"]).replace("", "null")
    for key, column in fields.items():
        value = _text(_column(frame, column))
        out = out + ', "' + key + '": ' + _json_string(value).where(value.ne(""), "null")
    return out + "}"


# Fields of a sentence that hold a person's name: shown as the registers are compared (white space removed,
# full-width folded, traditional characters simplified: 袁 颖俊 -> 袁颖俊, 秀榮 -> 秀荣); the JSON keeps what was sent.
NAME_FIELDS = frozenset({"name", "member_name", "head_name", "hukou_name"})


def sentence(frame: pd.DataFrame, template: str) -> pd.Series:
    """A Chinese sentence per row from a template with ``{column}`` fields (filled column-wise); a missing value
    reads ``—``; names read as in :data:`NAME_FIELDS`."""
    out = pd.Series("", index=frame.index, dtype="str")
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        column, _, rest = tail.partition("}")
        value = _text(_column(frame, column))
        if column in NAME_FIELDS:
            value = normalise_names(value)
        out = out + head + value.replace("", "—")
    return out + rest


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


def per_flag(frame: pd.DataFrame, keys: list[str], item: pd.Series, text: pd.Series, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per flag key, with ``evidence`` (JSON) and ``evidence_text`` gathered from its items, the records
    in canonical order (by what they say, then file and row): the order of rows and files sent does not change
    the evidence, nor its digest."""
    ordered = frame[keys].assign(_item=item, _text=text, _content=content(item)).sort_values("_content", kind="stable")
    grouped = ordered.drop(columns="_content").groupby(keys, sort=False, dropna=False)
    out = grouped.agg(_items=("_item", ",".join), evidence_text=("_text", "；".join)).reset_index()
    out["evidence"] = '{"as_of": "' + as_of.strftime("%Y-%m-%d") + '", "records": [' + out.pop("_items") + "]}"
    return out
