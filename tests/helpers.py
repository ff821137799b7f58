"""Helpers for tests: valid identity numbers and real Excel files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd

from jingzhun.normalise import check_digits

AS_OF = date(2026, 11, 22)


def valid_id(body17: str) -> str:
    return body17 + check_digits(pd.Series([body17])).iloc[0]


def write_xlsx(path: Path, sheets: dict[str, list[list]], merge_title: bool = False) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        if merge_title:
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(2, len(rows[-1])))
    wb.save(path)
    return path


def flag(rule="RM_CAR", household="P1", evidence='{"as_of": "2026-01-01", "records": [1]}', village="620421100201"):
    return {"rule_code": rule, "direction": "remove", "household_id": household, "hukou_household_id": "",
            "id_number": "", "village_code": village, "evidence": evidence, "evidence_text": "t"}


def raised(*rows) -> pd.DataFrame:
    """Flags as the rules return them, with their identity and evidence digest."""
    from jingzhun import warehouse

    frame = pd.DataFrame(list(rows))
    return frame.assign(flag_key=warehouse.flag_keys(frame), evidence_hash=warehouse.evidence_hashes(frame))


def required_tool(*names: str, package: str) -> str:
    """The first of ``names`` on the PATH: a real program a test drives as a person would (a browser, an office
    suite). Locally the test skips without it; CI must have it (.ci/run installs Debian's ``package``)."""
    import os
    import shutil

    import pytest

    found = next((path for name in names if (path := shutil.which(name))), None)
    if not found:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs {names[0]} (.ci/run installs Debian's {package})")
        pytest.skip(f"{names[0]} is not installed")
    return found


def office() -> str:
    """LibreOffice: what the tests open workbooks with, as a person's spreadsheet would."""
    return required_tool("soffice", "libreoffice", package="libreoffice-calc-nogui")


def publish_county(url: str, frames: dict, landing, run_id: str = "r1"):
    """Publish a staged county's registers and flags, with the regions reference its landing folder holds, as a
    nightly run would (no run record); returns (engine, the flags raised)."""
    import pandas as pd

    from jingzhun import labels, warehouse
    from jingzhun.catalogue import RULES
    from jingzhun.engine import flags
    from jingzhun.policy import Policy, ReaderLimits

    engine = warehouse.connect(url)
    raised, _ = flags(frames, Policy(), pd.Timestamp(AS_OF))
    rules = pd.DataFrame({"rule_code": list(RULES), "evaluated": True, "reason": "", "raised": 0})
    names = labels.read_regions(labels.regions_files(landing, None), ReaderLimits())
    warehouse.publish(engine, run_id, pd.DataFrame(), pd.DataFrame(), frames, raised, rules, None, region_names=names)
    return engine, raised


def published_empty(url: str):
    """A warehouse one run has published into, with no register and no flag (what a command reading one needs)."""
    import pandas as pd

    from jingzhun import warehouse
    from jingzhun.engine import FLAG_COLUMNS
    from jingzhun.steps import rules_evaluated

    engine = warehouse.connect(url)
    none = pd.DataFrame({c: pd.Series(dtype="str") for c in FLAG_COLUMNS})
    warehouse.publish(engine, "r0", pd.DataFrame(), pd.DataFrame(), {}, none, rules_evaluated(none, {}), None)
    return engine
