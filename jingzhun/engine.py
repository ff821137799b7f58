"""The matching engine: tonight's staged registers and the SQL models of ``transforms/``, run in DuckDB or Spark.

Grain of what it returns: one row per flag (:data:`FLAG_COLUMNS`), and per rule not evaluated its reason.

Build, then run, in one place. The builders here are pure (SQL text from the catalogue, the models and the
column types); :class:`Engine` builds every statement — the sources as views (Parquet files read where they lie,
or frames), the policy as tables, the models, the flags with their evidence — in DuckDB's SQL, and one backend
runs them: :class:`DuckDB` in-process (its memory limit and spill folder), or :class:`jingzhun.spark.Spark`,
which carries each statement to Spark SQL through :func:`transpile`, the one place dialects differ. Models are
kept to what :func:`transpile` can carry (a test transpiles every one).
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
import sqlglot.expressions as sx

from jingzhun.catalogue import DIRECTIONS, GRAIN_KEYS, Catalogue, CatalogueError, Rule, current
from jingzhun.contract import SOURCES, Source
from jingzhun.evidence import flags_sql, identifier, literal
from jingzhun.normalise import ID_PROBLEM_WORDS
from jingzhun.policy import Policy
from jingzhun.sandbox import ModelFailed, check_model, close_the_door, described, time_limit
from jingzhun.staging import DERIVED

FLAG_COLUMNS = ["rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
                "evidence", "evidence_text"]
MODELS = Path(__file__).resolve().parents[1] / "transforms"
INTERMEDIATE = MODELS / "intermediate"
MARTS = MODELS / "marts"

# Column types of a staged source by contract kind (what a source that did not arrive, or an optional column
# not sent, reads as: empty, typed).
_KIND_TYPES = {"date": "TIMESTAMP", "money": "DOUBLE", "number": "DOUBLE", "year": "BIGINT"}
_DERIVED_TYPES = {"flag": "BOOLEAN", "code": "VARCHAR"}  # staging.DERIVED's kinds


def staged_types(source: Source) -> dict[str, str]:
    """Every column of a staged source with its SQL type: ``_file``, ``_row``, the contract's columns (an identity
    number with ``_valid`` and ``_problem``, a name with ``_norm``) and what staging adds."""
    out = {"_file": "VARCHAR", "_row": "BIGINT"}
    for c in source.columns:
        out[c.name] = _KIND_TYPES.get(c.kind, "VARCHAR")
        if c.kind == "id":
            out[f"{c.name}_valid"], out[f"{c.name}_problem"] = "BOOLEAN", "VARCHAR"
        if c.kind == "name":
            out[f"{c.name}_norm"] = "VARCHAR"
    return {**out, **{name: _DERIVED_TYPES[kind] for name, kind in DERIVED.get(source.name, {}).items()}}


def model_order(models: Mapping[str, str]) -> list[str]:
    """Models in an order where each comes after those it reads (read from their SQL)."""
    graph = {name: {t for t in tables_read(sql) if t in models and t != name} for name, sql in models.items()}
    return list(graphlib.TopologicalSorter(graph).static_order())


def tables_read(sql: str) -> set[str]:
    """Names of the tables and views a model reads (its CTEs excluded)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(sx.CTE)}
    return {t.name for t in tree.find_all(sx.Table)} - ctes


def intermediate_models() -> dict[str, str]:
    """The intermediate models' SQL by name (what rules read besides the registers)."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(INTERMEDIATE.glob("*.sql"))}


def sources_read(sql: str, models: Mapping[str, str], sources: Mapping[str, Source] | None = None) -> set[str]:
    """The registers a model reads, directly or through any model it reads (derived from the SQL, never listed by
    hand): a rule evaluates only when every one of them arrived and passed the gate."""
    sources = SOURCES if sources is None else sources
    found: set[str] = set()
    seen: set[str] = set()
    todo = [sql]
    while todo:
        for name in tables_read(todo.pop()):
            if name in sources:
                found.add(name)
            elif name in models and name not in seen:
                seen.add(name)
                todo.append(models[name])
    return found


def rule_sources(rule: Rule, models: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every register a rule reads through its models (each evidence part's) and the intermediate models."""
    models = intermediate_models() if models is None else models
    return frozenset().union(*(sources_read(rule.model_path(part).read_text(encoding="utf-8"), models)
                               for part in rule.evidence))


