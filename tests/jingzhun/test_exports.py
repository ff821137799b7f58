import openpyxl
import pandas as pd

from jingzhun import cli, warehouse
from jingzhun.exports import spreadsheet_safe

from helpers import flag, raised


def test_spreadsheet_safe_quotes_formula_starts_only():
    out = spreadsheet_safe(pd.Series(["=1+1", "+86", "-x", "@SUM(A1)", "\tx", "张三", "{\"a\": 1}", None]))
    assert out.tolist() == ["'=1+1", "'+86", "'-x", "'@SUM(A1)", "'\tx", "张三", "{\"a\": 1}", ""]


def test_flags_export_columns_in_order_as_bom_csv_and_xlsx(tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine = warehouse.connect(url)
    rules = pd.DataFrame({"rule_code": ["RM_CAR"], "evaluated": [True], "reason": [""], "raised": [2]})
    rows = raised(flag(), flag(household="P2")).drop(columns=["flag_key", "evidence_hash"])
    warehouse.publish(engine, "r1", pd.DataFrame(), pd.DataFrame(), {}, rows, rules, None)
    csv_path, xlsx_path = tmp_path / "flags.csv", tmp_path / "flags.xlsx"
    assert cli.main(["flags", "export", "--warehouse", url, "--out", str(csv_path)]) == 0
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str)
    assert list(frame.columns[:10]) == warehouse.FLAG_EXPORT_COLUMNS
    assert len(frame) == 2 and set(frame["status"]) == {"open"} and set(frame["first_seen_run"]) == {"r1"}
    assert cli.main(["flags", "export", "--warehouse", url, "--out", str(xlsx_path), "--status", "all"]) == 0
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert [c.value for c in sheet[1]][:10] == warehouse.FLAG_EXPORT_COLUMNS and sheet.max_row == 3
