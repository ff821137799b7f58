"""Custom expectations of the quality gate: small subclasses, each with a description a steward can read.

Two of them need a metric Great Expectations does not have (a date within bounds, compared column-wise; a
value that is not a later repeat of an earlier row), each for both of the gate's engines (pandas in the
worker, Spark for a province); the others are built-in expectations given a name and a description in
the gate's words. Each carries ``meta`` saying how serious a failure is
(``severity``: ``source`` blocks the source, ``row`` quarantines or reports rows).
"""

from __future__ import annotations

import os
from datetime import datetime

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave this machine

import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.core.metric_function_types import MetricPartialFunctionTypes  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import ColumnMapExpectation  # noqa: E402
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial  # noqa: E402

from jingzhun.spark import ORDER  # noqa: E402 - on Spark, what "earlier" means (pandas: the frame's order)


def later_repeats(values: pd.Series) -> pd.Series:
    """True where a non-empty value already appeared on an earlier row (the first occurrence is not a repeat)."""
    return values.notna() & values.duplicated(keep="first")


def dates_outside(values: pd.Series, earliest=None, latest=None) -> pd.Series:
    """True where a date is before ``earliest`` or after ``latest`` (either may be None: no bound); missing
    dates are not outside. Column-wise (GX's own between-check compares value by value in Python)."""
    outside = pd.Series(False, index=values.index)
    if earliest is not None:
        outside |= values.lt(pd.Timestamp(earliest))
    if latest is not None:
        outside |= values.gt(pd.Timestamp(latest))
    return values.notna() & outside


def later_repeats_spark(column):
    """:func:`later_repeats` as a Spark column: a non-empty value with an earlier row (by :data:`ORDER`) holding it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    earlier = Window.partitionBy(column).orderBy(F.col(ORDER)).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return column.isNotNull() & (F.count(F.lit(1)).over(earlier) > 1)


def dates_outside_spark(column, earliest=None, latest=None):
    """:func:`dates_outside` as a Spark column (bounds compared as timestamps without a time zone, as staged)."""
    from pyspark.sql import functions as F

    outside = F.lit(False)
    if earliest is not None:
        outside = outside | (column < F.lit(earliest).cast("timestamp_ntz"))
    if latest is not None:
        outside = outside | (column > F.lit(latest).cast("timestamp_ntz"))
    return column.isNotNull() & outside


class ColumnValuesWithinDates(ColumnMapMetricProvider):
    condition_metric_name = "column_values.within_dates"
    condition_value_keys = ("min_value", "max_value")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, min_value=None, max_value=None, **kwargs) -> pd.Series:
        return ~dates_outside(column, min_value, max_value)

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, min_value=None, max_value=None, **kwargs):
        return ~dates_outside_spark(column, min_value, max_value)


class ColumnValuesFirstOccurrence(ColumnMapMetricProvider):
    condition_metric_name = "column_values.first_occurrence"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return ~later_repeats(column)

    @column_condition_partial(engine=SparkDFExecutionEngine,
                              partial_fn_type=MetricPartialFunctionTypes.WINDOW_CONDITION_FN)
    def _spark(cls, column, **kwargs):
        return ~later_repeats_spark(column)


class ExpectColumnValuesToBeValidResidentId(gxe.ExpectColumnValuesToBeNull):
    """身份证号码有效: 18位, 校验位正确 (stdnum.cn.ric), 出生日期真实, 地址码存在或曾经存在.

    Staging has already decided every number (``<column>_valid``); the gate does not decide again. It reads
    ``<column>__invalid`` (:func:`jingzhun.quality.gate.helper_columns`): the number where staging found it
    invalid (an empty one as empty text), missing where valid, so every row counts and the unexpected values
    are the invalid numbers."""

    description: str = "身份证号码有效 (valid resident identity number: check digit, birth date, address code)"


class ExpectColumnValuesToBeFirstOccurrence(ColumnMapExpectation):
    """每人只有一行: 同一身份证号的第二行及以后各行是重复记录."""

    map_metric = "column_values.first_occurrence"
    success_keys = ("mostly",)
    description: str = "每人只有一行 (one row per person: later rows with the same number are duplicates)"

    def unexpected(self, values: pd.Series) -> pd.Series:
        """The rows this check quarantines (the gate's reasons), as its pandas metric finds them."""
        return later_repeats(values)

    def unexpected_spark(self, column):
        """The same, as its Spark metric finds them."""
        return later_repeats_spark(column)


class ExpectColumnPresent(gxe.ExpectColumnToExist):
    description: str = "必填列存在 (required column present)"


class ExpectRequiredValuesPresent(gxe.ExpectColumnValuesToNotBeNull):
    description: str = "必填字段有值 (required value filled in)"


class ExpectCodesInVocabulary(gxe.ExpectColumnValuesToBeInSet):
    description: str = "代码值在代码表内 (coded value in the vocabulary)"


class ExpectValuesOfTheirType(gxe.ExpectColumnValuesToBeNull):
    """The column ``<name>__unreadable`` holds the text that could not be read as a date, amount, year or code."""

    description: str = "取值可识别为该列类型 (value readable as a date, amount, year or division code)"


class ExpectDatesPlausible(ColumnMapExpectation):
    """Dates between ``min_value`` and ``max_value`` (either may be None: no bound)."""

    map_metric = "column_values.within_dates"
    success_keys = ("min_value", "max_value", "mostly")
    min_value: datetime | None = None
    max_value: datetime | None = None
    description: str = "日期在合理范围内 (date in a plausible range: not in the future, not before the earliest date)"

    def unexpected(self, values: pd.Series) -> pd.Series:
        """The rows this check quarantines (the gate's reasons), as its pandas metric finds them."""
        return dates_outside(values, self.min_value, self.max_value)

    def unexpected_spark(self, column):
        """The same, as its Spark metric finds them."""
        return dates_outside_spark(column, self.min_value, self.max_value)


class ExpectRowCountNotCollapsed(gxe.ExpectTableRowCountToBeBetween):
    description: str = "行数未骤减 (row count has not collapsed against the last accepted snapshot)"


class ExpectFilesFresh(gxe.ExpectColumnMaxToBeBetween):
    """On ``_file_age_days``: days between each file's modification and the run's as_of date."""

    description: str = "文件未过期 (every file is recent enough)"
