"""Readers for department files as they really arrive (sources.md, "How departments really send data").

A reader turns one file into a frame of *text* cells under canonical column
names (unknown columns keep their header text), with ``_file``, ``_sheet`` and
``_row`` (the 1-based row or line number in the file) on every row. Rows that
are not data (totals rows, blank rows) are handed back separately with their
reason, never dropped silently. Files are only read.

Problems that make a file unusable raise :class:`SourceFileError`, naming the
file and, where it applies, the column.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import python_calamine

from jingzhun.contract import Source, alias_index, header_key
from jingzhun.policy import ReaderLimits, Vocabulary
from jingzhun.privacy import SafeError

HEADER_SCAN_ROWS = 30
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".csv")
META_COLUMNS = ("_file", "_sheet", "_row")


NOT_DATA_REASONS = ("空行 (blank row)", "合计行 (totals row)")  # rows of a file that are not records


class SourceFileError(SafeError):
    """A file of a source that cannot be used; the message names the file (and row, column or limit), never a
    value read from it."""

    def __init__(self, file: str, message: str, column: str | None = None):
        self.file, self.column = file, column
        super().__init__(f"{file}: {message}")


@dataclass
class FileRecord:
    """What the run records of every file it read."""

    source: str
    file: str
    size: int
    sha256: str
    format: str
    encoding: str = ""
    sheet: str = ""
    header_row: int = 0
    rows_read: int = 0
    rows_not_data: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> header text found
    error: str = ""
    missing_column: str = ""  # the required column whose absence made the file unusable
    modified: str = ""        # the file's modification time (UTC, ISO 8601): how fresh the export is
    ignored: str = ""         # why an entry of the source folder was not read (a subfolder, another kind of file)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["columns"] = json.dumps(self.columns, ensure_ascii=False)
        return d


@dataclass(frozen=True)
class Entry:
    """One entry of a source folder: a file to read, or one refused (an error of the source) or ignored
    (recorded, not read), with the reason."""

    path: Path
    label: str
    refused: str = ""
    ignored: str = ""


def source_entries(landing: Path, source: str) -> list[Entry]:
    """Every entry of ``<landing>/<source>/``, in name order (none when the folder is missing): nothing in the
    folder goes unrecorded. A link leading outside the landing folder (or broken) is refused, the source folder
    itself included (one entry, ``<source>/``, and nothing in it read); subfolders, hidden or temporary files and
    other kinds of file are ignored with their reason."""
    folder = Path(landing) / source
    root = Path(landing).resolve()
    if folder.is_symlink() and _outside(folder, root):
        return [Entry(folder, f"{source}/", refused=f"{source}/: 拒绝读取:来源文件夹是指向着陆目录之外的链接或已失效 "
                                                    "(refused: the source folder is a symbolic link leading outside the "
                                                    "landing folder, or broken)")]
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name)):
        label = f"{source}/{display_name(path.name)}"
        if _outside(path, root):
            entries.append(Entry(path, label, refused=f"{label}: 拒绝读取:符号链接指向着陆目录之外或已失效 "
                                                      "(refused: a symbolic link leading outside the landing folder, or broken)"))
        elif path.is_dir():
            entries.append(Entry(path, label, ignored="子文件夹未读取,请把文件直接放在来源文件夹中 "
                                                      "(a subfolder: not read; put files directly in the source folder)"))
        elif not path.is_file():
            entries.append(Entry(path, label, ignored="不是普通文件 (not a regular file)"))
        elif path.name.startswith(("~$", ".")):
            entries.append(Entry(path, label, ignored="临时或隐藏文件 (a temporary or hidden file)"))
        elif path.suffix.lower() not in EXTENSIONS:
            entries.append(Entry(path, label, ignored="不是 xlsx/xls/csv 文件 (not an xlsx, xls or csv file)"))
        else:
            entries.append(Entry(path, label))
    return entries


def _outside(path: Path, root: Path) -> bool:
    """Whether ``path`` does not lead to something inside ``root`` (the resolved landing folder): through a link
    anywhere on its way, or to nothing (a broken link)."""
    return not (path.exists() and path.resolve().is_relative_to(root))


def display_name(name: str) -> str:
    """A file name as text a record can hold: bytes that are not UTF-8 read as GB18030 (Chinese Windows), else
    shown as escapes; control characters as ``?``."""
    raw = os.fsencode(name)
    for encoding in ("utf-8", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("ascii", errors="backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def file_stats(path: Path) -> tuple[int, str, int]:
    """(size, SHA-256, line breaks) of a file, read once in blocks."""
    h, lines = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            lines += block.count(b"\n")
    return path.stat().st_size, h.hexdigest(), lines


def file_modified(path: Path) -> str:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).isoformat()


def read_file(path: Path, source: Source, label: str | None = None,
              limits: ReaderLimits = ReaderLimits()) -> tuple[pd.DataFrame, pd.DataFrame, FileRecord]:
    """One department file as (data rows, non-data rows with reasons, file record). A file beyond ``limits``
    is refused before it is parsed."""
    label = label or display_name(path.name)
    size, sha, lines = file_stats(path)
    record = FileRecord(source=source.name, file=label, size=size, sha256=sha, format=path.suffix.lower().lstrip("."),
                        modified=file_modified(path))
    if size == 0:
        raise SourceFileError(label, "文件为空 (the file is empty)")
    if record.format == "csv":
        if lines > limits.max_file_rows + HEADER_SCAN_ROWS:
            raise SourceFileError(label, f"拒绝读取:超过 {limits.max_file_rows} 行 (refused: more lines than the "
                                         f"limit of {limits.max_file_rows})")
        grid, header_at, names, frame = _read_csv(path, source, label, record)
    else:
        if zipfile.is_zipfile(path):
            from jingzhun.xlsx_guard import check_workbook

            check_workbook(path, label, limits)  # every part measured, every worksheet's extent, before parsing
        grid, header_at, names, frame = _read_excel(path, source, label, record)
    record.header_row = header_at + 1
    _check_cell_sizes(frame, names, label, limits, first_row=header_at + 2)
    data, not_data = _framed(frame, names, source, record, first_row=header_at + 2)
    return data, not_data, record


def _check_cell_sizes(frame: pd.DataFrame, names: list[str], label: str, limits: ReaderLimits, first_row: int) -> None:
    """Refuse a file with a cell longer than ``limits.max_cell_chars``, naming its row and column."""
    for j in frame.columns:
        lengths = pc.utf8_length(pa.array(frame[j].astype("str").fillna(""), type=pa.large_string()))
        if len(lengths) and pc.max(lengths).as_py() > limits.max_cell_chars:
            at = int(np.argmax(lengths.to_numpy(zero_copy_only=False) > limits.max_cell_chars))
            column = names[j] if j < len(names) else f"column {j + 1}"
            raise SourceFileError(label, f"拒绝读取:第{first_row + at}行“{column}”列的单元格超过 {limits.max_cell_chars} 个字符 "
                                         f"(refused: a cell longer than {limits.max_cell_chars} characters at row "
                                         f"{first_row + at}, column {j + 1})")


def _framed(frame: pd.DataFrame, names: list[str], source: Source, record: FileRecord,
            first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text cells under canonical names (the required ones checked), with ``_file``, ``_sheet`` and ``_row``
    (``first_row`` for the first), split into data rows and non-data rows; counts recorded on ``record``."""
    columns = _canonical_names(names, source)
    _require(columns, source, record.file)
    record.columns = {c: n for c, n in zip(columns, names) if c in {col.name for col in source.columns}}
    frame.columns = columns
    frame.insert(0, "_row", pd.RangeIndex(first_row, first_row + len(frame)).astype("int64"))
    frame.insert(0, "_sheet", record.sheet)
    frame.insert(0, "_file", record.file)
    data, not_data = _split_non_data(frame)
    record.rows_read, record.rows_not_data = len(frame), len(not_data)
    return data.reset_index(drop=True), not_data.reset_index(drop=True)


