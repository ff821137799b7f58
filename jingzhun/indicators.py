"""Indicators for officials, per township and village, from the last published nightly run: register and
unexited households and persons, the hukou population, poverty incidence against the village-exit threshold
("一低于": below 3 %, policy), the open flags by direction, and a chart of incidence per village.

Grain: one row per village of the register (and one per township, their sums). Given an actor, only the villages
of their area are read: the area is a condition of the queries (:func:`jingzhun.signoff.access.in_area`), never a
filter of what was read; the workbench's page and the officials' workbook share this one computation.

A direction whose rules were not evaluated in that run (a source missing or blocked) reads 未评估 rather
than a count that would look like 0.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.chart import BarChart, LineChart, Reference
from sqlalchemy import Engine, func, select, true

from jingzhun import labels, warehouse
from jingzhun.policy import Policy
from jingzhun.privacy import Refused
from jingzhun.review import DIRECTION_TITLES, rule_titles
from jingzhun.sheets import table_sheet
from jingzhun.catalogue import RULES
from jingzhun.signoff.access import Actor, in_area
from jingzhun.written import save_workbook

DIRECTIONS = ("remove", "add", "revert", "exit", "refer", "review")
COUNTS = ["register_households", "register_persons", "unexited_households", "unexited_persons", "hukou_persons"]
COLUMNS = [("乡镇", "township_name", 14), ("村", "village_name", 10), ("村代码", "village_code", 14),
           ("建档立卡户数", "register_households", 9), ("建档立卡人数", "register_persons", 9),
           ("未脱贫户数", "unexited_households", 9), ("未脱贫人数", "unexited_persons", 9), ("户籍人口", "hukou_persons", 9),
           ("贫困发生率", "incidence", 9), ("退出标准", "threshold", 8), ("是否低于标准", "below", 9)] + [
           (f"待核实{DIRECTION_TITLES[d]}标记", d, 8) for d in DIRECTIONS]
NOT_EVALUATED = "未评估"


class NothingPublished(Refused):
    """No published nightly run holds village indicators yet."""


def indicators(engine: Engine, policy: Policy, actor: Actor | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(villages, townships, about): one row per village and per township. Counts of people come from the last
    published nightly run that could compute them (register and hukou loaded); the open flags are today's; the
    directions not evaluated (wholly, or some of their rules) are those of the last published nightly run.
    With ``actor``, only the villages of their area (and the townships' sums of those), selected by the database."""
    v, runs, rules, f = warehouse.village_indicators.c, warehouse.runs.c, warehouse.run_rules.c, warehouse.flags.c
    village_in_area = in_area(actor, v.village_code) if actor is not None else true()
    flag_in_area = in_area(actor, f.village_code) if actor is not None else true()
    with engine.connect() as conn:
        nightly = select(runs.run_id, runs.as_of).where(runs.status == "published", runs.region.is_(None))
        latest = conn.execute(nightly.order_by(runs.run_id.desc()).limit(1)).first()
        run = conn.execute(nightly.where(runs.run_id.in_(select(v.run_id).distinct()))   # hukou and register loaded
                           .order_by(runs.run_id.desc()).limit(1)).first()
        if run is None:
            raise NothingPublished("尚无已发布的夜间运行含村级指标 (no published nightly run with village indicators yet)")
        villages = pd.read_sql(select(warehouse.village_indicators).where(v.run_id == run.run_id, village_in_area), conn)
        open_flags = pd.read_sql(select(f.village_code, f.direction, func.count().label("n"))
                                 .where(f.status == "open", flag_in_area).group_by(f.village_code, f.direction), conn)
        skipped = set(conn.execute(select(rules.rule_code).where(rules.run_id == latest.run_id,
                                                                 rules.evaluated.is_(False))).scalars())
        reference = labels.stored_regions(conn)
    rules_of = {d: {c for c, r in RULES.items() if r.direction == d} for d in DIRECTIONS}
    not_evaluated = [d for d in DIRECTIONS if rules_of[d] and rules_of[d] <= skipped]
    partly = {d: sorted(rules_of[d] & skipped) for d in DIRECTIONS if d not in not_evaluated and rules_of[d] & skipped}
    counts = open_flags.pivot_table(index="village_code", columns="direction", values="n", aggfunc="sum")
    villages = villages.assign(township_name=labels.township_names(villages["village_code"], reference),
                               village_name=labels.region_names(villages["village_code"], reference, "village"))
    for d in DIRECTIONS:
        villages[d] = counts[d].reindex(villages["village_code"]).fillna(0).astype("int64").to_numpy() \
            if d in counts else 0
    townships = villages.groupby(["township_code", "township_name"], as_index=False)[COUNTS + list(DIRECTIONS)].sum()
    townships["village_name"] = "(全乡镇)"
    for frame in (villages, townships):
        frame["incidence"] = frame["unexited_persons"] / frame["hukou_persons"].where(frame["hukou_persons"] > 0)
        frame["threshold"] = policy.village_exit_incidence
        frame["below"] = frame["incidence"].lt(policy.village_exit_incidence).map({True: "是", False: "否"}).where(
            frame["incidence"].notna(), "无户籍人口")
        for d in not_evaluated:
            frame[d] = NOT_EVALUATED
    villages = villages.sort_values(["township_code", "village_code"]).reset_index(drop=True)
    about = {"run_id": run.run_id, "as_of": run.as_of, "latest_run": latest.run_id, "not_evaluated": not_evaluated,
             "partly": partly}
    return villages, townships.sort_values("township_code").reset_index(drop=True), about


