"""Vectorised normalisers for the value forms departments send (sources.md).

Every function takes a pandas Series of raw strings and returns new Series;
none loops over rows in Python. Nothing is guessed: a value that cannot be
read is returned as missing together with the reason.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import opencc
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import numdb

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_CHARS = np.array(list("10X98765432"))

ID_PROBLEMS = {
    "missing": "身份证号为空 (missing)",
    "excel": "身份证号被Excel转成数字,末位已丢失 (Excel-mangled number)",
    "shape": "身份证号格式不符 (not 18 characters of digits with a final digit or X)",
    "checksum": "身份证号校验位错误 (bad ISO 7064 check digit)",
    "date": "身份证号中出生日期不存在 (impossible birth date)",
    "region": "身份证号地址码不存在 (address code never existed in GB/T 2260)",
}
ID_PROBLEM_WORDS = {key: text.split(" (")[0] for key, text in ID_PROBLEMS.items()}  # the Chinese alone, for evidence


@lru_cache(maxsize=1)
def address_codes() -> frozenset[str]:
    """Every 6-digit GB/T 2260 code that exists or once existed, from python-stdnum's table.

    The validity years in that table are deliberately ignored: the address code
    on an identity number is where it was issued, not where the person was
    born (sources.md, ``id_number``).
    """
    codes: set[str] = set()
    for _, plo, phi, _, children in numdb.get("cn/loc").prefixes:
        for _, clo, chi, _, _ in children:
            for p in range(int(plo), int(phi) + 1):
                for c in range(int(clo), int(chi) + 1):
                    codes.add(f"{p:02d}{c:04d}")
    return frozenset(codes)


def check_digits(first17: pd.Series) -> pd.Series:
    """ISO 7064 MOD 11-2 check characters of 17-digit strings (same as ``stdnum.cn.ric``)."""
    if first17.empty:
        return pd.Series([], index=first17.index, dtype="str")
    raw = np.frombuffer("".join(first17.tolist()).encode("ascii"), dtype=np.uint8)
    digits = raw.reshape(-1, 17).astype(np.int64) - 48
    return pd.Series(_CHECK_CHARS[(digits @ _ID_WEIGHTS) % 11], index=first17.index, dtype="str")


def _arrow(values: pd.Series, *steps) -> pd.Series:
    """Apply pyarrow compute functions (C++, whole column at once) to a text Series."""
    array = pa.array(values.astype("str"))
    for step in steps:
        array = step(array)
    return pd.Series(pd.array(array, dtype="str"), index=values.index)


def _nfkc(array: pa.Array) -> pa.Array:
    return pc.utf8_normalize(array, form="NFKC")


# Line and paragraph breaks become a space; other control (Cc) and invisible format (Cf: zero-width spaces,
# joiners, bidi controls such as U+202E, BOM) characters are removed, and so are the fillers: letters that show
# nothing (Hangul fillers U+115F, U+1160, U+3164, U+FFA0; the blank braille pattern U+2800; Khmer's inherent
# vowels U+17B4, U+17B5). No database or workbook rejects what is left, and nothing invisible is left in it.
_BREAKS = r"[\t\n\r\x0b\x0c\x{85}\p{Zl}\p{Zp}]+"
_FILLERS = r"\x{115F}\x{1160}\x{3164}\x{FFA0}\x{2800}\x{17B4}\x{17B5}"
_INVISIBLE = rf"[\p{{Cc}}\p{{Cf}}{_FILLERS}]"
_CHANGED = rf"[\p{{Cc}}\p{{Cf}}\x{{85}}\p{{Zl}}\p{{Zp}}{_FILLERS}]"
# In names and notes, combining marks (Mn, Me) are removed too: a stroke drawn over a character (U+0336), a
# grapheme joiner, an enclosing circle. Chinese names need none; NFC first composes those that make a letter
# (e + U+0301 is é, kept), and only a value that holds a mark is rewritten.
_MARKS = r"[\p{Mn}\p{Me}]"


def strip_invisible(values: pd.Series, marks: bool = False) -> tuple[pd.Series, pd.Series]:
    """Text with breaks turned into a space and control, invisible and filler characters removed (and, with
    ``marks``, for names and notes, combining marks); and a mask of the values that changed (recorded as a
    normalisation, never silent)."""
    text = values.astype("str").fillna("")
    array = pa.array(text, type=pa.string())
    changed = pc.match_substring_regex(array, pattern=_CHANGED)
    if pc.any(changed).as_py():
        array = pc.replace_substring_regex(pc.replace_substring_regex(array, pattern=_BREAKS, replacement=" "),
                                           pattern=_INVISIBLE, replacement="")
    if marks:
        composed = pc.utf8_normalize(array, form="NFC")
        marked = pc.match_substring_regex(composed, pattern=_MARKS)
        if pc.any(marked).as_py():
            array = pc.if_else(marked, pc.replace_substring_regex(composed, pattern=_MARKS, replacement=""), array)
            changed = pc.or_(changed, marked)
    if not pc.any(changed).as_py():  # the usual case: a scan or two, nothing rewritten
        return text, pd.Series(False, index=text.index)
    return (pd.Series(pd.array(array, dtype="str"), index=text.index),
            pd.Series(changed.to_numpy(zero_copy_only=False), index=text.index))


def fold_width(values: pd.Series) -> pd.Series:
    """Full-width letters, digits and punctuation to their half-width forms (NFKC)."""
    return _arrow(values, _nfkc)


def squeeze(values: pd.Series) -> pd.Series:
    """Text with every white-space character removed (after NFKC, so full-width spaces too)."""
    return _arrow(values, _nfkc, lambda a: pc.replace_substring_regex(a, pattern=r"\s+", replacement=""))


def normalise_ids(raw: pd.Series) -> pd.DataFrame:
    """Identity numbers as 18 upper-case characters, with validity and the reason when invalid.

    Grain: one row per input value, same index. Columns: ``id_number`` (the
    normalised number, or the cleaned text when it is not a valid number),
    ``id_valid``, ``id_problem`` (key of ``ID_PROBLEMS``, empty when valid),
    ``id_legacy15`` (upgraded from the 15-digit form).
    """
    s = _arrow(squeeze(raw.fillna("")), lambda a: pc.utf8_ltrim(a, characters="'‘’`"), pc.utf8_upper)
    problem = pd.Series("", index=s.index, dtype="str")
    problem = problem.mask(s.eq(""), "missing")
    excel = s.str.fullmatch(r"[0-9]+(\.[0-9]+)?E\+?[0-9]+") | s.str.fullmatch(r"[0-9]+\.[0-9]*")
    problem = problem.mask(problem.eq("") & excel, "excel")

    legacy = problem.eq("") & s.str.fullmatch(r"[0-9]{15}")
    if legacy.any():
        body = s[legacy].str[:6] + "19" + s[legacy].str[6:15]
        s = s.mask(legacy, body + check_digits(body))
    shaped = s.str.fullmatch(r"[0-9]{17}[0-9X]")
    problem = problem.mask(problem.eq("") & ~shaped, "shape")

    ok = problem.eq("")
    if ok.any():
        bad_check = pd.Series(False, index=s.index)
        bad_check[ok] = check_digits(s[ok].str[:17]).ne(s[ok].str[17])
        problem = problem.mask(ok & bad_check, "checksum")
        ok = problem.eq("")
        births = pd.to_datetime(s.where(ok, "").str[6:14], format="%Y%m%d", errors="coerce")
        problem = problem.mask(ok & births.isna(), "date")
        ok = problem.eq("")
        problem = problem.mask(ok & ~s.str[:6].isin(address_codes()), "region")
    return pd.DataFrame({
        "id_number": s, "id_valid": problem.eq(""), "id_problem": problem, "id_legacy15": legacy,
    }, index=raw.index)


def birth_dates(id_numbers: pd.Series) -> pd.Series:
    """Birth date inside valid 18-character identity numbers (NaT otherwise)."""
    return pd.to_datetime(id_numbers.astype("str").str[6:14], format="%Y%m%d", errors="coerce")


def ages_at(id_numbers: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Completed years at ``as_of`` from the birth date in the identity number."""
    born = birth_dates(id_numbers)
    had_birthday = (born.dt.month < as_of.month) | ((born.dt.month == as_of.month) & (born.dt.day <= as_of.day))
    return (as_of.year - born.dt.year - (~had_birthday).astype("int64")).astype("Int64")