# ---------------------------------------------------------------- header finding

def _header_names(grid: list[list[str]], row: int) -> list[str]:
    """Header text per column; an empty cell under a merged (two-row) header takes the text above it."""
    above = grid[row - 1] if row > 0 else []
    names = []
    for j, cell in enumerate(grid[row]):
        text = str(cell).strip()
        if not text and j < len(above):
            text = str(above[j]).strip()
        names.append(text)
    return names


def _find_header(grid: list[list[str]], source: Source) -> tuple[int, int]:
    """(row index, number of canonical columns recognised) of the best header row in the first rows."""
    index = alias_index(source)
    best = (-1, 0)
    for i in range(min(len(grid), HEADER_SCAN_ROWS)):
        found = {index[k] for k in map(header_key, _header_names(grid, i)) if k in index}
        if len(found) > best[1]:
            best = (i, len(found))
    return best


def _canonical_names(names: list[str], source: Source) -> list[str]:
    index = alias_index(source)
    out: list[str] = []
    for j, name in enumerate(names):
        canon = index.get(header_key(name))
        candidate = canon if canon and canon not in out else (name or f"column_{j + 1}")
        while candidate in out or candidate in META_COLUMNS:
            candidate = f"{candidate}_{j + 1}"
        out.append(candidate)
    return out


