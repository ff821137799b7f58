"""Files a person reads (workbooks, CSV exports) appear whole or not at all.

Grain: one file per call.

A workbook is written beside its place under a hidden name and moved into place only once it is complete
(``os.replace``, atomic on one file system): a full disk or a stopped command leaves no truncated workbook that
opens as damaged, or as an older list; the part written is removed. The new file is created under the
process's umask (owner-only, :func:`jingzhun.privacy.private_files`), so writing over an older export that was
readable by others does not keep its mode. A full disk is said in one line (:mod:`jingzhun.storage`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from jingzhun.storage import storage_problem


def write_whole(out: Path, write: Callable[[Path], object]) -> Path:
    """``write(part)`` to a hidden part beside ``out``, then moved onto ``out``; on any failure the part is
    removed and ``out`` left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        write(part)
        os.replace(part, out)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        problem = storage_problem(exc, out.name) if isinstance(exc, Exception) else None
        if problem is None:
            raise
        raise problem from None
    return out


def save_workbook(wb, out: Path) -> Path:
    """An openpyxl workbook saved whole at ``out`` (:func:`write_whole`): built in memory first, so a full disk
    meets one write of ours, not a zip archive left half-closed (whose clean-up printed an ignored exception
    after the command's one line)."""
    import io

    buffer = io.BytesIO()
    wb.save(buffer)
    return write_whole(out, lambda part: part.write_bytes(buffer.getvalue()))
