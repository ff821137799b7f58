"""When the disk under the warehouse or the run folder does not take a write: one line that says so.

Grain: one classification per exception (its chain followed: ``__cause__``, ``__context__``, a driver's
``orig``).

A full disk, a read-only file system or warehouse, and an embedded warehouse another process is writing are
not bugs of jingzhun: they end a command with one line naming the condition and what to do, and the exit code
of its kind (:attr:`StorageFailed.exit_code`: 1 failed, 2 cannot be done as asked, 4 busy, run again), never
with a traceback or a driver's message (which may quote the SQL and its parameters). Only the error numbers and
the fixed phrases of SQLite, the C library and the drivers are read, never shown.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from jingzhun.privacy import SafeError


class StorageFailed(SafeError):
    """The warehouse or the run folder could not be written (its message says which condition, no value)."""

    exit_code = 1
    said_in_full = True  # the message is all there is to say: logged without a traceback


class DiskFull(StorageFailed):
    exit_code = 1


class NotWritable(StorageFailed):
    exit_code = 2


class StorageBusy(StorageFailed):
    exit_code = 4


_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS,)  # not EACCES: a landing file this account may not read is that file's problem
_PHRASES = (  # lower-case phrases of SQLite, the C library, DuckDB, Arrow and the drivers
    (DiskFull, ("database or disk is full", "no space left on device", "file too large", "disk quota exceeded")),
    (NotWritable, ("attempt to write a readonly database", "read-only file system", "readonly database")),
    (StorageBusy, ("database is locked", "database table is locked")),
)
_SAID = {
    DiskFull: "磁盘空间已满,本次未能写完 (no space left on the disk of the warehouse or the run folder: free space, "
              "then run again; a run that was stopped is marked failed)",
    NotWritable: "数据仓库或工作文件夹不可写 (the warehouse or the run folder cannot be written: a read-only file "
                 "system, or a warehouse file this account may only read)",
    StorageBusy: "数据仓库正被另一个进程写入,本次未做改动 (another process is writing the embedded warehouse: run "
                 "again when it has finished)",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def storage_problem(exc: BaseException, step: str = "") -> StorageFailed | None:
    """``exc`` as the storage condition it is (``step``: where it happened, for the message), or None."""
    if isinstance(exc, StorageFailed):
        return exc
    for e in _chain(exc):
        number = getattr(e, "errno", None)
        kind = (DiskFull if number in _FULL else NotWritable if number in _NOT_WRITABLE else None)
        if kind is None:
            text = str(e).lower()
            kind = next((k for k, phrases in _PHRASES if any(p in text for p in phrases)), None)
        if kind is not None:
            return kind(f"{step}: {_SAID[kind]}" if step else _SAID[kind])
    return None


@contextmanager
def said_plainly(step: str = "") -> Iterator[None]:
    """Re-raise a storage condition inside the body as its :class:`StorageFailed` (no driver message chained to
    it); anything else as it was."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - classified, then re-raised as it was when it is not one of ours
        problem = storage_problem(exc, step)
        if problem is None or problem is exc:
            raise
    else:
        return
    raise problem  # outside the handler: the driver's message is not chained to it
