"""The validation workbook stewards open in the morning (in Chinese): what each department sent, what was wrong.

Sheet 概览: one row per source (status, gate outcome, files, rows read / usable / quarantined, why blocked).
Then one sheet per source that sent anything: its checks (outcome, counts, examples) and the offending rows
with file, row number, reason and the cells as sent. Every cell is escaped against formula injection.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.styles import Font

from jingzhun.contract import SOURCES
from jingzhun.exports import spreadsheet_safe

MAX_ROWS_PER_SHEET = 5000   # offending rows listed per source; all of them are in the warehouse's quarantine table
STATUS_WORDS = {"loaded": "已加载 (loaded)", "blocked": "已阻断 (blocked by the quality gate)",
                "failed": "读取失败 (files unreadable)", "missing": "未收到 (nothing sent)",
                "skipped": "本次未要求 (not asked for by this reconciliation)"}
SEVERITY_WORDS = {"source": "来源级 (blocks the source)", "row": "行级 (quarantines rows)"}
OVERVIEW = {"source": "来源", "title": "名称", "status": "状态", "validation": "校验结果", "files": "文件数",
            "rows_read": "读取行数", "rows_valid": "可用行数", "rows_quarantined": "隔离行数", "message": "说明"}
CHECKS = {"description": "检查项", "column": "列", "severity": "严重程度", "outcome": "结果",
          "unexpected_count": "异常行数", "element_count": "总行数", "unexpected_percent": "异常比例(%)",
          "observed_value": "观测值", "examples": "示例 (文件, 行号, 值)"}
OFFENDING = {"file": "文件", "row": "行号", "reason": "原因", "raw": "原始值"}


def write_validation_workbook(out: Path, summary: dict[str, dict], results: pd.DataFrame,
                              quarantined: pd.DataFrame) -> Path:
    """``summary``: per source, as the run reports it; ``results``: the gate's table; ``quarantined``: every
    quarantined row of the run (QUARANTINE_COLUMNS)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook(write_only=True)
    _table(wb.create_sheet("概览"), "数据质量校验概览 (validation overview)", overview(summary), OVERVIEW)
    for source, spec in SOURCES.items():
        checks = results[results["source"].eq(source)]
        if checks.empty:
            continue
        ws = wb.create_sheet(spec.title[:31])
        _table(ws, f"{spec.title} ({source}): 检查结果 (checks)", checks, CHECKS)
        rows = quarantined[quarantined["source"].eq(source)].sort_values(["file", "row"])
        shown = rows.head(MAX_ROWS_PER_SHEET)
        note = f"隔离行 (quarantined rows): {len(rows)}" + (
            f", 仅列出前 {MAX_ROWS_PER_SHEET} 行 (all of them are in the warehouse table quarantine)"
            if len(rows) > len(shown) else "")
        _table(ws, note, shown, OFFENDING)
    wb.save(out)
    return out


def overview(summary: dict[str, dict]) -> pd.DataFrame:
    """One row per source: the run summary in the workbook's words."""
    frame = pd.DataFrame([{"source": s, "title": SOURCES[s].title, **v} for s, v in summary.items()])
    frame["status"] = frame["status"].map(STATUS_WORDS).fillna(frame["status"])
    return frame


def _table(ws, title: str, frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """A title line, a header of Chinese column names, the rows (escaped), and a blank line."""
    ws.append([_bold(ws, title)])
    ws.append([_bold(ws, name) for name in columns.values()])
    body = frame.reindex(columns=list(columns))
    if "severity" in body:
        body["severity"] = body["severity"].map(SEVERITY_WORDS).fillna(body["severity"])
    safe = body.apply(_cells)
    for row in safe.itertuples(index=False):
        ws.append(list(row))
    ws.append([])


def _cells(values: pd.Series) -> pd.Series:
    """Numbers stay numbers (missing: empty cell); text is escaped against formula injection."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(object).where(values.notna(), None)
    return spreadsheet_safe(values)


def _bold(ws, text: str):
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=str(spreadsheet_safe(pd.Series([text])).iloc[0]))
    cell.font = Font(bold=True)
    return cell
