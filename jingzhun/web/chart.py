"""The incidence chart of ``/indicators``, drawn by the server as SVG: one figure per township, one horizontal bar
per village (its poverty incidence), the policy's exit threshold (``village_exit_incidence``) as a dashed line
across them, and a scale below. Every figure of a page shares one scale, so that bars compare across townships.

This module computes geometry only: numbers for the template's ``<rect>``, ``<line>`` and ``<text>``. Colours, type
and dashes are SVG presentation attributes or classes of the static stylesheet (the CSP allows no inline style),
and nothing runs in the browser. A village without hukou population has no incidence: no bar, the words
无户籍人口.

Grain: one bar per village row of :func:`jingzhun.indicators.indicators`; one figure per township.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

WIDTH = 720        # the viewBox's width; the page scales it to the column (and to A4 when printed)
LABEL = 124        # the village names' column
RIGHT = 64         # room for the value after the longest bar
ROW, BAR = 22, 14  # one village's height, its bar's
TOP, BOTTOM = 30, 30
STEPS = (0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25)  # tick spacings a scale may use
NO_POPULATION = "无户籍人口"


def scale(largest: float, threshold: float) -> tuple[float, float]:
    """(top of the scale, tick spacing): the smallest step of :data:`STEPS` giving at most six ticks over the
    largest incidence and the threshold, the top a whole number of steps above both."""
    high = max(float(largest) if np.isfinite(largest) else 0.0, float(threshold), 0.01)
    step = next((s for s in STEPS if high / s <= 6), 0.25)
    return min(1.0, math.ceil(round(high / step, 9)) * step), step


def percent(values: pd.Series) -> pd.Series:
    """Shares as people read them: 12.3%; a missing one as :data:`NO_POPULATION`."""
    text = (values * 100).round(1).map("{:.1f}%".format, na_action="ignore")
    return text.where(values.notna(), NO_POPULATION).astype("str")


def charts(villages: pd.DataFrame, threshold: float) -> list[dict]:
    """One figure per township of ``villages`` (columns township_code, township_name, village_code, village_name,
    incidence), in their order: its title, height, bars, the threshold's x and the ticks."""
    if villages.empty:
        return []
    top, step = scale(villages["incidence"].max(skipna=True), threshold)
    plot = WIDTH - LABEL - RIGHT
    x = lambda share: LABEL + plot * share / top  # noqa: E731 - the one mapping of a share to the page
    incidence = villages["incidence"].astype("float64")
    bars = pd.DataFrame({
        "township_code": villages["township_code"].astype("str"),
        "code": villages["village_code"].astype("str"), "name": villages["village_name"].astype("str"),
        "slot": villages.groupby("township_code", sort=False).cumcount(),
        "width": (incidence.fillna(0).clip(0, top) * plot / top).round(1),
        "kind": np.select([incidence.isna(), incidence.lt(threshold)], ["none", "below"], "above"),
        "value": percent(incidence),
    })
    bars["y"] = TOP + bars["slot"] * ROW + (ROW - BAR) / 2
    bars["middle"] = bars["y"] + BAR / 2
    bars["value_x"] = (LABEL + bars["width"] + 5).round(1)
    ticks = [{"x": round(x(i * step), 1), "label": f"{i * step * 100:g}%"} for i in range(int(round(top / step)) + 1)]
    names = villages.drop_duplicates("township_code").set_index("township_code")["township_name"]
    figures = []
    for code, group in bars.groupby("township_code", sort=False):
        height = TOP + len(group) * ROW + BOTTOM
        figures.append({"code": code, "title": str(names.get(code, code)), "width": WIDTH, "height": height,
                        "axis_y": TOP + len(group) * ROW, "bars": group.to_dict("records"), "ticks": ticks,
                        "left": LABEL, "right": WIDTH - RIGHT, "top": TOP, "bar": BAR,
                        "threshold_x": round(x(min(threshold, top)), 1), "threshold": percent(pd.Series([threshold])).iloc[0]})
    return figures
