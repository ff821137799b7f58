"""What a run may say about itself: locations, never cells.

A county's registers hold the identity numbers and names of its whole rural population. They may live in
exactly three places: the warehouse's data tables (registers, flags, quarantine, decisions), the run folder's
data files, and the workbooks written for stewards. Everything else a run leaves (log lines, exception and
state messages, flow parameters, Prefect artifacts, the run-record tables ``runs``, ``run_files``,
``run_rules`` and ``validation_results``) speaks of files, rows and columns only.

This module owns that promise:

* :class:`SafeError`: the base of every error jingzhun raises on purpose. Its message is built from
  locations (file, row, column, limits), never from a value read from a department's file.
* :func:`describe`: the text of any exception that may be shown or stored. A :class:`SafeError` says its
  message; anything else (a library error, whose message may quote a row) is named by its type and the line
  of code it came from, nothing more.
* :func:`contained`: the same at a step's boundary: whatever a step raises leaves it as a :class:`StepFailed`
  with that description and no chained cause, so neither Prefect's state message nor its traceback holds a
  cell.
* :func:`private_files`: personal data at rest is its owner's only. Every file and folder this process
  creates (the embedded warehouse, staged registers, spill files, workbooks, reports) is made 0600 / 0700 by the
  process's umask, set before anything is written, never widened by a chmod afterwards.
* :func:`install_log_masking`: the second line of defence. Every log record, of any library, has anything
  shaped like an identity number masked before a handler sees it (console, file or the Prefect API).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import traceback
from pathlib import Path

# Anything shaped like a resident identity number (15 to 18 digits of any script, the last possibly X),
# standing alone (not inside a longer number, a word, or the decimals of a float): the second line of defence
# masks these in every log record.
ID_SHAPED = re.compile(r"(?<![0-9A-Za-z])(?<![0-9]\.)(\d{6})\d{8,11}([\dXx])(?![0-9A-Za-z])(?!\.[0-9])")


def url_secret(text: str) -> tuple[str, str | None]:
    """(``text`` without its password, the password or None) for a database URL as SQLAlchemy reads it: the
    password of ``user:password@`` (slashes and spaces included) and a ``password`` query parameter (which
    libpq takes too); any text that is not such a URL is returned as it is."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in text:
        return text, None
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        return text, None
    keys = [k for k in url.query if k.lower() == "password"]
    password = url.password if url.password is not None else next((str(url.query[k]) for k in keys), None)
    if password is None:
        return text, None
    hidden = url._replace(password=None).difference_update_query(keys)  # set(password=None) keeps it
    return hidden.render_as_string(hide_password=False), str(password)


PRIVATE_UMASK = 0o077  # group and others: no read, no write, no entry


def private_files() -> None:
    """Everything this process creates from now on readable and writable by its owner only (files 0600,
    folders 0700). Sharing a workbook is a deliberate act (``chmod g+r FILE``, or a copy put where it is shared)."""
    os.umask(PRIVATE_UMASK)


# what a person types is held to more than a log line: besides anything ID_SHAPED, 18 characters touching letters
# ("ID62042119700101123X", which ID_SHAPED, made not to mask inside hashes and keys, passes by) when their check
# digit is an identity number's (a register household number such as P62042110020190197 is not), and either with
# spaces or dashes between its digits
_TYPED_ID = re.compile(r"(?<!\d)(\d{17})([\dXx])(?!\d)")
_TYPED_SEPARATORS = re.compile(r"[\s\-‐－]")
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]


def _checked(first17: str, last: str) -> bool:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11] == last.upper()


def typed_id_number(text: str) -> bool:
    """Whether words a person typed (a reason, a ticket) hold something shaped like an identity number. A run of 15
    digits is one only when its characters 7 to 12 are a birth date (yymmdd): a 15-digit hukou household number such
    as 620421900000197 is not."""
    text = str(text or "")
    for t in (text, _TYPED_SEPARATORS.sub("", text)):
        if any(_id_shaped_run(m.group(0)) for m in ID_SHAPED.finditer(t)) or \
                any(_checked(*m.groups()) for m in _TYPED_ID.finditer(t)):
            return True
    return False


def _id_shaped_run(run: str) -> bool:
    if len(run) != 15:
        return True
    month, day = int(run[8:10]), int(run[10:12])
    return 1 <= month <= 12 and 1 <= day <= 31


def mask_id_shaped(text: str) -> str:
    """``text`` with every identity-number-shaped run shown as its first 6 characters, stars and its last."""
    return ID_SHAPED.sub(lambda m: m.group(1) + "*" * (len(m.group(0)) - 7) + m.group(2), text)


def mask_cell(value) -> str:
    """A cell of a personal column (an identity number, a name) as a run record may show it: the first two and
    last three characters of a long value, the first character of a short one, the rest as stars."""
    text = "" if value is None else str(value)
    if len(text) >= 8:
        return text[:2] + "*" * (len(text) - 5) + text[-3:]
    return text[:1] + "*" * (len(text) - 1)


class SafeError(Exception):
    """An error whose message names locations (file, row, column, a limit), never a value of the data."""


class Refused(SafeError):
    """What a person asked for cannot be done as asked (the command exits 2, saying why)."""

    said_in_full = True  # its message says why: logged without a traceback


class StepFailed(SafeError):
    """A step of the run raised something unexpected; the message says which step and source, and where in
    the code, not what the data said."""

    def __init__(self, step: str, source: str | None, cause: str):
        self.step, self.source = step, source
        where = f"{step} of {source}" if source else step
        super().__init__(f"{where} failed: {cause}")


def describe(exc: BaseException) -> str:
    """The text of ``exc`` that may be logged, stored or shown: a :class:`SafeError`'s message; for anything
    else its type and the line of jingzhun's code (or else the library's) it was raised from."""
    if isinstance(exc, SafeError):
        return mask_id_shaped(str(exc))
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if _is_ours(f.filename)]
    frame = (ours or frames or [None])[-1]
    where = f" at {Path(frame.filename).name}:{frame.lineno} in {frame.name}" if frame else ""
    return f"{type(exc).__name__}{where} (details withheld: they may quote the data)"


_OUR_FOLDERS = ("jingzhun", "flows")


def _is_ours(filename: str) -> bool:
    parts = Path(filename).parts
    return "site-packages" not in parts and any(p in _OUR_FOLDERS for p in parts[-3:-1])


def contained(step: str, source_of=None):
    """Decorate a step so that any exception but a :class:`SafeError` leaves it as a :class:`StepFailed` (or, a
    full disk or a read-only warehouse, as :class:`jingzhun.storage.StorageFailed`)
    (``source_of(*args, **kwargs)`` names the source, when the step has one), raised outside the handler so
    the original exception, whose message may quote a row, is not chained to it."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except SafeError:
                raise
            except Exception as exc:  # noqa: BLE001 - every other error is described, never quoted
                from jingzhun.storage import storage_problem

                failure = storage_problem(exc, step) or StepFailed(
                    step, source_of(*args, **kwargs) if source_of else None, describe(exc))
            raise failure
        return run
    return wrap


_installed = False


def install_log_masking() -> None:
    """Mask identity-number-shaped text in every log record from now on (idempotent).

    A record factory, not a handler filter: it sees the records of every logger, including Prefect's
    handlers that ship logs to its API, and it renders the exception text (traceback) masked too.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        masked = mask_id_shaped(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and getattr(record.exc_info[1], "said_in_full", False):  # a refusal, a full disk…
            record.exc_info, record.exc_text = None, None
        elif record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_id_shaped(formatter.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