_DATE_SEPARATED = r"^([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?$"
_DATE_COMPACT = r"^([0-9]{4})([0-9]{2})([0-9]{2})$"


def parse_dates(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Dates in any form of sources.md, and a mask of non-empty values that are not dates.

    Accepted: ``2019-03-11``, ``2019/3/11``, ``20190311``, ``2019年3月11日``,
    ``2019.03.11`` (a time of day after it is ignored); Excel date cells arrive from the
    readers as ISO text. Each form is rewritten to ``Y-M-D`` by pyarrow regex, then parsed once.
    """
    s = _arrow(raw.fillna(""), _nfkc, pc.utf8_trim_whitespace,
               lambda a: pc.replace_substring_regex(a, pattern=_DATE_COMPACT, replacement=r"\1-\2-\3"),
               lambda a: pc.replace_substring_regex(a, pattern=_DATE_SEPARATED, replacement=r"\1-\2-\3"))
    shaped = s.str.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
    dates = pd.to_datetime(s.where(shaped, None), format="%Y-%m-%d", errors="coerce")
    dates = dates.where(dates.dt.year >= 1)  # year 0 parses, but no database (nor Python) can store it
    dates = dates.astype("datetime64[us]")  # one unit whatever the values (pandas infers it from them otherwise)
    return dates, s.ne("") & dates.isna()


def _parse_decimal(raw: pd.Series, noise: str) -> tuple[pd.Series, pd.Series]:
    """Numbers with ``noise`` (a regex of separators and units) removed; and a mask of unreadable values."""
    s = fold_width(raw.fillna("")).str.strip()
    cleaned = s.str.replace(noise, "", regex=True)
    values = pd.to_numeric(cleaned.where(cleaned.str.fullmatch(r"-?[0-9]+(\.[0-9]+)?"), None), errors="coerce")
    values = values.where(np.isfinite(values.astype("float64")))  # 400 nines read as inf: not a number we can use
    return values.astype("Float64"), s.ne("") & values.isna()


def parse_money(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Yuan amounts from ``3500``, ``3,500.00``, ``3500元``; and a mask of unreadable values."""
    return _parse_decimal(raw, r"[,\s]|元$|人民币")


def parse_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Plain numbers (areas, counts), units and thousands separators removed."""
    return _parse_decimal(raw, r"[,\s]|平方米$|m2$|㎡$|人$")


def parse_years(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Four-digit years (``2019``, ``2019年``, ``2019.0`` from a numeric cell)."""
    s = fold_width(raw.fillna("")).str.strip()
    digits = s.str.replace(r"^([0-9]{4})(?:年|\.0+)?$", r"\1", regex=True)
    years = pd.to_numeric(digits.where(digits.str.fullmatch(r"[0-9]{4}"), None), errors="coerce").astype("Int64")
    return years, s.ne("") & years.isna()


def parse_code12(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """12-digit division codes as text; an Excel number form (``6.2e11``, ``620421100201.0``) is read back exactly when integral."""
    s = fold_width(raw.fillna("")).str.strip().str.lstrip("'")
    s = s.str.replace(r"^([0-9]{12})\.0+$", r"\1", regex=True)
    ok = s.str.fullmatch(r"[0-9]{12}")
    return s.where(ok, None), s.ne("") & ~ok


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalise_names(raw: pd.Series) -> pd.Series:
    """Names compared across registers: white space removed, full-width folded, traditional to simplified.

    OpenCC converts all distinct names in one call (joined by newlines), not once per row; each row then
    takes its converted name by position (factorize codes), without a per-value lookup.
    """
    s = squeeze(raw.fillna(""))
    if s.empty:
        return s
    codes, unique = pd.factorize(s)
    converted = _t2s().convert("\n".join(np.asarray(unique, dtype=object))).split("\n")
    if len(converted) != len(unique):  # a name holding a line break would shift the mapping
        raise ValueError("name normalisation lost alignment")
    return pd.Series(pd.array(np.array(converted, dtype=object)[codes], dtype="str"), index=s.index)


def map_vocab(raw: pd.Series, mapping: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """Coded values to their canonical form; and a mask of non-empty values outside the vocabulary."""
    s = squeeze(raw.fillna(""))
    mapped = s.map(vocab_keys(mapping))
    return mapped.astype("str").where(mapped.notna(), None), s.ne("") & mapped.isna()


def vocab_keys(mapping: dict[str, str]) -> dict[str, str]:
    """A vocabulary keyed as values are looked up: full-width folded, white space removed (as :func:`squeeze`)."""
    return {"".join(unicodedata.normalize("NFKC", k).split()): v for k, v in mapping.items()}
