"""What a rule's model may do: read the relations the engine registered, and nothing else.

Grain: one check per model (a rule's model, each evidence part's, an intermediate or a mart model).

A rules pack is code a county or province writes; it runs beside the registers and the warehouse's password.
Two doors are closed, each on its own:

* :func:`check_model` reads the model with sqlglot before anything runs: exactly one query (``SELECT``, ``WITH``,
  ``UNION``), whose every relation is one the engine registers (a register, an intermediate model, a policy
  table, the query's own CTEs), unqualified, and whose every function is one sqlglot knows as SQL and not one
  that reads files, the environment or the clock (an unknown function only when :mod:`jingzhun.engine` carries
  it to every dialect). ``COPY``, ``ATTACH``, ``INSTALL``, ``LOAD``, ``SET``, ``PRAGMA``, a second statement, a
  table function (``read_csv``, ``glob``, ``query``…) or a file named as a table are refused, naming the model.
* :func:`close_the_door` then turns DuckDB's own file access off for the rest of the connection's life (the
  run's staged registers and its spill folder stay readable: they are the only paths allowed), stops extensions
  from installing or loading, and locks the configuration so no statement can open it again.

Every model runs under the policy's time limit (:func:`time_limit`), and a model that fails is named with the
kind of error, never with DuckDB's message, which may quote a value of a register.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import sqlglot
import sqlglot.expressions as sx

from jingzhun.catalogue import CatalogueError
from jingzhun.privacy import SafeError

# Functions sqlglot knows that reach outside the query: files, the network, the session, the clock and chance
# (a rule's day is the policy's ``as_of``, never the machine's).
_OUTSIDE = (sx.ReadCSV, sx.ReadParquet, sx.ToFile, sx.ParseUrl, sx.Uuid, sx.Rand)
_OUTSIDE_PREFIXES = ("Current", "Local", "Session")  # current_date, localtimestamp, session_user…


class ModelFailed(SafeError):
    """A model failed as it ran: named with the kind of error (DuckDB's ``Conversion Error``, Spark's error
    condition), never with the engine's message, which may quote a row."""


class ModelRefused(CatalogueError):
    """A model that does something other than read the registered relations (names the model and what)."""


class ModelTimedOut(CatalogueError):
    """A model ran longer than the policy allows (names the model and the limit)."""


def check_model(sql: str, relations: Iterable[str], model: str, functions: Iterable[str] = ()) -> None:
    """Refuse a model that is not exactly one query reading only ``relations`` (and its own CTEs) with known,
    inward functions (``functions``: the unknown-to-sqlglot names the engine carries across dialects)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError:
        raise ModelRefused(f"model {model}: cannot be read as SQL") from None
    if len(statements) != 1:
        raise ModelRefused(f"model {model}: holds {len(statements)} statements; a model is exactly one query")
    tree = statements[0]
    if not isinstance(tree, (sx.Select, sx.SetOperation)):
        kind = str(tree.this).split()[0] if isinstance(tree, sx.Command) else tree.key
        raise ModelRefused(f"model {model}: {kind.upper()} is not a query; a model is exactly one query "
                           f"(SELECT, WITH … SELECT, UNION) and only reads")
    allowed = set(relations)
    for node in tree.walk():
        if isinstance(node, sx.Command):
            raise ModelRefused(f"model {model}: holds a command ({node.name.upper()}); a model only reads")
        if isinstance(node, sx.Table):
            if not isinstance(node.this, sx.Identifier):
                raise ModelRefused(f"model {model}: reads a table function ({_function_name(node.this)}); a "
                                   f"model reads only the registers and models the engine registered")
            if node.args.get("db") or node.args.get("catalog") or node.name not in allowed | _ctes_in_scope(node):
                named = ".".join(p.name for p in node.parts)  # without its alias
                raise ModelRefused(f"model {model}: reads {named}, which is not a register, "
                                   f"a model or a policy table of this run")
        elif isinstance(node, sx.Func) and _outside(node, set(functions)):
            raise ModelRefused(f"model {model}: calls {_function_name(node)}, which a model may not "
                               f"(files, the environment, the clock or chance)")


def _ctes_in_scope(node: sx.Expression) -> set[str]:
    """The CTEs a table reference can mean: those of every query it lies within (a CTE of another subquery is
    not one, and a name read there is what the engine registered under it, or nothing)."""
    names: set[str] = set()
    while node is not None:
        with_ = (node.args.get("with_") or node.args.get("with")) if isinstance(node, sx.Expression) else None
        if with_ is not None:
            names |= {c.alias_or_name for c in with_.expressions}
        node = node.parent
    return names


def _outside(node: sx.Func, functions: set[str]) -> bool:
    if isinstance(node, sx.Anonymous):
        return str(node.this).upper() not in functions
    return isinstance(node, _OUTSIDE) or type(node).__name__.startswith(_OUTSIDE_PREFIXES)


def _function_name(node: sx.Expression | None) -> str:
    if node is None:
        return "ROWS FROM"
    if isinstance(node, sx.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower() if isinstance(node, sx.Func) else node.key


def close_the_door(con, allowed: Iterable[str]) -> None:
    """DuckDB's own file access off for the rest of ``con``'s life, but for the ``allowed`` paths (the staged
    registers the views read; folders end with ``/``): no extension installs or loads, and the configuration is
    locked (no statement can open any of it again)."""
    paths = sorted({p for p in allowed if not p.endswith("/")})
    folders = sorted({p for p in allowed if p.endswith("/")})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if folders:
        con.execute("SET allowed_directories = $1", [folders])
    if paths:
        con.execute("SET allowed_paths = $1", [paths])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


_RUNNING: set = set()  # how to stop each model running now (one per engine)


def interrupt_running() -> None:
    """Stop every model running now (a SIGTERM: the command ends as an error would, its folders removed)."""
    for interrupt in list(_RUNNING):
        interrupt()


@contextmanager
def time_limit(seconds: float, interrupt, model: str) -> Iterator[None]:
    """Run the body under ``seconds``: past them ``interrupt()`` is called (DuckDB's ``con.interrupt``, Spark's
    job group cancel) and :class:`ModelTimedOut` names the model, whatever error the interruption raised."""
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    _RUNNING.add(interrupt)
    try:
        yield
    except Exception:
        if fired.is_set():
            raise ModelTimedOut(f"model {model}: stopped after {seconds:g} s (the policy's engine.model_seconds)") from None
        raise
    finally:
        timer.cancel()
        _RUNNING.discard(interrupt)
    if fired.is_set():  # interrupted as it finished: the result may be incomplete
        raise ModelTimedOut(f"model {model}: stopped after {seconds:g} s (the policy's engine.model_seconds)")


def _about_the_sql(exc: BaseException) -> bool:
    """An error found by reading the SQL (parsing, binding names, the catalogue), before any row was read: what
    it quotes is the model's own text."""
    import duckdb

    return isinstance(exc, (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException))


def described(exc: BaseException) -> str:
    """A database error as its kind only (``Conversion Error``): an error met while reading rows may quote them,
    quoted or not (a regular expression built from a name and an identity number is quoted whole by the regex
    library). An error found in the SQL's text alone (a column it names that does not exist) keeps its first line:
    the model's own words, which its author needs."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _about_the_sql(exc):  # the SQL's own names (a column, a table, a keyword): what its author needs
        return text[:200]
    kind = text.split(":", 1)[0] if ":" in text[:40] else type(exc).__name__
    return f"{kind} (details withheld: they may quote the data)"
