"""A workbook's parts measured before they are parsed: shared strings, styles and worksheets beyond the policy's
limits, whether the archive declares their size or lies about it, are refused in seconds, naming the file and
the part; a workbook within the limits reads as before; the other files of the source are still read."""

from __future__ import annotations

import time
import zipfile

import pytest

from jingzhun.contract import SOURCES
from jingzhun.policy import ReaderLimits, load_policy
from jingzhun.readers import SourceFileError, read_file, read_source

from helpers import write_padded_xlsx, write_xlsx

HUKOU = SOURCES["hukou"]
HEADER = ["公民身份号码", "姓名", "户号", "住址区划代码", "人员状态"]


def rows(ids) -> list[list[str]]:
    return [HEADER, [ids[0], "张三", "H1", "620421100201", "正常"], [ids[1], "李四", "H1", "620421100201", "正常"]]


def test_two_gigabytes_of_unused_shared_strings_are_refused_unread_in_a_second(tmp_path, ids):
    path = write_padded_xlsx(tmp_path / "户籍.xlsx", rows(ids), padding_mib=2048)
    assert path.stat().st_size < 8 << 20                             # the attack: a few MB on disk
    with zipfile.ZipFile(path) as book:
        assert book.getinfo("xl/sharedStrings.xml").file_size > 2 << 30
    started = time.monotonic()
    with pytest.raises(SourceFileError) as refused:
        read_file(path, HUKOU, "hukou/户籍.xlsx")
    assert time.monotonic() - started < 2
    message = str(refused.value)
    assert message.startswith("hukou/户籍.xlsx: 拒绝读取") and "xl/sharedStrings.xml" in message
    assert "2048.0 MiB" in message and "256 MiB" in message and "shared strings" in message and "张三" not in message


def test_a_part_that_declares_less_than_it_inflates_to_is_measured_and_stopped_at_the_limit(tmp_path, ids):
    path = write_padded_xlsx(tmp_path / "lies.xlsx", rows(ids), padding_mib=300, declare=1_000)
    with zipfile.ZipFile(path) as book:
        assert book.getinfo("xl/sharedStrings.xml").file_size == 1_000
    started = time.monotonic()
    with pytest.raises(SourceFileError, match=r"lies.xlsx: 拒绝读取.*xl/sharedStrings.xml.*inflates to more than the "
                                              r"limit of 256 MiB.*declares 1000 bytes"):
        read_file(path, HUKOU)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("part, field", [("xl/worksheets/sheet1.xml", "max_part_bytes"),
                                         ("xl/styles.xml", "max_styles_bytes"),
                                         ("xl/sharedStrings.xml", "max_shared_strings_bytes")])
def test_each_kind_of_part_has_its_limit_from_the_policy(tmp_path, ids, part, field):
    path = write_padded_xlsx(tmp_path / "book.xlsx", rows(ids), padding_mib=3, part=part)
    limits = load_policy(write_policy(tmp_path, f"limits: {{{field}: {2 << 20}}}\n")).limits
    with pytest.raises(SourceFileError, match=f"book.xlsx: 拒绝读取:部件 {part} .*2 MiB"):
        read_file(path, HUKOU, limits=limits)
    data, _, _ = read_file(path, HUKOU, limits=ReaderLimits(**{field: 4 << 20}))   # within the limit: read as sent
    assert data["name"].tolist() == ["张三", "李四"]


def write_policy(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_workbook_within_the_limits_is_read_as_before(tmp_path, ids):
    path = write_padded_xlsx(tmp_path / "padded.xlsx", rows(ids), padding_mib=8)
    data, _, record = read_file(path, HUKOU)
    assert data["id_number"].tolist() == ids[:2] and data["name"].tolist() == ["张三", "李四"]
    assert record.rows_read == 2 and not record.error


def test_a_damaged_part_is_a_clear_error_not_a_crash(tmp_path, ids):
    good = write_padded_xlsx(tmp_path / "good.xlsx", rows(ids), padding_mib=1)
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as book:
        info = book.getinfo("xl/sharedStrings.xml")
    at = info.header_offset + 30 + len(info.filename) + 100      # inside the part's compressed bytes
    raw[at:at + 8] = b"\xff" * 8
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(bytes(raw))
    with pytest.raises(SourceFileError, match="broken.xlsx: .*not a readable Excel workbook"):
        read_file(broken, HUKOU)


def test_the_other_files_of_the_source_are_still_read(tmp_path, ids):
    folder = tmp_path / "hukou"
    folder.mkdir()
    write_padded_xlsx(folder / "a_bomb.xlsx", rows(ids), padding_mib=2048)
    write_xlsx(folder / "b_good.xlsx", {"S": [HEADER, [ids[2], "王五", "H2", "620421100201", "正常"]]})
    data, _, records = read_source(tmp_path, HUKOU)
    assert data["id_number"].tolist() == [ids[2]]
    assert "hukou/a_bomb.xlsx" in records[0].error and "xl/sharedStrings.xml" in records[0].error
    assert not records[1].error and records[1].rows_read == 1


@pytest.mark.parametrize("cell, part", [
    ("<row r='1048576'><c r='XFD1048576' t='inlineStr'><is><t>x</t></is></c></row>", "xl/worksheets/sheet1.xml"),
    ('<row\tr="1048576"><c\tr = "XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>', "xl/worksheets/sheet1.xml"),
    ('<row r="1048576"><c r="xfd1048576" t="inlineStr"><is><t>x</t></is></c></row>', "xl/worksheets/sheet1.xml"),
    ("<row r='1048576'><c r='XFD1048576' t='inlineStr'><is><t>x</t></is></c></row>", "xl/elsewhere/data.xml"),
])
def test_a_far_cell_is_refused_however_its_reference_is_written_and_wherever_its_sheet_lies(cell, part, tmp_path, ids):
    """XML lets an attribute be written with either quote and any white space, and a workbook's relationships may
    put its worksheet anywhere: a cell at XFD1048576 made calamine allocate 512 GiB and abort the whole night."""
    plain = write_xlsx(tmp_path / "plain.xlsx", {"hukou": rows(ids)})
    far = tmp_path / "far.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(far, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", cell.encode() + b"</sheetData>")
                if part != item.filename:
                    out.writestr(part, data)
                    data = data.replace(cell.encode(), b"")
            out.writestr(item, data)
    started = time.monotonic()
    with pytest.raises(SourceFileError, match="16384 columns"):
        read_file(far, HUKOU, "hukou/far.xlsx")
    assert time.monotonic() - started < 5
