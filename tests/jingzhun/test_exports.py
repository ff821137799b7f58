import openpyxl
import pandas as pd

from jingzhun import cli, warehouse
from jingzhun.exports import spreadsheet_safe

from helpers import flag, published_empty, raised


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


def _published_with_people(tmp_path):
    """A warehouse with flags about persons (18-digit identity numbers), one of them decided by a steward."""
    from helpers import valid_id
    from jingzhun.review import HEADERS, write_review_workbook
    from jingzhun.review_import import import_review

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine = warehouse.connect(url)
    ids = [valid_id(f"6204211974{n:07d}") for n in range(1, 6)]
    rows = pd.DataFrame([{**flag(household=f"P{n}"), "id_number": i, "rule_code": "RM_MEMBER_DECEASED"}
                         for n, i in enumerate(ids)])
    rules = pd.DataFrame({"rule_code": ["RM_MEMBER_DECEASED"], "evaluated": [True], "reason": [""], "raised": [5]})
    warehouse.publish(engine, "r1", pd.DataFrame(), pd.DataFrame(), {}, rows, rules, None)
    book = write_review_workbook(engine, tmp_path / "review.xlsx")
    wb = openpyxl.load_workbook(book)
    ws = wb["核实清单"]
    ws.cell(2, HEADERS.index("决定") + 1).value, ws.cell(2, HEADERS.index("备注") + 1).value = "驳回", "人员健在,系误报"
    wb.save(book)
    import_review(engine, book, reviewer="孙核查")
    return url, ids


def test_the_xlsx_export_keeps_every_identity_number_whole_when_a_spreadsheet_opens_it(tmp_path):
    """LibreOffice (headless) opens the export as a person's spreadsheet would and saves what it shows as CSV."""
    import subprocess

    from helpers import office

    url, ids = _published_with_people(tmp_path)
    out = tmp_path / "flags.xlsx"
    assert cli.main(["flags", "export", "--warehouse", url, "--out", str(out), "--status", "all"]) == 0
    subprocess.run([office(), "--headless", "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false",
                    "--outdir", str(tmp_path / "seen"), str(out)], check=True, timeout=180, capture_output=True)
    seen = pd.read_csv(tmp_path / "seen" / "flags.csv", dtype=str)
    assert sorted(seen["id_number"]) == sorted(ids)
    sheet = openpyxl.load_workbook(out).active
    assert all(c.data_type == "s" and c.number_format == "@" for c in sheet["E"][1:])
    assert sheet.column_dimensions["E"].width >= 18 and sheet.freeze_panes == "A2"


def test_decided_flags_carry_their_decision_reviewer_date_and_note(tmp_path):
    url, _ = _published_with_people(tmp_path)
    assert cli.main(["flags", "export", "--warehouse", url, "--out", str(tmp_path / "f.csv"), "--status", "all"]) == 0
    frame = pd.read_csv(tmp_path / "f.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns[:10]) == warehouse.FLAG_EXPORT_COLUMNS   # the machine contract first, unchanged
    decided = frame[frame["decision"].ne("")]
    assert len(decided) == 1 and decided.iloc[0]["status"] == "dismissed"
    assert decided.iloc[0][["decision", "reviewer", "decision_note"]].tolist() == ["驳回", "孙核查", "人员健在,系误报"]
    assert pd.Timestamp(decided.iloc[0]["decided_at"]).year >= 2026
    assert frame.loc[frame["decision"].eq(""), "reviewer"].eq("").all()


def test_an_unknown_export_extension_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    published_empty(url)
    assert cli.main(["flags", "export", "--warehouse", url, "--out", str(tmp_path / "x.txt")]) == 2
    assert "must end in .csv or .xlsx" in capsys.readouterr().err