def needs_disagreements(catalogue: Catalogue) -> dict[str, str]:
    """Rules whose catalogue ``needs`` differ from what their SQL reads: code -> what differs (empty: none)."""
    models = intermediate_models()
    out = {}
    for code, rule in catalogue.rules.items():
        derived, listed = rule_sources(rule, models), set(rule.needs)
        if derived != listed:
            out[code] = "; ".join(filter(None, [
                f"reads but does not list {', '.join(sorted(derived - listed))}" if derived - listed else "",
                f"lists but does not read {', '.join(sorted(listed - derived))}" if listed - derived else ""]))
    return out


# Functions sqlglot does not carry between dialects, renamed per target (pandas' rounding, half to even, is
# DuckDB's round_even and Spark's bround). They are the only functions unknown to sqlglot a model may call.
_FUNCTIONS = {"spark": {"ROUND_EVEN": "BROUND"}, "databricks": {"ROUND_EVEN": "BROUND"}}
CARRIED_FUNCTIONS = frozenset().union(*_FUNCTIONS.values())


def rule_models(catalogue: Catalogue) -> dict[str, str]:
    """Every model of a catalogue's rules by file name (each evidence part's)."""
    return {rule.model_path(part).name: rule.model_path(part).read_text(encoding="utf-8")
            for rule in catalogue.rules.values() for part in rule.evidence}


def rule_relations(sources: Mapping[str, Source] | None = None) -> set[str]:
    """What a rule's model may read, known before any engine starts: the registers, the intermediate models and
    the policy's tables (:meth:`Engine._policy`; the engine checks again against what it registered)."""
    return ({*(SOURCES if sources is None else sources), *intermediate_models(), "policy", "sources",
             "id_problem_words"} | {f"policy__{name}" for name in Policy.model_fields})


def check_catalogue(catalogue: Catalogue, sources: Mapping[str, Source] | None = None) -> None:
    """Refuse a catalogue any of whose models does more than read (when a pack is read, before any run;
    ``sources``: the registers it may read, the contract's and its deployment's)."""
    check_models(rule_models(catalogue), rule_relations(sources))


def check_models(models: Mapping[str, str], relations: set[str]) -> None:
    """Refuse any of ``models`` (name -> SQL) that reads anything but ``relations`` or does anything but read."""
    for name, sql in models.items():
        check_model(sql, relations, name, CARRIED_FUNCTIONS)


def transpile(sql: str, dialect: str) -> str:
    """A model in another engine's SQL (the one place dialects differ)."""
    if dialect == "duckdb":
        return sql
    renames = _FUNCTIONS.get(dialect, {})

    def rename(node):
        if isinstance(node, sx.Anonymous) and str(node.this).upper() in renames:
            return sx.Anonymous(this=renames[str(node.this).upper()], expressions=node.expressions)
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(rename).sql(dialect=dialect)


# ---------------------------------------------------------------- the seam

class DuckDB:
    """The in-process backend: one DuckDB connection, spilling to ``work_dir`` beyond ``memory_limit`` (at most
    ``spill_limit``)."""

    dialect = "duckdb"

    def __init__(self, work_dir: Path | None = None, memory_limit: str | None = None, threads: int | None = None,
                 spill_limit: str | None = None):
        import duckdb

        database = ":memory:"
        config = {"preserve_insertion_order": False}
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
            database = str(work_dir / "engine.duckdb")
            Path(database).unlink(missing_ok=True)
            config["temp_directory"] = str(work_dir / "spill")
            if spill_limit:
                config["max_temp_directory_size"] = spill_limit
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(database, config=config)
        self._frames: dict[str, pa.Table] = {}
        self._paths = [f"{work_dir.resolve()}/"] if work_dir is not None else []

    def close_the_door(self) -> None:
        """File access off but for the staged registers the views read and the engine's own folder (spill)."""
        close_the_door(self.con, self._paths)

    def interrupt(self) -> None:
        self.con.interrupt()

    def close(self) -> None:
        self.con.close()

    def register(self, name: str, table: pa.Table) -> None:
        """An Arrow table as a relation (kept alive while the connection scans it)."""
        self._frames[name] = table
        self.con.register(name, table)

    def parquet(self, name: str, path: str) -> str:
        """A staged Parquet file read where it lies, with ``_ord`` (the row's place in it): a relation's SQL."""
        self._paths.append(str(Path(path).resolve()))
        return f"(SELECT *, file_row_number AS _ord FROM read_parquet({literal(path)}, file_row_number = true))"

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE VIEW {identifier(name)} AS {sql}")

    def table(self, name: str, sql: str) -> None:
        """A model's rows, materialised (out of core beyond the memory limit); a failure names the model and the
        kind of error, never a value DuckDB's message quotes."""
        import duckdb

        try:
            self.con.execute(f"CREATE TEMP TABLE {identifier(name)} AS {sql}")
        except duckdb.Error as exc:
            failure = ModelFailed(f"model {name} failed: {described(exc)}")
        else:
            return
        raise failure  # outside the handler: DuckDB's message is not chained to it

    def columns(self, relation: str) -> dict[str, str]:
        return {row[0]: row[1] for row in self.con.execute(f"DESCRIBE SELECT * FROM {identifier(relation)}").fetchall()}

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()


