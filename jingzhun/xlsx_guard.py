"""A workbook measured before any reader parses it (readers.read_file calls :func:`check_workbook`).

An xlsx file is a zip archive of XML parts. A reader (python-calamine) inflates and parses the parts it needs
whole: the shared strings, the styles, the worksheet it reads. A small archive can hold parts of gigabytes (a
4.4 MB file declaring 2 GB of shared strings nobody uses cost 2.4 GB of memory), and what the archive declares
of a part's size is only what its writer chose to write there. So every part is inflated here first, in a
stream, counting the bytes it really gives and stopping at the limit of its kind (``ReaderLimits``): a part
declaring more than its limit is refused unread, one declaring less is refused at the first byte beyond the
limit. The worksheets' extent (rows, columns, cells) is read from the same stream.

Refusals are :class:`jingzhun.readers.SourceFileError`, naming the file and the part, never a value.
"""

from __future__ import annotations

import copy
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from jingzhun.policy import ReaderLimits
from jingzhun.readers import SourceFileError

BLOCK = 4 << 20
# An ``r`` attribute as XML allows it to be written (any white space before it and around ``=``, either quote) and
# as calamine reads it: a row number or a cell reference (letters in either case).
_ATTR = rb"""\sr\s*=\s*["']"""
_ROW_REF = re.compile(_ATTR + rb"""([0-9]+)["']""")
_WIDE_REF = re.compile(_ATTR + rb"([A-Za-z]{2,3})[0-9]")
_LETTER_REF = {c: re.compile(_ATTR + b"[" + bytes([c, c + 32]) + b"][0-9]") for c in range(ord("Z"), ord("A") - 1, -1)}
# Parts that never hold a worksheet's cells; every other XML part is measured as one may (a workbook's
# relationships can name a worksheet anywhere in the archive, and calamine follows them).
_NOT_CELLS = re.compile(r"(\[Content_Types\]\.xml|.*\.rels|docProps/.*|xl/sharedStrings\.xml|xl/styles\.xml|"
                        r"xl/theme/.*|xl/workbook\.xml)", re.IGNORECASE)


def _may_hold_cells(filename: str) -> bool:
    return filename.lower().endswith(".xml") and not _NOT_CELLS.fullmatch(filename)


def check_workbook(path: Path, label: str, limits: ReaderLimits) -> None:
    """Refuse a workbook with a part beyond its size limit (declared or inflated) or a worksheet reaching
    further than the limits; each part is inflated once, in blocks, and never further than its limit."""
    try:
        with zipfile.ZipFile(path) as book:
            for part in book.infolist():
                if part.is_dir():
                    continue
                kind, limit = part_limit(part.filename, limits)
                name = _part_name(part.filename)
                if part.file_size > limit:
                    raise SourceFileError(label, f"拒绝读取:部件 {name} 声明解压后 {_mib(part.file_size)},超过{kind[0]}上限 "
                                                 f"{_mib(limit)} (refused: part {name} declares {_mib(part.file_size)} "
                                                 f"uncompressed, above the limit of {_mib(limit)} for {kind[1]})")
                blocks = _inflated(book, part, limit, label, name, kind)
                if _may_hold_cells(part.filename):
                    _check_extent(_sheet_extent(blocks), name, label, limits)
                else:
                    for _ in blocks:
                        pass
    except SourceFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError) as exc:
        # a damaged archive (a bad CRC, a truncated stream) or an unknown compression: named by type only
        raise SourceFileError(label, f"不是可读的 Excel 工作簿,文件可能已损坏或不完整 (not a readable Excel workbook, "
                                     f"damaged or truncated: {type(exc).__name__})") from None


def part_limit(filename: str, limits: ReaderLimits) -> tuple[tuple[str, str], int]:
    """(what the part is, in Chinese and English, and its size limit in bytes)."""
    if filename == "xl/sharedStrings.xml":
        return ("共享字符串", "shared strings"), limits.max_shared_strings_bytes
    if filename == "xl/styles.xml":
        return ("样式", "styles"), limits.max_styles_bytes
    return ("部件", "a part"), limits.max_part_bytes


def _inflated(book: zipfile.ZipFile, part: zipfile.ZipInfo, limit: int, label: str, name: str,
              kind: tuple[str, str]) -> Iterator[bytes]:
    """The part's bytes in blocks, as many as the compressed stream really gives (not as many as declared),
    refusing the part at the first byte beyond ``limit``."""
    measured = copy.copy(part)
    measured.file_size = 1 << 62  # zipfile stops at the declared size (and checks the CRC there): not here
    total = 0
    with book.open(measured) as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            total += len(block)
            if total > limit:
                raise SourceFileError(label, f"拒绝读取:部件 {name} 解压后超过{kind[0]}上限 {_mib(limit)} (refused: part "
                                             f"{name} inflates to more than the limit of {_mib(limit)} for {kind[1]}, although it declares "
                                             f"{_mib(part.file_size)})")
            yield block


def _check_extent(extent: tuple[int, int], sheet: str, label: str, limits: ReaderLimits) -> None:
    rows, columns = extent
    sheet = Path(sheet).stem
    if rows > limits.max_file_rows or columns > limits.max_sheet_columns or rows * columns > limits.max_sheet_cells:
        raise SourceFileError(label, f"拒绝读取:工作表 {sheet} 的范围为 {rows} 行 × {columns} 列,超过上限 "
                                     f"(refused: worksheet {sheet} spans {rows} rows x {columns} columns; limits "
                                     f"{limits.max_file_rows} rows, {limits.max_sheet_columns} columns, "
                                     f"{limits.max_sheet_cells} cells)")


def _sheet_extent(blocks: Iterator[bytes]) -> tuple[int, int]:
    """(last row, last column) a worksheet's cells reach. Any ``r`` attribute counts (either quote, any white
    space), whatever the element
    and the attribute order: row numbers are rows, letters-then-digits are cell references.

    The rows come from every ``<row r=…>`` and from cell references with more digits than those; the columns
    from cell references of two and more letters (a narrow sheet costs one scan for them). A cell reference
    to a row that lies below its ``<row>`` but has as many digits escapes the row count (at most 10x it).
    """
    rows, columns, tail = 0, 0, b""
    for block in blocks:
        chunk = tail + block
        found = _ROW_REF.findall(chunk)
        if found:
            rows = max(rows, max(map(int, found)))
        deeper = re.findall(_ATTR + rb"""[A-Za-z]{1,3}([0-9]{%d,})["']""" % (len(str(rows)) + 1), chunk)
        if deeper:
            rows = max(rows, max(map(int, deeper)))
        wide = _WIDE_REF.findall(chunk)
        wide = [w.upper() for w in wide]
        letters = max(wide, key=lambda c: (len(c), c)) if wide else next(
            (bytes([c]) for c, pattern in _LETTER_REF.items() if pattern.search(chunk)), b"")
        columns = max(columns, _column_number(letters))
        tail = chunk[-256:]
    return rows, columns


def _column_number(letters: bytes) -> int:
    n = 0
    for c in letters:
        n = n * 26 + (c - 64)
    return n


def _part_name(filename: str) -> str:
    """A part's name as a message may show it: the archive's writer chose it, so controls become ``?`` and a
    long name is cut."""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", filename)
    return text if len(text) <= 80 else text[:77] + "..."


def _mib(n: int) -> str:
    if n % (1 << 20) == 0 and n:
        return f"{n >> 20} MiB"
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n} bytes"
