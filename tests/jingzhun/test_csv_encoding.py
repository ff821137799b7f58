"""A CSV file is read in one encoding, every byte of it, or refused naming the file and the line where it changes
encoding, never its text: UTF-8 rows followed by GB18030 ones, GB18030 rows followed by UTF-8 ones (the attack of
#24 garbled 7 of 18 death records' names), a UTF-8 cell inside a GB18030 row, a change beyond the first 4 MB."""

from __future__ import annotations

import random
import time

import pytest

from jingzhun.contract import SOURCES
from jingzhun.csv_encoding import file_encoding
from jingzhun.readers import SourceFileError, read_file, read_source

from helpers import valid_id

DEATHS = SOURCES["deaths"]
HEADER = "身份证号,死亡日期,姓名"
NAMES = ["张三", "李四", "王五", "赵六", "欧阳娜娜", "诸葛亮", "司马光", "陈璟彧"]


IDS = [valid_id(f"620421193001{i:05d}") for i in range(1, 21)]


def lines(names: list[str], first: int = 1) -> list[str]:
    return [f"{IDS[(first + i) % len(IDS)]},2026-0{1 + i % 9}-1{i % 10},{name}" for i, name in enumerate(names)]


def write(path, *parts: tuple[list[str], str]):
    path.write_bytes(b"".join(("\n".join(text) + "\n").encode(encoding) for text, encoding in parts))
    return path


def refusal(path) -> str:
    started = time.monotonic()
    with pytest.raises(SourceFileError) as refused:
        read_file(path, DEATHS, "deaths/" + path.name)
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert message.startswith(f"deaths/{path.name}: ") and not any(n in message for n in NAMES)
    return message


def test_utf8_rows_then_gb18030_rows_are_refused_at_the_first_gb18030_line(tmp_path):
    path = write(tmp_path / "deaths.csv", ([HEADER, *lines(NAMES[:4])], "utf-8"), (lines(NAMES[4:], 5), "gb18030"))
    message = refusal(path)
    assert "第1行起是 UTF-8,第6行不是 UTF-8 文本" in message and "line 6 is not UTF-8 text" in message


def test_gb18030_rows_then_utf8_rows_are_refused_at_the_first_utf8_line(tmp_path):
    path = write(tmp_path / "deaths.csv", ([HEADER, *lines(NAMES[:4])], "gb18030"), (lines(NAMES[4:], 5), "utf-8"))
    message = refusal(path)
    assert "第1行起是 GB18030,第6行却是 UTF-8 文本" in message and "line 6 is UTF-8 text" in message


def test_one_utf8_cell_in_a_gb18030_row_is_refused(tmp_path):
    path = tmp_path / "deaths.csv"
    path.write_bytes(("\n".join([HEADER, *lines(NAMES[:3])]) + "\n").encode("gb18030")
                     + f"{valid_id('62042119300100009')},2026-01-01,".encode("gb18030") + "张三丰\n".encode("utf-8"))
    assert "第5行却是 UTF-8 文本" in refusal(path)


def test_a_change_of_encoding_beyond_the_first_4_mb_is_refused(tmp_path):
    many = lines(NAMES * 16_000)                               # some 5 MB of UTF-8
    path = write(tmp_path / "deaths.csv", ([HEADER, *many], "utf-8"), (lines(["张三", "李四"]), "gb18030"))
    assert path.stat().st_size > 4 << 20
    assert f"第{len(many) + 2}行不是 UTF-8 文本" in refusal(path)


def test_bytes_of_neither_encoding_name_their_line(tmp_path):
    path = tmp_path / "deaths.csv"
    path.write_bytes(b"id,date,name\n" + "\n".join(lines(["Li Si", "Wang Wu"])).encode() + b"\nx,y,\xff\n")
    assert "第4行既不是 UTF-8 也不是 GB18030 文本" in refusal(path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_file_in_one_encoding_is_read_whole_with_its_names_intact(tmp_path, encoding):
    path = write(tmp_path / "deaths.csv", ([HEADER, *lines(NAMES)], encoding))
    data, _, record = read_file(path, DEATHS)
    assert data["name"].tolist() == NAMES
    assert record.encoding == ("gb18030" if encoding == "gb18030" else "utf-8-sig")


def test_no_gb18030_register_of_real_looking_names_is_taken_for_utf8(tmp_path):
    """GB18030 text is valid UTF-8 only by accident; names of two to four characters of all of GB2312 (rare ones
    too, which real registers hold far less) never read as UTF-8 Chinese."""
    characters = [bytes((lead, trail)).decode("gb2312", errors="replace") for lead in range(0xB0, 0xF8)
                  for trail in range(0xA1, 0xFF)]
    characters = [c for c in characters if c != "\ufffd"]
    rng = random.Random(24)
    names = ["".join(rng.choice(characters) for _ in range(rng.choice((2, 3, 3, 4)))) for _ in range(200_000)]
    path = write(tmp_path / "deaths.csv", ([HEADER, *lines(names)], "gb18030"))
    assert file_encoding(path, "deaths.csv") == "gb18030"


def test_the_other_files_of_the_source_are_still_read(tmp_path):
    folder = tmp_path / "deaths"
    folder.mkdir()
    write(folder / "a_mixed.csv", ([HEADER, *lines(NAMES[:4])], "gb18030"), (lines(NAMES[4:], 5), "utf-8"))
    write(folder / "b_good.csv", ([HEADER, *lines(NAMES[:2])], "gb18030"))
    data, _, records = read_source(tmp_path, DEATHS)
    assert data["name"].tolist() == NAMES[:2]
    assert "deaths/a_mixed.csv" in records[0].error and "第6行" in records[0].error and not records[1].error