def _require(columns: list[str], source: Source, label: str) -> None:
    for name in source.required:
        if name not in columns:
            col = source.column(name)
            raise SourceFileError(
                label, f"缺少必填列“{col.header}”,表头应含以下名称之一: {'、'.join(col.aliases)} "
                       f"(required column {name} not found)", column=name)


def _split_non_data(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate blank rows and totals rows (合计/总计/小计 in one of the first four cells) from data, with the
    reason. Column-wise in pyarrow (C++), not value by value."""
    cells = [c for c in frame.columns if c not in META_COLUMNS]
    blank = np.ones(len(frame), dtype=bool)
    totals = np.zeros(len(frame), dtype=bool)
    markers = "^(" + "|".join(Vocabulary().totals_markers) + ")"
    first_chars = "[" + "".join(sorted({re.escape(m[0]) for m in Vocabulary().totals_markers})) + "]"
    for j, name in enumerate(cells):
        text = pa.array(frame[name].astype("str").fillna(""), type=pa.string())
        still = np.flatnonzero(blank)   # only rows blank so far can still be blank: after a column or two, few
        if len(still):
            candidates = text if len(still) == len(text) else text.take(still)
            blank[still] = pc.equal(pc.utf8_trim_whitespace(candidates), "").to_numpy(zero_copy_only=False)
        if j < 4:
            # a totals marker begins with one of its characters: only cells holding one are squeezed and matched
            maybe = np.flatnonzero(pc.match_substring_regex(text, pattern=first_chars).to_numpy(zero_copy_only=False))
            if len(maybe):
                squeezed = pc.replace_substring_regex(text.take(maybe), pattern=r"[\s\p{Z}]+", replacement="")
                totals[maybe] |= pc.match_substring_regex(squeezed, pattern=markers).to_numpy(zero_copy_only=False)
    totals &= ~blank
    blank_reason, totals_reason = NOT_DATA_REASONS
    reason = pd.Series("", index=frame.index, dtype="str").mask(blank, blank_reason).mask(totals, totals_reason)
    not_data = frame[reason.ne("")].copy()
    not_data["_reason"] = reason[reason.ne("")]
    return frame[reason.eq("")].copy(), not_data


# ---------------------------------------------------------------- Excel

def _cell_text(value: object) -> str:
    """An Excel cell as text. Numbers too long for Excel to hold exactly keep their float form, so they are seen as mangled."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _open_workbook(path: Path):
    try:
        text = str(path)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: calamine reads it from an open file instead
        with open(path, "rb") as f:
            return python_calamine.CalamineWorkbook.from_filelike(f)
    return python_calamine.CalamineWorkbook.from_path(text)


def _read_excel(path: Path, source: Source, label: str, record: FileRecord):
    unreadable = None
    try:
        book = _open_workbook(path)
    except Exception as exc:  # calamine raises several error types for broken archives; its text is not shown
        unreadable = type(exc).__name__
    if unreadable:
        raise SourceFileError(label, f"不是可读的 Excel 工作簿,文件可能已损坏或不完整 (not a readable Excel workbook, "
                                     f"damaged or truncated: {unreadable})")
    best = None
    try:
        for name in book.sheet_names:
            rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
            grid, at, score = sheet_header(rows, source)
            if score and (best is None or score > best[2]):
                best = (name, rows, score, at, grid)
    except Exception as exc:  # noqa: BLE001 - named by type only: the reader's text may quote a cell
        unreadable = type(exc).__name__
    finally:
        book.close()
    if unreadable:
        raise SourceFileError(label, f"工作簿无法读取 (cannot read the workbook: {unreadable})")
    if best is None:
        raise SourceFileError(label, "没有任何工作表含有可识别的表头 (no sheet has a header row with any known column)")
    name, rows, _, at, grid = best
    record.sheet = name
    names = _header_names(grid, at)
    width = len(names)
    body = [[_cell_text(v) for v in r[:width]] + [""] * (width - len(r)) for r in rows[at + 1:]]
    frame = pd.DataFrame(body, columns=range(width), dtype="str") if body else pd.DataFrame(
        {j: pd.Series([], dtype="str") for j in range(width)})
    return grid, at, names, frame


# ---------------------------------------------------------------- CSV

def _detect_encoding(path: Path, label: str) -> tuple[str, str]:
    """(encoding, decoded first block). UTF-8 (with or without BOM) or GB18030, in which every line of the file
    must decode (``jingzhun.csv_encoding``): a file of both is refused, naming the line."""
    from jingzhun.csv_encoding import file_encoding

    with open(path, "rb") as f:
        head = f.read(4 << 20)
    if b"\x00" in head:
        raise SourceFileError(label, "无法识别的文件编码:文件含空字节(UTF-16 或二进制文件),请另存为 UTF-8 或 GB18030 文本 "
                                     "(unknown encoding: the file holds NUL bytes, UTF-16 or binary; send UTF-8 or GB18030 text)")
    encoding = file_encoding(path, label)
    return encoding, codecs.getincrementaldecoder(encoding)().decode(head, final=False)


def csv_header(path: Path, source: Source, label: str) -> tuple[str, list[list[str]], int, int]:
    """(encoding, first rows, header row index, canonical columns recognised) of a CSV file."""
    encoding, text = _detect_encoding(path, label)
    reader = csv.reader(io.StringIO("\n".join(text.splitlines()[:HEADER_SCAN_ROWS])))
    try:
        grid = list(reader)
    except csv.Error:  # e.g. a field longer than the csv module's limit; its text is not shown
        raise SourceFileError(label, f"第{reader.line_num}行无法按 CSV 读取,单元格过长或格式错误 "
                                     f"(line {reader.line_num} cannot be read as CSV: an over-long or malformed field)") from None
    return encoding, grid, *_find_header(grid, source)


def arrow_encoding(encoding: str) -> str:
    """The name pyarrow's CSV reader takes (it skips a UTF-8 BOM itself)."""
    return "utf8" if encoding == "utf-8-sig" else encoding


def sheet_header(rows: list[list], source: Source) -> tuple[list[list[str]], int, int]:
    """(first rows as text, header row index, canonical columns recognised) of a worksheet."""
    grid = [[_cell_text(v) for v in r] for r in rows[:HEADER_SCAN_ROWS]]
    return grid, *_find_header(grid, source)


def _read_csv(path: Path, source: Source, label: str, record: FileRecord):
    encoding, grid, at, score = csv_header(path, source, label)
    record.encoding = encoding
    if score == 0:
        raise SourceFileError(label, "前几行中没有可识别的表头,请确认首行或标题行下方为列名 "
                                     "(no header row with any known column in the first lines)")
    names = _header_names(grid, at)
    try:
        table = pacsv.read_csv(
            pa.OSFile(os.fsencode(path)),  # as bytes: a file name that is not UTF-8 is still opened
            read_options=pacsv.ReadOptions(skip_rows=at + 1, column_names=[str(j) for j in range(len(names))],
                                           encoding=arrow_encoding(encoding),
                                           block_size=16 << 20),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={str(j): pa.string() for j in range(len(names))},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except UnicodeDecodeError:
        raise SourceFileError(label, f"不是有效的 {encoding} 文本 (not valid {encoding} text)") from None
    except pa.ArrowInvalid:  # pyarrow's message quotes the row: the row is located here instead
        line = _first_bad_line(path, encoding, at + 1, len(names))
        where = f"第{line}行起" if line else ""
        raise SourceFileError(label, f"{where}列数与表头不符或引号不配对 (from line {line or '?'}: a row with another "
                                     f"number of columns than the header, or an unbalanced quote)") from None
    frame = table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow") if t == pa.string() else None)
    frame = frame.astype("str").fillna("")
    frame.columns = range(len(names))
    return grid, at, names, frame


def _first_bad_line(path: Path, encoding: str, skip: int, width: int) -> int | None:
    """The line where the first record after ``skip`` lines has another number of fields than ``width`` (None
    when none has): how a CSV parse error is located without quoting it."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f)
        start = 1
        try:
            for record in reader:
                if reader.line_num > skip and record and len(record) != width:
                    return start
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def read_source(landing: Path, source: Source, database=None,
                limits: ReaderLimits = ReaderLimits()) -> tuple[pd.DataFrame, pd.DataFrame, list[FileRecord]]:
    """Every file of one source, concatenated (or its database query, when ``database`` is given); a file
    that cannot be read is recorded with its error.

    Returns (data rows, non-data rows, file records). The caller decides what a
    file error means for the source (the nightly flow blocks the whole source:
    a register missing one county's file is not the register).
    """
    if database is not None:
        return read_query(database, source)
    frames, skipped, records = [], [], []
    for entry in source_entries(landing, source.name):
        if entry.refused or entry.ignored:
            records.append(unread_record(entry.path, source, entry.label, error=entry.refused, ignored=entry.ignored))
            continue
        try:
            data, not_data, record = read_file(entry.path, source, entry.label, limits)
        except SourceFileError as exc:
            record = unread_record(entry.path, source, entry.label, error=str(exc), missing_column=exc.column or "")
            data = not_data = None
        records.append(record)
        if data is not None:
            frames.append(data)
            skipped.append(not_data)
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(META_COLUMNS))
    not_data = pd.concat(skipped, ignore_index=True) if skipped else pd.DataFrame(columns=[*META_COLUMNS, "_reason"])
    return data.fillna(""), not_data.fillna(""), records


def unread_record(path: Path, source: Source, label: str, **why) -> FileRecord:
    """The record of an entry that was not read: its size and digest when it is a file of the landing folder."""
    size, sha, _ = file_stats(path) if path.is_file() and not path.is_symlink() else (0, "", 0)
    modified = file_modified(path) if path.exists() else ""
    return FileRecord(source=source.name, file=label, size=size, sha256=sha, format=path.suffix.lower().lstrip("."),
                      modified=modified, **why)


# ---------------------------------------------------------------- databases

QUERY_CHUNK_ROWS = 500_000


def read_query(database, source: Source) -> tuple[pd.DataFrame, pd.DataFrame, list[FileRecord]]:
    """A source read from a database query (``jingzhun.landing.DatabaseSource``), as text cells like a file's.

    ``_file`` names the source and the database (password hidden), ``_row`` is the row's 1-based position in
    the result. Connection and SQL errors propagate (the extraction task retries them); a missing required
    column is recorded like a file's.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    label = f"{source.name}/{database.label}"
    started = dt.datetime.now(dt.timezone.utc).isoformat()
    engine = create_engine(database.url, hide_parameters=True)
    failure = None
    try:
        with engine.connect() as conn:
            chunks = [_text_frame(c) for c in pd.read_sql_query(text(database.query), conn, chunksize=QUERY_CHUNK_ROWS)]
    except (DBAPIError, pd.errors.DatabaseError) as exc:  # pandas wraps the driver's error, quoting the SQL
        failure = DatabaseSourceError(label, exc.__cause__ if isinstance(exc.__cause__, DBAPIError) else exc)
    finally:
        engine.dispose()
    if failure is not None:
        raise failure
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    record = FileRecord(source=source.name, file=label, size=0, format="sql", modified=started,
                        sha256=hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest())
    try:
        data, not_data = _framed(frame, [str(c) for c in frame.columns], source, record, first_row=1)
    except SourceFileError as exc:
        record.error, record.missing_column = str(exc), exc.column or ""
        return pd.DataFrame(columns=list(META_COLUMNS)), pd.DataFrame(columns=[*META_COLUMNS, "_reason"]), [record]
    return data.fillna(""), not_data.fillna(""), [record]


class DatabaseSourceError(SafeError):
    """A department database that refused the connection or the query. Its SQLSTATE is named; the server's own
    sentence only for the classes that speak of the query or the connection (an unknown table or column, a
    refused login), never for data exceptions, whose sentence quotes the offending value."""

    SAFE_CLASSES = ("08", "28", "3D", "3F", "42")  # connection, authorisation, catalogue, schema, syntax / names

    def __init__(self, label: str, exc: Exception):
        original = getattr(exc, "orig", None)
        state = getattr(original, "sqlstate", None) or ""
        diag = getattr(original, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        said = f": {primary}" if primary and state[:2] in self.SAFE_CLASSES else ""
        super().__init__(f"{label}: 数据库查询失败 (the database refused the query or connection"
                         f"{', SQLSTATE ' + state if state else ''}{said}; {type(original or exc).__name__})")


def _text_frame(chunk: pd.DataFrame) -> pd.DataFrame:
    """Database values as the text a department's file would hold (dates as ISO, missing as empty), column-wise."""
    out = {}
    for name, values in chunk.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            midnight = values.dropna().eq(values.dropna().dt.normalize()).all()
            text = values.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S")
        else:
            text = values.astype("str")
        out[name] = text.where(values.notna(), "").astype("str")
    return pd.DataFrame(out, index=chunk.index)