def write_indicators(engine: Engine, policy: Policy, out: Path) -> dict:
    """The officials' workbook: villages, townships, and a chart of incidence per village with the threshold."""
    villages, townships, about = indicators(engine, policy)
    notes = [f"数据来自运行 {about['run_id']}(核对日期 {about['as_of']});贫困发生率 = 未脱贫人数 / 户籍人口;"
             f"退出标准:贫困发生率低于 {policy.village_exit_incidence:.0%}"]
    if about["latest_run"] != about["run_id"]:
        notes.append(f"最近一次运行 {about['latest_run']} 未能计算人口指标(建档立卡或户籍来源缺失或被阻断),以上为此前结果")
    if about["not_evaluated"]:
        notes.append("本次未评估(来源缺失或被阻断): " + "、".join(DIRECTION_TITLES[d] for d in about["not_evaluated"]))
    for d, codes in about["partly"].items():
        notes.append(f"{DIRECTION_TITLES[d]}标记中以下规则本次未评估,数量沿用此前结果: "
                     + '、'.join(rule_titles().get(c, c) for c in codes))
    wb = openpyxl.Workbook()
    table_sheet(wb.active, "各村贫困发生率及待核实标记", villages, COLUMNS, name="村级指标", subtitle=";".join(notes))
    table_sheet(wb.create_sheet("乡镇汇总"), "各乡镇贫困发生率及待核实标记", townships,
                [c for c in COLUMNS if c[1] != "village_code"], subtitle=";".join(notes))
    _chart(wb, len(villages))
    out = Path(out)
    save_workbook(wb, out)
    return {"villages": len(villages), "townships": len(townships), "run_id": about["run_id"],
            "below": int(villages["below"].eq("是").sum()), "not_evaluated": about["not_evaluated"]}


def _chart(wb, n: int) -> None:
    """Incidence per village as bars, the exit threshold as a line, on a sheet of its own."""
    data = wb["村级指标"]
    header = 3  # title, subtitle, header
    col = {key: i for i, (_, key, _) in enumerate(COLUMNS, start=1)}
    bars = BarChart()
    bars.type, bars.title, bars.y_axis.title = "col", "各村贫困发生率", "贫困发生率"
    bars.y_axis.numFmt, bars.y_axis.majorGridlines = "0%", None
    bars.add_data(Reference(data, min_col=col["incidence"], min_row=header, max_row=header + n), titles_from_data=True)
    bars.set_categories(Reference(data, min_col=col["village_name"], min_row=header + 1, max_row=header + n))
    line = LineChart()
    line.add_data(Reference(data, min_col=col["threshold"], min_row=header, max_row=header + n), titles_from_data=True)
    bars += line
    bars.width, bars.height = max(24, 0.9 * n), 14
    sheet = wb.create_sheet("贫困发生率图")
    sheet.add_chart(bars, "A1")
    sheet.page_setup.orientation, sheet.page_setup.paperSize = "landscape", sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 1
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
