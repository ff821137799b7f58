"""Slips at a steward's desk: nothing reaches a flag its row does not show, and nothing typed is silently dropped.
Each slip is made on a real workbook of a published county; each is refused whole, naming the row (and column)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select

from jingzhun import warehouse
from jingzhun.review import HEADERS, write_review_workbook
from jingzhun.review_import import NOTES_CLEANED, ReviewError, import_review, read_workbook
from jingzhun.steps import rules_evaluated

from helpers import AS_OF, office, write_padded_xlsx

VISIBLE = HEADERS.index("备注") + 1        # A:N, what a person sees
HIDDEN = range(VISIBLE + 1, len(HEADERS) + 1)  # O:R, the hidden key columns
DECISION, NOTE = HEADERS.index("决定") + 1, HEADERS.index("备注") + 1


def publish(engine, frames, run_id: str, before_commit=None) -> None:
    from jingzhun.engine import flags
    from jingzhun.policy import Policy

    raised, skipped = flags(frames, Policy(), pd.Timestamp(AS_OF))
    warehouse.publish(engine, run_id, pd.DataFrame(), pd.DataFrame(), frames, raised, rules_evaluated(raised, skipped),
                      None, before_commit=before_commit)


@pytest.fixture(scope="module")
def published(frames, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("slips") / "warehouse.sqlite"
    publish(warehouse.connect(f"sqlite:///{path}"), frames, "r1")
    return str(path)


@pytest.fixture
def desk(published, tmp_path):
    """A copy of the published county and its review workbook: (engine, workbook path)."""
    copy = tmp_path / "warehouse.sqlite"
    shutil.copy(published, copy)
    engine = warehouse.connect(f"sqlite:///{copy}")
    return engine, write_review_workbook(engine, tmp_path / "review.xlsx")


def statuses(engine) -> pd.Series:
    with engine.connect() as conn:
        return pd.read_sql(select(warehouse.flags.c.flag_key, warehouse.flags.c.status), conn).set_index("flag_key")[
            "status"].sort_index()


def refused(engine, book, *expected: str) -> str:
    """Import the workbook: it must be refused with every expected text, and nothing stored."""
    before = statuses(engine)
    with pytest.raises(ReviewError) as caught:
        import_review(engine, book, reviewer="王五")
    pd.testing.assert_series_equal(statuses(engine), before)
    with engine.connect() as conn:
        assert pd.read_sql(select(warehouse.reviews), conn).empty
    for text in expected:
        assert text in str(caught.value), str(caught.value)
    return str(caught.value)


def edit(book, change) -> None:
    wb = openpyxl.load_workbook(book)
    change(wb["核实清单"])
    wb.save(book)


def test_a_row_carrying_another_flags_hidden_key_decides_nothing(desk):
    engine, book = desk

    def swap(ws):
        for col in HIDDEN:  # row 2 shows one household and carries row 9's hidden key, digest, state and check
            ws.cell(2, col).value = ws.cell(9, col).value
        ws.cell(2, DECISION).value = "确认"
    edit(book, swap)
    refused(engine, book, "第2行", "与隐藏标识所指的标记不符")


def test_a_sheet_sorted_without_its_hidden_columns_sends_no_decision_elsewhere(desk):
    engine, book = desk

    def half_sort(ws):
        rows = [[ws.cell(r, c).value for c in range(1, VISIBLE + 1)] for r in range(2, ws.max_row + 1)]
        for r, values in enumerate(reversed(rows), start=2):
            for c, value in enumerate(values, start=1):
                ws.cell(r, c).value = value
        for r in range(2, 7):
            ws.cell(r, DECISION).value = "确认"
    edit(book, half_sort)
    message = refused(engine, book, "第2行", "第6行")
    assert "排序时须选中整张表" in message or "与隐藏标识所指的标记不符" in message


def test_one_flag_decided_on_two_rows_is_refused(desk):
    engine, book = desk

    def duplicate(ws):
        last = ws.max_row + 1
        for c in range(1, len(HEADERS) + 1):
            ws.cell(last, c).value = ws.cell(2, c).value
        ws.cell(2, DECISION).value = "确认"
        ws.cell(last, DECISION).value, ws.cell(last, NOTE).value = "驳回", "不符合"
    edit(book, duplicate)
    refused(engine, book, "同一标记出现在多行")


def test_a_row_of_another_village_in_a_reconciliation_workbook_is_refused(published, frames, tmp_path):
    shutil.copy(published, tmp_path / "wh.sqlite")
    engine = warehouse.connect(f"sqlite:///{tmp_path / 'wh.sqlite'}")
    with engine.connect() as conn:
        villages = pd.read_sql(select(warehouse.flags.c.village_code).distinct(), conn)["village_code"].sort_values()
    mine, theirs = villages.iloc[0], villages.iloc[-1]
    own = write_review_workbook(engine, tmp_path / "own.xlsx", warehouse.Scope(mine))
    other = write_review_workbook(engine, tmp_path / "other.xlsx", warehouse.Scope(theirs))
    source = openpyxl.load_workbook(other)["核实清单"]

    def paste(ws):
        last = ws.max_row + 1
        for c in range(1, len(HEADERS) + 1):
            ws.cell(last, c).value = source.cell(2, c).value
        ws.cell(last, DECISION).value = "确认"
    edit(own, paste)
    refused(engine, own, "不在本清单的范围", mine)


@pytest.mark.parametrize("column, value, expected", [
    ("备注", "已入户,情况属实", "填写了备注但没有决定"),
    ("上次决定", "确认", "列“上次决定”与导出时不同"),
    ("户主", "李四", "列“户主”与导出时不同"),
])
def test_typed_work_outside_a_decision_is_refused_not_dropped(desk, column, value, expected):
    engine, book = desk
    edit(book, lambda ws: setattr(ws.cell(3, HEADERS.index(column) + 1), "value", value))
    refused(engine, book, "第3行", expected)


def test_something_typed_beside_the_table_is_refused(desk):
    engine, book = desk
    edit(book, lambda ws: setattr(ws.cell(4, len(HEADERS) + 2), "value", "确认"))
    refused(engine, book, "表格右侧不得填写内容")


def test_a_moved_column_is_named(desk):
    engine, book = desk

    def move(ws):
        ws.move_range(f"M1:M{ws.max_row}", cols=len(HEADERS) - HEADERS.index("决定") + 1)
    edit(book, move)
    refused(engine, book, "列“决定”被移到 T 列,应在 M 列", "jingzhun review export")


def test_a_workbook_saved_as_xls_is_refused_saying_save_as_xlsx(desk, tmp_path):
    engine, book = desk
    done = subprocess.run([office(), "--headless", "--convert-to", "xls", "--outdir", str(tmp_path / "xls"),
                           str(book)], capture_output=True, timeout=180)
    assert done.returncode == 0
    old = next((tmp_path / "xls").glob("*.xls"))
    refused(engine, old, "另存为” .xlsx")
    renamed = old.rename(tmp_path / "renamed.xlsx")  # the old format under the new name
    refused(engine, renamed, "另存为” .xlsx")


def test_a_workbook_saved_again_by_an_office_suite_still_imports(desk, tmp_path):
    """The row checks survive a real office suite opening and saving the workbook (no false refusal)."""
    engine, book = desk
    done = subprocess.run([office(), "--headless", "--convert-to", "xlsx", "--outdir", str(tmp_path / "saved"),
                           str(book)], capture_output=True, timeout=180)
    assert done.returncode == 0
    saved = tmp_path / "saved" / "review.xlsx"
    edit(saved, lambda ws: (setattr(ws.cell(2, DECISION), "value", "确认"),
                            setattr(ws.cell(3, DECISION), "value", "驳回"), setattr(ws.cell(3, NOTE), "value", "已核实")))
    assert import_review(engine, saved, reviewer="王五") == {"确认": 1, "驳回": 1}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_import_meeting_a_publish_is_whole_and_visible_afterwards(frames, tmp_path, backend, request):
    """A publish holds its transaction open while an import of decisions starts: the import waits for it, and
    every decision it reports is in the flags afterwards (it was lost on PostgreSQL)."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = warehouse.connect(url)
    publish(engine, frames, "r1")
    book = write_review_workbook(engine, tmp_path / "review.xlsx")
    edit(book, lambda ws: [setattr(ws.cell(r, DECISION), "value", "确认") for r in range(2, 12)])
    publishing, outcome = threading.Event(), {}

    def hold(conn):
        publishing.set()
        time.sleep(3)  # the import starts while this transaction is still open

    def importer():
        publishing.wait(120)
        outcome["counts"] = import_review(warehouse.connect(url), book, reviewer="王五")

    thread = threading.Thread(target=importer)
    thread.start()
    publish(engine, frames, "r2", before_commit=hold)
    thread.join(120)
    assert outcome["counts"] == {"确认": 10}
    with engine.connect() as conn:
        confirmed = pd.read_sql(select(warehouse.flags.c.flag_key).where(warehouse.flags.c.status == "confirmed"), conn)
        reviews = pd.read_sql(select(warehouse.reviews.c.flag_key), conn)
    assert len(confirmed) == 10 and set(confirmed["flag_key"]) == set(reviews["flag_key"])


