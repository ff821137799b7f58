"""The validation workbook as a steward reads it, from a real gate's results."""

from __future__ import annotations

import openpyxl
import pandas as pd

from jingzhun.contract import SOURCES
from jingzhun.policy import Policy
from jingzhun.quality.gate import gate_frame
from jingzhun.quality.suites import Tonight
from jingzhun.quality_report import write_validation_workbook
from jingzhun.staging import QUARANTINE_COLUMNS, STAGING

from helpers import AS_OF, valid_id


def test_an_example_of_an_empty_cell_reads_as_empty(tmp_path):
    rows = pd.DataFrame({"_file": "hukou/t.csv", "_sheet": "", "_row": [2, 3],
                         "id_number": [valid_id("62042119800101001"), valid_id("62042119800101002")],
                         "name": ["人1", "  "], "hukou_household_id": ["H1", "H2"],
                         "address_code": "620421100201", "person_status": "正常"})
    staged = STAGING["hukou"](rows.astype({"_row": "int64"}), Policy())
    outcome = gate_frame(staged.checked, "hukou", {"hukou/t.csv": 0.0}, Policy(), Tonight(AS_OF, AS_OF), tmp_path)
    summary = {"hukou": {"status": "loaded", "files": 1, "rows_read": 2, "rows_valid": 1, "rows_quarantined": 1,
                         "validation": "row_failures", "message": "", "cleaned": {}, "ignored": 0}}

    path = write_validation_workbook(tmp_path / "v.xlsx", summary, outcome.results,
                                     pd.DataFrame(columns=QUARANTINE_COLUMNS))

    sheet = openpyxl.load_workbook(path, read_only=True)[SOURCES["hukou"].title]
    text = "\n".join(str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None)
    assert "t.csv 第3行: (空)" in text
    assert "nan" not in text and "None" not in text
