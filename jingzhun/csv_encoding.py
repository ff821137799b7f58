"""The one encoding a CSV file is read in, decided on every byte of it (readers.csv_header calls
:func:`file_encoding`).

Departments send UTF-8 (with or without a BOM) or GB18030. A file is read in one of them, whole, or refused: a
file joined from a UTF-8 export and a GB18030 one would otherwise be read half garbled (GB18030 decodes almost
any bytes, so UTF-8 names read as GB18030 come out as other, valid characters). So:

- a file that decodes as UTF-8 from its first byte to its last is UTF-8;
- otherwise it must be GB18030 from its first byte to its last, and no cell of it may be UTF-8 Chinese. A cell
  is UTF-8 Chinese when its bytes are valid UTF-8 holding two CJK characters in a row and read as UTF-8 they
  are more plausibly Chinese (GB2312's characters, its 3,755 common ones counting double) than read as
  GB18030: real names and addresses are such characters in their own encoding and mostly rare ones, symbols or
  private-use characters in the other, and GB18030 text is valid UTF-8 only by accident. A UTF-8 cell of rare
  characters only may go unseen; the refusal names the first line found;
- a file that began in UTF-8 and stops being UTF-8 is refused at the line where it stops.

Refusals name the file and the line, never its text.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache
from pathlib import Path

from jingzhun.readers import SourceFileError

BLOCK = 4 << 20
# bytes as classes, so that two UTF-8 CJK characters in a row (lead E3 to E9, two continuation bytes each) are
# found by bytes.find at C speed: L a lead, C a continuation, . anything else
_CLASSES = bytes(ord("L") if 0xE3 <= b <= 0xE9 else ord("C") if 0x80 <= b <= 0xBF else ord(".") for b in range(256))
_TWO_CJK = b"LCCLCC"
_CELL_EDGE = re.compile(rb'[,\t"\r\n]')


def file_encoding(path: Path, label: str) -> str:
    """``utf-8-sig`` or ``gb18030``: the encoding every line of the file decodes in; :class:`SourceFileError`
    naming the line where a file of both changes encoding (and where its first encoding began), or the first
    line that decodes in neither."""
    not_utf8 = first_undecodable(path, "utf-8")
    if not_utf8 is None:
        return "utf-8-sig"
    utf8_cell = first_utf8_chinese_line(path)
    if utf8_cell is not None and utf8_cell < not_utf8:
        raise _mixed(label, "UTF-8", utf8_cell, not_utf8, "不是 UTF-8 文本", "not UTF-8 text")
    if utf8_cell is not None:
        raise _mixed(label, "GB18030", not_utf8, utf8_cell, "却是 UTF-8 文本", "UTF-8 text")
    not_gb18030 = first_undecodable(path, "gb18030")
    if not_gb18030 is not None:
        raise SourceFileError(label, f"无法识别的文件编码:第{not_gb18030}行既不是 UTF-8 也不是 GB18030 文本,请另存为 UTF-8 "
                                     f"(unknown encoding: line {not_gb18030} is neither UTF-8 nor GB18030 text)")
    return "gb18030"


def _mixed(label: str, encoding: str, since: int, bad: int, is_zh: str, is_en: str) -> SourceFileError:
    return SourceFileError(label, f"文件混用了两种编码:第{since}行起是 {encoding},第{bad}行{is_zh},请把整个文件另存为 UTF-8 "
                                  f"(mixed encodings: {encoding} from line {since}, but line {bad} is {is_en}; save the "
                                  f"whole file as UTF-8)")


def first_undecodable(path: Path, encoding: str) -> int | None:
    """The line (1-based) holding the first byte that does not decode in ``encoding`` (a sequence cut off by the
    end of the file included); None when the whole file decodes. Read in blocks, with an incremental decoder."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:  # exc.object is the pending bytes of a sequence, then the block
                return lines + exc.object[:exc.start].count(b"\n") + 1
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:  # a sequence cut off by the end: the last line (a line break would have ended it)
        return lines + 1
    return None


def first_utf8_chinese_line(path: Path) -> int | None:
    """The line (1-based) of the first cell that is UTF-8 Chinese (see the module's description), or None.
    Blocks are cut after a line break (no character of either encoding holds one), so no cell is split."""
    lines, carry = 0, b""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            chunk = carry + block
            cut = chunk.rfind(b"\n") + 1
            if cut == 0 and len(chunk) > 4 * BLOCK:  # a line of more than 16 MB is checked in pieces
                cut = len(chunk)
            chunk, carry = chunk[:cut], chunk[cut:]
            found = _first_utf8_cell(chunk)
            if found is not None:
                return lines + chunk[:found].count(b"\n") + 1
            lines += chunk.count(b"\n")
    found = _first_utf8_cell(carry)
    return None if found is None else lines + 1


def _first_utf8_cell(chunk: bytes) -> int | None:
    """Offset in ``chunk`` of the first UTF-8 Chinese cell, or None."""
    classes = chunk.translate(_CLASSES)
    at = classes.find(_TWO_CJK)
    while at >= 0:
        edge = _CELL_EDGE.search(chunk, at)
        end = edge.start() if edge else len(chunk)
        start = max(chunk.rfind(c, 0, at) for c in (b",", b"\t", b'"', b"\r", b"\n")) + 1
        cell = chunk[start:end]
        try:
            if _plausibility(cell.decode("utf-8")) > _plausibility(cell.decode("gb18030", errors="replace")):
                return start
        except UnicodeDecodeError:
            pass
        at = classes.find(_TWO_CJK, end)
    return None


def _plausibility(text: str) -> int:
    """How much ``text`` reads as Chinese: 2 for each common character (GB2312 level 1), 1 for each other
    GB2312 character (level 2)."""
    level1, level2 = _gb2312_characters()
    return sum(2 if c in level1 else 1 if c in level2 else 0 for c in text)


@lru_cache(maxsize=1)
def _gb2312_characters() -> tuple[frozenset[str], frozenset[str]]:
    """The 3,755 common characters of GB2312 (level 1, lead bytes B0 to D7) and its 3,008 others (level 2)."""
    levels: tuple[set[str], set[str]] = (set(), set())
    for lead in range(0xB0, 0xF8):
        for trail in range(0xA1, 0xFF):
            try:
                levels[lead >= 0xD8].add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return frozenset(levels[0]), frozenset(levels[1])
