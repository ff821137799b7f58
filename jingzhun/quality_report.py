"""The validation workbook stewards open in the morning, in Chinese: what each department sent, what was wrong,
what to do and whom to contact.

Sheet 概览: one row per source (department, status, gate outcome, files, rows read / usable / quarantined, rows
that were not data, what happened and what to do). Then per source that sent anything: a sheet of its checks
(outcome, counts, share, advice, masked examples) and, when rows were set aside, a sheet listing them with file,
row number and reason. Every sheet prints on A4 landscape at the page width. Every cell is escaped against
formula injection.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl
import pandas as pd

from jingzhun.contract import SOURCES
from jingzhun.readers import NOT_DATA_REASONS
from jingzhun.sheets import table_sheet
from jingzhun.written import save_workbook

MAX_ROWS_PER_SHEET = 5000   # rows listed per source; all of them are in the warehouse's quarantine table
STATUS_WORDS = {"loaded": "已加载", "blocked": "已阻断(本次未使用)", "failed": "文件无法读取", "missing": "未收到文件",
                "skipped": "本次未要求"}
VALIDATION_WORDS = {"passed": "全部通过", "warnings": "部分行已隔离", "blocked": "未通过来源级检查", "not validated": "未校验",
                    "not read": "本次未读取",
                    "": "未校验"}
SEVERITY_WORDS = {"source": "来源级", "row": "行级"}
# What a steward does about a source (by status or gate outcome), and about a failed check (by expectation).
SOURCE_ADVICE = {
    "missing": "今晚未收到文件,依赖该来源的规则本次未评估:请联系{dept}按时报送",
    "failed": "文件无法读取(见说明):请联系{dept}检查导出方式后重新报送",
    "blocked": "未通过来源级检查(见说明),本次沿用上次数据:请联系{dept}核实并重新报送",
    "warnings": "部分行已隔离(见该来源的隔离行工作表):请把所列行反馈{dept}更正",
}
CHECK_ADVICE = {
    "expect_column_to_exist": "请联系{dept}重新导出,表头须含该列",
    "expect_column_present": "请联系{dept}重新导出,表头须含该列",
    "expect_column_values_to_be_valid_resident_id": "请{dept}核对所列身份证号(常见原因:被Excel转成数字、位数不足、校验位错误)",
    "expect_required_values_present": "请{dept}补全所列行的该列",
    "expect_codes_in_vocabulary": "请{dept}改用代码表中的取值;确属新代码的,由系统管理员在配置中补充",
    "expect_values_of_their_type": "请{dept}按规定格式填写所列单元格",
    "expect_dates_plausible": "请{dept}核对所列日期",
    "expect_row_count_not_collapsed": "行数比上次明显减少,可能导出不完整:请联系{dept}重新导出完整名册",
    "expect_files_fresh": "文件过旧:请联系{dept}报送最新导出",
    "expect_column_values_to_be_first_occurrence": "同一人有多行:请{dept}核对并删除重复记录",
}
OVERVIEW = [("来源", "title", 18), ("报送部门", "department", 20), ("状态", "status", 14), ("校验结果", "validation", 14),
            ("文件数", "files", 7), ("读取行数", "rows_read", 9), ("可用行数", "rows_valid", 9),
            ("隔离行数", "rows_quarantined", 9), ("非数据行(合计、空行)", "not_data", 11), ("说明", "message", 40),
            ("处理建议", "advice", 36)]
CHECKS = [("检查项", "description", 34), ("列", "column", 12), ("级别", "severity", 8), ("结果", "outcome", 14),
          ("异常行数", "unexpected_count", 9), ("总行数", "element_count", 9), ("异常比例", "share", 9),
          ("处理建议", "advice", 34), ("示例(文件、行号、值;身份证号已遮盖)", "examples", 44)]
ROWS = [("文件", "file", 30), ("行号", "row", 8), ("类别", "kind", 10), ("原因", "reason", 44), ("原始值", "raw", 60)]


def write_validation_workbook(out: Path, summary: dict[str, dict], results: pd.DataFrame,
                              quarantined: pd.DataFrame) -> Path:
    """``summary``: per source, as the run reports it; ``results``: the gate's table; ``quarantined``: every row
    the run set aside (QUARANTINE_COLUMNS: data rows quarantined, and rows that were not data)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    quarantined = quarantined.assign(kind=quarantined["reason"].isin(NOT_DATA_REASONS).map(
        {True: "非数据行", False: "隔离"}))
    wb = openpyxl.Workbook()
    table_sheet(wb.active, "数据质量校验概览", overview(summary, quarantined), OVERVIEW, name="概览")
    for source, spec in SOURCES.items():
        checks = results[results["source"].eq(source)]
        if checks.empty:
            continue
        table_sheet(wb.create_sheet(spec.title[:31]), f"{spec.title}:检查结果(报送部门:{spec.department})",
               checks_table(source, checks), CHECKS)
        rows = quarantined[quarantined["source"].eq(source)].sort_values(["kind", "file", "row"])
        if rows.empty:
            continue
        shown = rows.head(MAX_ROWS_PER_SHEET)
        title = (f"{spec.title}:隔离行 {int(rows['kind'].eq('隔离').sum())} 行,非数据行 {int(rows['kind'].eq('非数据行').sum())} 行"
                 + (f"(仅列出前 {MAX_ROWS_PER_SHEET} 行,全部见数据仓库 quarantine 表)" if len(rows) > len(shown) else ""))
        table_sheet(wb.create_sheet(f"{spec.title[:26]}·隔离行"), title, rows_table(source, shown), ROWS)
    save_workbook(wb, out)
    return out