def test_a_header_row_sorted_into_the_data_is_refused_without_repeating_what_it_holds(desk):
    engine, book = desk
    number = "620421199001011234"
    edit(book, lambda ws: setattr(ws.cell(1, len(HEADERS) + 1), "value", number))
    message = refused(engine, book, "S1")
    assert number not in message


def test_merged_decision_cells_are_refused_not_read_as_one_row(desk):
    engine, book = desk

    def merge(ws):
        ws.cell(2, DECISION).value = "确认"
        ws.merge_cells(start_row=2, start_column=DECISION, end_row=4, end_column=DECISION)
    edit(book, merge)
    refused(engine, book, "M2:M4", "合并的单元格")


@pytest.mark.parametrize("value", [None, "null", '{"region": 5}', '{"region": "", "households": "P1"}'])
def test_a_workbook_whose_record_of_its_region_is_missing_or_damaged_is_refused(desk, value):
    engine, book = desk
    wb = openpyxl.load_workbook(book)
    wb.custom_doc_props.props = [p for p in wb.custom_doc_props.props if p.name != "jingzhun.scope"]
    if value is not None:
        from openpyxl.packaging.custom import StringProperty

        wb.custom_doc_props.append(StringProperty(name="jingzhun.scope", value=value))
    wb["核实清单"].cell(2, DECISION).value = "确认"
    wb.save(book)
    refused(engine, book, "清单范围信息")