def backend_for(name: str, work_dir: Path | None, policy: Policy, master: str | None = None,
                scratch: Path | None = None):
    """The backend a run asked for: ``duckdb`` (in-process, the default) or ``spark`` (:mod:`jingzhun.spark`;
    ``scratch``: where Spark spills, for as long as the process's session lives)."""
    if name == "duckdb":
        return DuckDB(work_dir, policy.engine.memory_limit, policy.engine.threads, policy.engine.spill_limit)
    if name == "spark":
        from jingzhun.spark import Spark

        return Spark(work_dir, policy.spark, master, scratch)
    raise ValueError(f"unknown engine {name!r}: duckdb or spark")


@dataclass
class Engine:
    """Tonight's sources, the policy and the models on one backend (:class:`DuckDB` unless ``backend`` is given:
    the models are written in DuckDB's SQL, another backend transpiles them); DuckDB spills to ``work_dir``
    beyond ``memory_limit`` (e.g. ``"4GB"``)."""

    tables: Mapping[str, pd.DataFrame | str | Path]
    policy: Policy
    as_of: pd.Timestamp
    catalogue: Catalogue
    work_dir: Path | None = None
    memory_limit: str | None = None
    threads: int | None = None
    backend: object | None = None

    def __enter__(self) -> Engine:
        if self.backend is None:
            self.backend = DuckDB(self.work_dir, self.memory_limit, self.threads, self.policy.engine.spill_limit)
        self._built: set[Path] = set()
        self.arrived = {name: self._columns_sent(name) for name in SOURCES}
        self.relations: set[str] = set()
        self._sources()
        self._policy()
        self.backend.close_the_door()  # from here on, the connection reads what was registered and nothing else
        return self

    def __exit__(self, *exc) -> None:
        self.backend.close()

    @property
    def con(self):
        """The DuckDB connection (the in-process backend only)."""
        return self.backend.con

    def _register(self, name: str, frame: pd.DataFrame) -> None:
        """A frame as a relation, through Arrow (DuckDB's scan of pandas' object columns is not reliable)."""
        self.backend.register(name, pa.Table.from_pandas(frame, preserve_index=False))
        self.relations.add(name)

    def _model(self, name: str, sql: str, model: str) -> None:
        """One model's rows as table ``name``, under the policy's time limit (``model`` names it when it fails)."""
        try:
            with time_limit(self.policy.engine.model_seconds, self.backend.interrupt, model):
                self.backend.table(name, sql)
        except ModelFailed as exc:
            failure = ModelFailed(f"{model}: {exc}")
        else:
            self.relations.add(name)
            return
        raise failure

    def check_models(self, models: Mapping[str, str], relations: set[str] | None = None) -> None:
        """Refuse, before any model runs, a model that reads anything but what this engine registered (and the
        other ``models``) or does anything but read (:func:`jingzhun.sandbox.check_model`)."""
        check_models(models, (self.relations if relations is None else relations) | set(models))

    def _columns_sent(self, source: str) -> list[str]:
        """The columns tonight's ``source`` arrived with (empty when it did not arrive): read once, :attr:`arrived`."""
        value = self.tables.get(source)
        if value is None:
            return []
        if isinstance(value, pd.DataFrame):
            return list(value.columns)
        return list(pq.read_schema(value).names)

    def _sources(self) -> None:
        """Every contract source as a view with all its staged columns (what did not arrive reads as empty,
        typed) and ``_ord``, the row's place in what was sent (what "first" means in the models)."""
        for name, source in SOURCES.items():
            types = staged_types(source)
            value = self.tables.get(name)
            self.relations.add(name)
            if value is None:
                cols = ", ".join(f"CAST(NULL AS {t}) AS {identifier(c)}" for c, t in types.items())
                self.backend.view(name, f"SELECT {cols}, CAST(NULL AS BIGINT) AS _ord WHERE FALSE")
                continue
            present = set(self.arrived[name])
            if isinstance(value, pd.DataFrame):
                self._register(f"{name}__sent", value.assign(_ord=range(len(value))))
                scan = f"{identifier(name + '__sent')}"
            else:
                scan = self.backend.parquet(f"{name}__sent", str(value))
            missing = ", ".join(f"CAST(NULL AS {t}) AS {identifier(c)}" for c, t in types.items() if c not in present)
            self.backend.view(name, f"SELECT *{', ' + missing if missing else ''} FROM {scan}")

    def _policy(self) -> None:
        """The policy as tables: ``policy`` (one row: as_of, the income line of as_of and every number), and
        ``policy__<name>`` per list (``value``) or mapping (``key``, ``value``, in order), with ``sources``
        (titles) and ``id_problem_words``: rules bind them, they never paste a threshold or a code."""
        p = self.policy
        scalars = {"as_of": self.as_of, "income_line": float(p.income_line_for(self.as_of.date()))}
        for name, value in p:
            if isinstance(value, bool | int | float | str):
                scalars[name] = value
            elif isinstance(value, tuple):
                self._register(f"policy__{name}", pd.DataFrame({"value": pd.Series(value, dtype="str"),
                                                                "_ord": range(len(value))}))
            elif isinstance(value, dict):
                self._register(f"policy__{name}", pd.DataFrame({"key": [str(k) for k in value],
                                                                "value": [str(v) for v in value.values()],
                                                                "_ord": range(len(value))}))
        self._register("policy", pd.DataFrame([scalars]))
        self._register("sources", pd.DataFrame({"source": list(SOURCES),
                                                "title": [s.title for s in SOURCES.values()]}))
        self._register("id_problem_words", pd.DataFrame({"problem": list(ID_PROBLEM_WORDS),
                                                         "words": list(ID_PROBLEM_WORDS.values())}))

    def types(self, relation: str) -> dict[str, str]:
        """A relation's columns and their SQL types, in DuckDB's names (what the evidence builders read)."""
        return self.backend.columns(relation)

    def frame(self, sql: str) -> pd.DataFrame:
        return self.backend.arrow(sql).to_pandas()

    def build(self, folder: Path) -> None:
        """Every model of ``folder`` (once), each a table (out of core beyond the memory limit), after those it
        reads."""
        if folder in self._built:
            return
        self._built.add(folder)
        models = {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.sql"))}
        self.check_models(models)
        for name in model_order(models):
            self._model(name, models[name], f"{folder.name}/{name}.sql")

    def flags(self, unavailable: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
        """Every rule that can be evaluated tonight: its flags (one row per flag), and the others' reasons."""
        models = intermediate_models()
        self._rule_sql = rule_models(self.catalogue)  # read once: what is checked is what runs
        self.check_models(self._rule_sql, self.relations | set(models))
        skipped = {code: reason for code, rule in self.catalogue.rules.items()
                   if (reason := not_evaluated_reason(rule, self.arrived, unavailable, rule_sources(rule, models)))}
        evaluable = [rule for code, rule in self.catalogue.rules.items() if code not in skipped]
        if not evaluable:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in FLAG_COLUMNS}), skipped
        self.build(INTERMEDIATE)
        union = " UNION ALL ".join(f"SELECT * FROM {identifier(self.run_rule(rule))}" for rule in evaluable)
        ordered = f"SELECT * FROM ({union}) AS f ORDER BY rule_code, household_id, hukou_household_id, id_number"
        return _keys_as_text(self.frame(ordered)), skipped

    def village_indicators(self, raised: pd.DataFrame) -> pd.DataFrame:
        """One row per village of the register (``mart_village_indicators``) with the share of its register
        households flagged in each direction of the catalogue (additions are counted as families)."""
        self._register("flags", raised)
        self.build(INTERMEDIATE)
        self.build(MARTS)
        villages = self.frame("SELECT * FROM mart_village_indicators ORDER BY village_code")
        shares = self.frame("SELECT * FROM mart_village_direction_shares")
        wide = shares.pivot(index="village_code", columns="direction", values="share")
        for direction in (d for d in DIRECTIONS if d != "add"):
            column = wide[direction] if direction in wide.columns else pd.Series(dtype="float64")
            villages[f"share_{direction}"] = villages["village_code"].map(column).fillna(0.0).astype("float64")
        return villages

    def run_rule(self, rule: Rule) -> str:
        """The flags of one rule, as a table named after it (its name returned)."""
        parts = []
        for part in rule.evidence:
            relation = f"rows__{rule.code}__{part.part or 'records'}"
            self._model(relation, self._rule_sql[rule.model_path(part).name], rule.model_path(part).name)
            types = self.types(relation)
            check_model_columns(rule, part, types)
            parts.append((identifier(relation), types))
        table = f"flags__{rule.code}"
        self._model(table, flags_sql(rule, parts, f"{self.as_of:%Y-%m-%d}"), f"the evidence of rule {rule.code}")
        return table


