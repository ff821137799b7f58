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


def office() -> str:
    """LibreOffice's binary: what the tests open workbooks with as a person's spreadsheet would. Locally a test
    skips without it; CI must have it (.ci/run installs Debian's libreoffice-calc-nogui)."""
    import os
    import shutil

    import pytest

    found = shutil.which("soffice") or shutil.which("libreoffice")
    if not found:
        if os.environ.get("CI"):
            raise RuntimeError("CI needs LibreOffice (.ci/run installs Debian's libreoffice-calc-nogui)")
        pytest.skip("LibreOffice is not installed")
    return found
