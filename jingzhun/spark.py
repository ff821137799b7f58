"""The matching engine on Apache Spark (``--engine spark``): the same SQL models, transpiled to Spark SQL.

Grain of what it holds: one temporary view per source, policy table and model of tonight's run, in one Spark
session. It is a backend of :class:`jingzhun.engine.Engine` (which builds every statement, in DuckDB's SQL): this
module only runs them — :func:`jingzhun.engine.transpile` is the one place dialects differ. Staged registers are
read by Spark where they lie (Parquet: on a cluster, a shared file system or object store); small relations (the
policy, tonight's flags for the marts) are written beside them as Parquet first, so executors read them the same
way. Models are written as Parquet in the run folder and read back; nothing is collected onto the driver but the flags
and the village indicators.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jingzhun.engine import transpile
from jingzhun.evidence import identifier
from jingzhun.policy import SparkSettings
from jingzhun.sandbox import ModelFailed

MASTER_ENV = "JINGZHUN_SPARK_MASTER"
ORDER = "_ord"  # a staged row's place in its Parquet file, as the engine's models name it (what "first" means)

# Spark's type names as DuckDB names them (what the evidence builders read: dates, numbers, flags, empty).
_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "float": "FLOAT", "bigint": "BIGINT", "int": "INTEGER",
          "smallint": "SMALLINT", "tinyint": "TINYINT", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP",
          "timestamp_ntz": "TIMESTAMP", "date": "DATE", "void": "NULL"}

_session = None  # one per process: a JVM starts once


@contextmanager
def naming(model: str):
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - described by its condition, never quoted
        get = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
        try:
            condition = get() if get else None
        except Exception:  # noqa: BLE001 - a condition that cannot be read is not one
            condition = None
        failure = ModelFailed(f"model {model} failed on Spark: {condition or type(exc).__name__}")
    else:
        return
    raise failure  # outside the handler: Spark's message is not chained to it


def master_of(settings: SparkSettings, master: str | None = None) -> str:
    """The master a run uses: the one asked for, else ``JINGZHUN_SPARK_MASTER``, else the policy's."""
    return master or os.environ.get(MASTER_ENV) or settings.master


def session(settings: SparkSettings, master: str | None = None, local_dir: Path | None = None):
    """The process's Spark session (started on first use; started again when another master is asked for).
    Timestamps are read and written without a time zone (UTC), as staging writes them."""
    global _session
    from pyspark.sql import SparkSession

    wanted = master_of(settings, master)
    if _session is not None and _session.sparkContext.master != wanted:
        _session.stop()
        _session = None
    if _session is None:
        if wanted.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: no network address to look up
        # The JVM starts as this process's child and inherits its environment: glibc's per-thread arenas (up to
        # 8 per core) otherwise grow its memory well beyond the heap Spark is given.
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        builder = (SparkSession.builder.master(wanted).appName("jingzhun")
                   .config("spark.driver.memory", settings.driver_memory)
                   .config("spark.executor.memory", settings.executor_memory)
                   .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
                   .config("spark.ui.enabled", "false")
                   # Hadoop sets a file's mode itself from its own umask (022 unless told): owner-only like the rest
                   .config("spark.hadoop.fs.permissions.umask-mode", "077")
                   .config("spark.ui.showConsoleProgress", "false"))
        if local_dir is not None:
            local_dir.mkdir(parents=True, exist_ok=True)
            builder = builder.config("spark.local.dir", str(local_dir))
        for key, value in settings.conf.items():
            builder = builder.config(key, value)
        _session = builder.getOrCreate()
        # Spark's own log lines name files and plans, and a failing task's message may quote a value: none are
        # printed; a failure reaches the run as the step's error, which names the model, never a value.
        _session.sparkContext.setLogLevel("OFF")
    return _session


def placed(spark, path: str, columns: list[str] | None = None):
    """A staged Parquet file as Spark reads it where it lies (``columns`` of it, or all), with :data:`ORDER`, each
    row's place in the file, numbered as DuckDB numbers it."""
    from pyspark.sql import functions as F

    return spark.read.parquet(path).select(*(columns or ["*"]), F.col("_metadata.row_index").alias(ORDER))


class Spark:
    """The Spark backend: statements in DuckDB's SQL, transpiled and run as Spark SQL on temporary views."""

    dialect = "spark"

    def __init__(self, work_dir: Path | None, settings: SparkSettings, master: str | None = None,
                 scratch: Path | None = None):
        """``work_dir``: tonight's models (a temporary folder when None); ``scratch``: where Spark spills (its
        ``spark.local.dir``, fixed when the process's session starts; the system's temporary folder when None)."""
        self._own_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="jingzhun-spark-")) if work_dir is None else Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.spark = session(settings, master, scratch)
        self._views: list[str] = []

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def close_the_door(self) -> None:
        """Nothing more to close: Spark reads files only where the engine's own statements (``spark.read``) say,
        and every model was checked to read registered views only (:func:`jingzhun.sandbox.check_model`)."""

    def interrupt(self) -> None:
        """Stop what Spark is computing (a model past the policy's time limit)."""
        self.spark.sparkContext.cancelAllJobs()

    def _name(self, frame, name: str) -> None:
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def register(self, name: str, table: pa.Table) -> None:
        """A small Arrow table as a view: written as Parquet in the run folder, read by Spark like a register."""
        folder = self.work_dir / "relations"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.parquet"
        pq.write_table(table, path)
        self._name(self.spark.read.parquet(str(path)), name)

    def parquet(self, name: str, path: str) -> str:
        """A staged Parquet file as a view with ``_ord``, its row's place in the file (:func:`placed`)."""
        self._name(placed(self.spark, path), name)
        return identifier(name)

    def view(self, name: str, sql: str) -> None:
        with naming(name):
            self._name(self.spark.sql(transpile(sql, self.dialect)), name)

    def table(self, name: str, sql: str) -> None:
        """A model's rows, computed now and written as Parquet in the run folder, then read back as its view: the
        models that read it start from those files (as DuckDB's tables), not from its plan, so a failing model names
        itself and Spark's optimiser never sees the whole night's plan at once."""
        path = str(self.work_dir / "models" / name)
        with naming(name):
            self.spark.sql(transpile(sql, self.dialect)).write.mode("overwrite").parquet(path)
        self._name(self.spark.read.parquet(path), name)

    def columns(self, relation: str) -> dict[str, str]:
        return {name: _TYPES.get(kind, kind.upper()) for name, kind in self.spark.table(relation).dtypes}

    def arrow(self, sql: str) -> pa.Table:
        with naming("(the flags collected)"):
            return self.spark.sql(transpile(sql, self.dialect)).toArrow()