def test_a_pending_note_that_starts_like_a_formula_comes_back_unchanged(desk, frames, tmp_path):
    """The quote written before a note starting with - (a formula to a spreadsheet) is not part of the note: the
    carried-over 待核实 imported untouched records nothing new."""
    engine, book = desk
    edit(book, lambda ws: (setattr(ws.cell(2, DECISION), "value", "待核实"),
                           setattr(ws.cell(2, NOTE), "value", "-2人外出务工,下周再访")))
    assert import_review(engine, book, reviewer="王五") == {"待核实": 1}
    publish(engine, frames, "r2")  # another night: the pending check is carried over, pre-filled
    again = write_review_workbook(engine, tmp_path / "again.xlsx")
    assert openpyxl.load_workbook(again)["核实清单"].cell(2, NOTE).value == "'-2人外出务工,下周再访"
    assert import_review(engine, again, reviewer="赵六") == {"unchanged": 1}
    with engine.connect() as conn:
        notes = pd.read_sql(select(warehouse.reviews.c.note), conn)["note"].tolist()
    assert notes == ["-2人外出务工,下周再访"]


def test_a_workbook_with_gigabytes_of_shared_strings_is_refused_before_openpyxl_parses_it(tmp_path):
    path = write_padded_xlsx(tmp_path / "核实清单.xlsx", [HEADERS, ["x"] * len(HEADERS)], padding_mib=2048)
    started = time.monotonic()
    with pytest.raises(ReviewError, match="核实清单.xlsx: 拒绝读取.*xl/sharedStrings.xml.*nothing imported"):
        read_workbook(path)
    assert time.monotonic() - started < 2


def test_a_note_is_stored_without_invisible_combining_or_bidi_characters_and_the_summary_counts_it(desk):
    """A 备注 typed with U+202E, U+0336, U+200B and U+3164 was stored as typed and shown in the dossier (#24)."""
    engine, book = desk
    edit(book, lambda ws: (setattr(ws.cell(2, DECISION), "value", "驳回"),
                           setattr(ws.cell(2, NOTE), "value", "\u202e已核实\u0336,\u200b家中无车\u3164"),
                           setattr(ws.cell(3, DECISION), "value", "确认"),
                           setattr(ws.cell(3, NOTE), "value", "已入户核实")))
    assert import_review(engine, book, reviewer="王五") == {"驳回": 1, "确认": 1, NOTES_CLEANED: 1}
    with engine.connect() as conn:
        notes = pd.read_sql(select(warehouse.reviews.c.note), conn)["note"].tolist()
    assert sorted(notes) == sorted(["已核实,家中无车", "已入户核实"])


def test_a_dismissal_whose_note_is_only_invisible_characters_has_no_note(desk):
    engine, book = desk
    edit(book, lambda ws: (setattr(ws.cell(2, DECISION), "value", "驳回"),
                           setattr(ws.cell(2, NOTE), "value", "\u200b\u3164\u202e")))
    refused(engine, book, "第2行: 驳回须在备注中说明理由")