def overview(summary: dict[str, dict], quarantined: pd.DataFrame) -> pd.DataFrame:
    """One row per source: the run summary in the workbook's words; ``rows_quarantined`` and ``not_data`` count the
    rows its sheet lists."""
    frame = pd.DataFrame([{"source": s, "title": SOURCES[s].title, "department": SOURCES[s].department, **v}
                          for s, v in summary.items()])
    counts = quarantined.groupby(["source", "kind"]).size().unstack(fill_value=0)
    frame["not_data"] = frame["source"].map(counts.get("非数据行", pd.Series(dtype="int64"))).fillna(0).astype("int64")
    state = frame["status"].where(frame["status"].ne("loaded"), frame["validation"])
    frame["advice"] = [SOURCE_ADVICE.get(s, "").format(dept=d) for s, d in zip(state, frame["department"])]
    frame["status"] = frame["status"].map(STATUS_WORDS).fillna(frame["status"])
    frame["validation"] = frame["validation"].map(VALIDATION_WORDS).fillna(frame["validation"])
    return frame


def checks_table(source: str, checks: pd.DataFrame) -> pd.DataFrame:
    """The checks of one source in a steward's words: the column by its Chinese header, the share as a rounded
    percentage, advice where a check failed, the examples as lines of text."""
    spec = SOURCES[source]
    headers = {c.name: c.header for c in spec.columns} | {"_file_age_days": "文件修改日期"}
    failed = ~checks["success"].astype(bool)
    advice = checks["expectation"].map(CHECK_ADVICE).fillna("请联系{dept}核实").str.replace("{dept}", spec.department)
    share = pd.to_numeric(checks["unexpected_percent"], errors="coerce") / 100
    return pd.DataFrame({
        "description": checks["description"], "column": checks["column"].map(headers).fillna("—"),
        "severity": checks["severity"].map(SEVERITY_WORDS).fillna(checks["severity"]),
        "outcome": checks["outcome"].astype("str").str.replace(_ENGLISH, "", regex=True),
        "unexpected_count": checks["unexpected_count"], "element_count": checks["element_count"], "share": share,
        "advice": advice.where(failed, ""),
        "examples": _examples(checks["examples"], _observed(checks["expectation"], checks["observed_value"]), source),
    })


def rows_table(source: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows set aside, with their reason in Chinese and the department's cells as sent."""
    return pd.DataFrame({"file": rows["file"], "row": rows["row"], "kind": rows["kind"],
                         "reason": reason_words(rows["reason"], source), "raw": _raw_text(rows["raw"])})


_ENGLISH = re.compile(r"\s*\((?=[A-Za-z])[^()]*\)")


def reason_words(reasons: pd.Series, source: str) -> pd.Series:
    """A reason as a steward reads it: the English gloss removed, canonical column names as Chinese headers."""
    out = reasons.fillna("").astype("str").str.replace(_ENGLISH, "", regex=True)
    for col in sorted(SOURCES[source].columns, key=lambda c: -len(c.name)):
        out = out.str.replace(rf"(?: in |: ){re.escape(col.name)}\b", f"(“{col.header}”列)", regex=True)
    return out


def _observed(expectation: pd.Series, observed: pd.Series) -> pd.Series:
    """What a source-level check saw, in words (the age of the oldest file; a row count)."""
    value = pd.to_numeric(observed, errors="coerce")
    words = ("观测值: " + observed.fillna("").astype("str")).where(observed.fillna("").astype("str").ne(""), "")
    age = "最旧的文件修改于核对日期前 " + value.clip(lower=0).round().astype("Int64").astype("str") + " 天"
    return words.mask(expectation.eq("expect_files_fresh") & value.notna(), age)


def _examples(examples: pd.Series, observed: pd.Series, source: str) -> pd.Series:
    """The stored examples (JSON, personal values already masked) as lines ``文件 第N行: 值``; at most five."""
    def lines(text: str, seen: str) -> str:  # a handful per check (at most EXAMPLES), not per row
        try:
            items = json.loads(text) if text else []
        except ValueError:
            items = []
        shown = [f"{str(i.get('file', '')).removeprefix(source + '/')} 第{i.get('row', '?')}行: {_value(i.get('value'))}"
                 for i in items[:5]]
        if len(items) > 5:
            shown.append(f"…… 共 {len(items)} 例")
        return "\n".join(shown) or seen

    return pd.Series([lines(t, o) for t, o in zip(examples.fillna(""), observed)], index=examples.index, dtype="str")


def _value(value) -> str:
    """An example's value as a steward reads it: an empty or missing cell as (空)."""
    return "(空)" if value is None or value == "" else str(value)


def _raw_text(raw: pd.Series) -> pd.Series:
    """Cells as sent (JSON) as ``列: 值；列: 值``."""
    s = raw.fillna("").astype("str")
    return (s.str.replace(r"^\{|\}$", "", regex=True).str.replace('", "', "；", regex=False)
            .str.replace('": ', ": ", regex=False).str.replace('"', "", regex=False))