def check_model_columns(rule: Rule, part, columns: Mapping[str, str]) -> None:
    """A rule's model gives what its flags and evidence read: the keys of its grain, the record's file and row,
    every column its evidence fields and sentence name (refused naming the rule, the model and the columns)."""
    needed = [*GRAIN_KEYS[rule.grain], "_file", "_row", *part.fields.values(),
              *re.findall(r"\{([^}]*)\}", part.sentence)]
    if rule.grain == "hukou_household" and not part.part:
        needed.append("village_code")
    missing = [c for c in dict.fromkeys(needed) if c not in columns]
    if missing:
        raise CatalogueError(f"rule {rule.code}: its model {rule.model_path(part).name} gives no column "
                             f"{', '.join(missing)} (its grain, evidence and sentence read them)")


def not_evaluated_reason(rule: Rule, columns: Mapping[str, list[str]], unavailable: Mapping[str, str],
                         reads: frozenset[str] = frozenset()) -> str:
    """Why a rule cannot be evaluated tonight (empty when it can): a register it reads (``reads``, derived from its
    SQL, :func:`rule_sources`; and what its catalogue entry lists) did not arrive or was not usable, or an
    optional column it reads was not sent. A rule not evaluated raises and resolves nothing: its flags keep their
    state and decisions."""
    missing = [s for s in dict.fromkeys([*rule.needs, *sorted(reads)]) if not columns.get(s)]
    if missing:
        return "; ".join(f"{s}: {unavailable.get(s, '未收到 (not received)')}" for s in missing)
    absent = [f"{s}.{c}" for s, c in rule.columns if c not in columns[s]]
    return f"缺少列 (missing optional columns): {', '.join(absent)}" if absent else ""


def _keys_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("household_id", "hukou_household_id", "id_number", "village_code"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype("str")
    return frame


def flags(tables: Mapping[str, pd.DataFrame | str | Path], policy: Policy, as_of: pd.Timestamp,
          unavailable: Mapping[str, str] | None = None, *, catalogue: Catalogue | None = None,
          work_dir: Path | None = None, memory_limit: str | None = None,
          engine: str = "duckdb") -> tuple[pd.DataFrame, dict[str, str]]:
    """All flags of tonight's rules, and the rules not evaluated with their reason.

    ``tables`` holds the usable staged registers (frames, or Parquet files read where they lie); ``unavailable``
    says why the others are not there (missing, failed, blocked by the quality gate).
    """
    backend = None if engine == "duckdb" else backend_for(engine, work_dir, policy)
    with Engine(tables, policy, pd.Timestamp(as_of), catalogue or current(), work_dir, memory_limit,
                backend=backend) as running:
        return running.flags(unavailable or {})
