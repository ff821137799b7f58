"""What a run says about each source, for the steward's run page (``/runs/{run_id}``) and the data-problem tickets
opened from it: the quality gate's checks (``validation_results``) per source, the sources blocked for the night
kept apart from those that only set rows aside, and the words of a ticket to the sending department.

Grain: one entry per source of a run, each with one row per expectation checked. Run records speak of files, rows
and columns only (:mod:`jingzhun.privacy`), and so does this: an observed value is shown when it is a number (a
row count, a file's age), a check's examples never (they quote cells, masked or not), and a ticket's words count
rows per reason and name their files and row numbers, never a value. Rows that were not data (blank, totals) are
no problem of the department's and are left out of tickets.
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd
from sqlalchemy import Connection, func, select

from jingzhun.contract import SOURCES
from jingzhun.quality.gate import RAISED
from jingzhun.quality_report import _ENGLISH, CHECK_ADVICE, SEVERITY_WORDS, STATUS_WORDS, reason_words
from jingzhun.readers import NOT_DATA_REASONS
from jingzhun.schema import quarantine, validation_results

CHECK_COLUMNS = ["expectation", "column", "description", "severity", "success", "element_count", "unexpected_count",
                 "unexpected_percent", "observed_value", "outcome"]
EXAMPLE_ROWS = 5      # row numbers a ticket names per reason (the department finds the rest the same way)
TICKET_REASONS = 12   # reasons a ticket lists per source


class SourceState(StrEnum):
    blocked = "blocked"              # a source-level check failed, or the source could not be used: not used tonight
    warned = "warned"                # row checks failed: those rows set aside, the rest used
    passed = "passed"
    not_validated = "not_validated"  # no file, or none readable before the gate


STATE_TITLES = {SourceState.blocked: "来源被阻断:当晚未使用,沿用上次数据", SourceState.warned: "部分行已隔离:其余行照常使用",
                SourceState.passed: "全部通过", SourceState.not_validated: "未校验(未收到文件或无法读取)"}


def department(source: str) -> str:
    spec = SOURCES.get(source)
    return spec.department if spec else ""


def column_titles(frame: pd.DataFrame) -> pd.Series:
    """Each check's column as its department names it (the Chinese header); — where a check has none."""
    headers = {(s, c.name): c.header for s, spec in SOURCES.items() for c in spec.columns}
    keys = pd.Series(list(zip(frame["source"], frame["column"].fillna(""))), index=frame.index, dtype="object")
    named = keys.map(headers)
    return named.where(named.notna(), frame["column"].fillna("").replace({"_file_age_days": "文件修改日期", "": "—"}))


def observed(frame: pd.DataFrame) -> pd.Series:
    """An observed value as a steward reads it, when it is a number (a file's age in days, a count); a check that
    raised says so; any other text is withheld: it may quote a cell."""
    text = frame["observed_value"].fillna("").astype("str")
    number = pd.to_numeric(text, errors="coerce")
    shown = number.map("{:g}".format, na_action="ignore")
    age = "最旧文件早于核对日期 " + number.clip(lower=0).round().astype("Int64").astype("str") + " 天"
    shown = shown.mask(frame["expectation"].eq("expect_files_fresh") & number.notna(), age)
    withheld = text.ne("") & number.isna()
    return shown.where(~withheld, text.where(text.eq(RAISED), "(非数值,不予显示)")).fillna("").astype("str")


