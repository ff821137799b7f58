"""One expectation suite per source, built from the data contract and the policy.

:func:`suite_for` returns the suite of one source for tonight: what the contract says of its columns
(required columns and values, identity numbers, code lists, types, dates) plus what only the run
knows (the previous accepted snapshot's row count, the run's ``as_of``). Each expectation's ``meta``
carries its ``severity`` (``source``: a failure blocks the source; ``row``: the rows are quarantined)
and ``quarantined_by`` (``staging`` when the staging transform already quarantined those rows,
``gate`` when the gate quarantines them from this expectation).

The per-source differences are data, in :data:`ONE_ROW_PER_PERSON` and the date bounds of the policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from great_expectations import ExpectationSuite
from great_expectations.expectations.expectation import Expectation

from jingzhun.contract import SOURCES, Column, Source
from jingzhun.normalise import vocab_keys
from jingzhun.policy import Policy
from jingzhun.quality import custom as cx
from jingzhun.staging import CHECK_MARK

# Registers whose spec says "one row per person" (the poverty register: per person and household, since a
# person in two register households is the rule DQ_MULTI_HOUSEHOLD, not a duplicate row).
ONE_ROW_PER_PERSON: dict[str, tuple[str, ...]] = {
    "poverty_register": ("household_id", "id_number"),
    "hukou": ("id_number",),
    "social_assistance": ("id_number",),
}
FILE_AGE = "_file_age_days"


def person_key(source: str) -> str | None:
    """The helper column the duplicate check reads: the key of usable rows whose identity number is valid."""
    return f"{ONE_ROW_PER_PERSON[source][-1]}{CHECK_MARK}person" if source in ONE_ROW_PER_PERSON else None


def invalid_ids(column: str) -> str:
    """The helper column holding the identity numbers staging found invalid (missing where valid)."""
    return f"{column}{CHECK_MARK}invalid"


def given(column: str) -> str:
    """The helper column that is empty exactly where a required value was left empty."""
    return f"{column}{CHECK_MARK}given"


@dataclass(frozen=True)
class Tonight:
    """What the suite needs to know of the run: its as_of date, the day it runs, and the last accepted
    snapshot's row count (None: no snapshot yet)."""

    as_of: date
    today: date
    previous_rows: int | None = None

    @property
    def latest_date(self) -> date:
        """No record can be dated after this: the later of as_of and the day of the run (a reconciliation
        for an earlier as_of legitimately sees records dated after it)."""
        return max(self.as_of, self.today)


def suite_for(source_name: str, columns: set[str], policy: Policy, tonight: Tonight) -> ExpectationSuite:
    """The suite of one source, for the columns that arrived tonight (``columns``: the checked frame's)."""
    source = SOURCES[source_name]
    return ExpectationSuite(name=source_name, expectations=_expectations(source, columns, policy, tonight))


def _expectations(source: Source, columns: set[str], policy: Policy, tonight: Tonight) -> list[Expectation]:
    out: list[Expectation] = [_required_column(c) for c in source.columns if c.required]
    if tonight.previous_rows:
        floor = math.ceil(tonight.previous_rows * (1 - policy.max_shrink_share))
        out.append(cx.ExpectRowCountNotCollapsed(
            min_value=floor, meta=_meta("source", "gate"),
            description=f"行数不少于上次接受的 {tonight.previous_rows} 行的 {1 - policy.max_shrink_share:.0%} "
                        f"(至少 {floor} 行,防止导出不完整)"))
    out.append(cx.ExpectFilesFresh(
        column=FILE_AGE, max_value=policy.stale_after_days, meta=_meta("source", "gate"),
        description=f"文件修改日期距核对日期 {tonight.as_of} 不超过 {policy.stale_after_days} 天"))
    for col in source.columns:
        if col.name in columns:
            out += _column_expectations(source, col, columns, policy, tonight)
    key = person_key(source.name)
    if key:
        out.append(cx.ExpectColumnValuesToBeFirstOccurrence(
            column=key, meta=_meta("row", "gate", reason="重复记录: 同一身份证号已在前面出现 (duplicate person)"),
            description="每人只有一行: 同一身份证号的后续行隔离"))
    return out


def _required_column(col: Column) -> Expectation:
    return cx.ExpectColumnPresent(column=col.name, meta=_meta("source", "reader"),
                                  description=f"必填列{_header(col)}存在 (表头可为: {'、'.join(col.aliases)})")


def _column_expectations(source: Source, col: Column, columns: set[str], policy: Policy,
                         tonight: Tonight) -> list[Expectation]:
    out: list[Expectation] = []
    if col.kind == "id":
        out.append(cx.ExpectColumnValuesToBeValidResidentId(
            column=invalid_ids(col.name), mostly=1 - policy.max_invalid_id_share, meta=_meta("source", "staging"),
            description=f"{_header(col)}列: 无效身份证号不超过 {policy.max_invalid_id_share:.0%}"))
    elif col.required:
        out.append(cx.ExpectRequiredValuesPresent(column=given(col.name), meta=_meta("row", "staging"),
                                                  description=f"{_header(col)}列: 必填字段有值"))
    code, unreadable = f"{col.name}{CHECK_MARK}code", f"{col.name}{CHECK_MARK}unreadable"
    if col.kind == "vocab" and code in columns:
        allowed = sorted(vocab_keys(policy.vocabulary_of(col)))
        out.append(cx.ExpectCodesInVocabulary(column=code, value_set=allowed, meta=_meta("row", "staging"),
                                              description=f"{_header(col)}列: 取值在代码表内 ({' / '.join(allowed)})"))
    if unreadable in columns:
        out.append(cx.ExpectValuesOfTheirType(column=unreadable, meta=_meta("row", "staging"),
                                              description=f"{_header(col)}列: 取值可识别为{_KIND_WORDS[col.kind]}"))
    if col.kind == "date":
        low, high = date_bounds(source.name, col.name, policy, tonight.latest_date)
        out.append(cx.ExpectDatesPlausible(
            column=col.name, min_value=low, max_value=high,
            meta=_meta("row", "gate", reason=f"日期不合理 (implausible date) in {col.name}"),
            description=f"{_header(col)}列: 日期在 {low:%Y-%m-%d} 至 {f'{high:%Y-%m-%d}' if high else '—'} 之间"))
    return out


_KIND_WORDS = {"date": "日期", "money": "金额", "number": "数值", "year": "年度", "code12": "12位区划代码",
               "text": "已知的代码或名称(如车辆类型的名称或 GA 802 代码)"}


def _header(col: Column) -> str:
    """A column as stewards name it: its first Chinese header, quoted."""
    return f"“{col.header}”"


def date_bounds(source: str, column: str, policy: Policy, latest: date) -> tuple[datetime, datetime | None]:
    """The plausible range of a date column: from the earliest date (appraisals: the earliest appraisal year)
    to ``latest``, unless the column may hold future dates (a scheduled end)."""
    low = policy.earliest_appraisal if (source, column) == ("housing_safety", "appraised") else policy.earliest_date
    high = None if f"{source}.{column}" in policy.dates_may_be_future else latest
    return (datetime.combine(low, datetime.min.time()),
            datetime.combine(high, datetime.min.time()) if high else None)


def _meta(severity: str, quarantined_by: str, reason: str = "") -> dict:
    return {"severity": severity, "quarantined_by": quarantined_by, **({"reason": reason} if reason else {})}