def validation(conn: Connection, run_id: str, summary: dict[str, dict]) -> list[dict]:
    """The run's sources, blocked first, then warned, passed and not validated, each with its department, state and
    checks (failed first). ``summary`` is the run record's per-source status (``runs.sources``)."""
    v = validation_results.c
    checks = pd.read_sql(select(v.source, *[v[c] for c in CHECK_COLUMNS]).where(v.run_id == run_id), conn)
    checks["success"] = checks["success"].astype(bool)
    failed = ~checks["success"]
    blocked = set(checks.loc[failed & checks["severity"].eq("source"), "source"])
    warned = set(checks.loc[failed & checks["severity"].eq("row"), "source"])
    share = pd.to_numeric(checks["unexpected_percent"], errors="coerce")
    checks = checks.assign(
        column_title=column_titles(checks), observed=observed(checks), failed=failed,
        severity_title=checks["severity"].map(SEVERITY_WORDS).fillna(checks["severity"]),
        share=share.map("{:.2f}%".format, na_action="ignore").fillna(""),
        outcome=checks["outcome"].fillna("").astype("str").str.replace(_ENGLISH, "", regex=True),
        advice=checks["expectation"].map(CHECK_ADVICE).fillna("请联系{dept}核实").where(failed, ""),
        department=checks["source"].map(department))
    checks["advice"] = [a.replace("{dept}", d) for a, d in zip(checks["advice"], checks["department"])]
    out = []
    for source in dict.fromkeys([*summary, *checks["source"]]):   # a run's dozen sources
        status = (summary.get(source) or {}).get("status", "")
        own = checks[checks["source"].eq(source)].sort_values("failed", ascending=False, kind="stable")
        if source in blocked or status in ("blocked", "failed"):
            state = SourceState.blocked
        elif source in warned:
            state = SourceState.warned
        elif len(own):
            state = SourceState.passed
        else:
            state = SourceState.not_validated
        spec = SOURCES.get(source)
        out.append({"source": source, "title": spec.title if spec else source, "department": department(source),
                    "state": state, "state_title": STATE_TITLES[state], "status": STATUS_WORDS.get(status, status),
                    "failed": own[own["failed"]].to_dict("records"), "passed": own[~own["failed"]].to_dict("records")})
    order = list(SourceState)
    return sorted(out, key=lambda s: order.index(s["state"]))


def problems(conn: Connection, run_id: str, as_of=None) -> dict[str, str]:
    """Per source with rows set aside or a failed source-level check: what a ticket to its department says, in
    words: rows per reason, with the files and first row numbers, and the failed checks. No cell's value."""
    q, v = quarantine.c, validation_results.c
    real = q.run_id == run_id, q.reason.not_in(NOT_DATA_REASONS)
    counts = pd.read_sql(select(q.source, q.reason, func.count().label("n")).where(*real)
                         .group_by(q.source, q.reason), conn)
    rank = func.row_number().over(partition_by=(q.source, q.reason), order_by=(q.file, q.row)).label("k")
    ranked = select(q.source, q.reason, q.file, q.row, rank).where(*real).subquery()
    firsts = pd.read_sql(select(ranked).where(ranked.c.k <= EXAMPLE_ROWS), conn)
    blocking = pd.read_sql(select(v.source, v.description).where(v.run_id == run_id, v.severity == "source",
                                                                  v.success.is_(False)), conn)
    where = (firsts.assign(row=firsts["row"].astype("str"))
             .groupby(["source", "reason", "file"], sort=True)["row"].agg("、".join).reset_index())
    where["text"] = where["file"].astype("str") + " 第 " + where["row"] + " 行"
    places = where.groupby(["source", "reason"])["text"].agg(";".join)
    when = f"(运行 {run_id}" + (f",核对日期 {as_of}" if as_of else "") + ")"
    out = {}
    for source in sorted(set(counts["source"]) | set(blocking["source"])):   # a run's dozen sources at most
        spec = SOURCES.get(source)
        mine = counts[counts["source"].eq(source)].sort_values(["n", "reason"], ascending=[False, True])
        failed = blocking[blocking["source"].eq(source)]["description"].fillna("").astype("str")
        said = ([f"共 {int(mine['n'].sum())} 行未能使用(已隔离)"] if len(mine) else []) + (
            ["来源级检查未通过,本次未使用该来源的数据"] if len(failed) else [])
        lines = [f"{spec.title if spec else source}:{';'.join(said)}{when}。"]
        if len(mine):
            words = reason_words(mine["reason"], source) if spec else mine["reason"]
            lines.append("以下各行请核对更正后重新报送:")
            for i, (reason, text, n) in enumerate(zip(mine["reason"], words, mine["n"]), start=1):
                if i > TICKET_REASONS:
                    lines.append(f"…… 另有 {len(mine) - TICKET_REASONS} 种原因,见运行记录")
                    break
                more = "等" if n > EXAMPLE_ROWS else ""
                lines.append(f"{i}. {text}:{int(n)} 行,见 {places.get((source, reason), '')}{more}")
        if len(failed):
            lines.append("未通过的来源级检查:")
            lines += [f"- {d.replace(chr(10), ' ')}" for d in failed.str.replace(_ENGLISH, "", regex=True)]
        out[source] = "\n".join(lines)
    return out
