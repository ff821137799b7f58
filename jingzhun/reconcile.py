"""The ad-hoc reconciliation an official triggers for a township, a village or some households.

Same steps as the nightly run (:func:`jingzhun.nightly.run_landing`), inside a scope: flags are raised and
resolved only for the villages under ``region`` (and the listed households), from the sources asked for.
Parameters are typed, so Prefect refuses a malformed region code, date or source name when the run is
created; a well-formed region or household that the published register does not know is refused here,
before any work starts.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from prefect import flow
from pydantic import Field, WithJsonSchema

from jingzhun import warehouse
from jingzhun.contract import SOURCES
from jingzhun.nightly import FLOW_TIMEOUT_SECONDS, EngineName, run_landing, work_folder
from jingzhun.warehouse import Scope, UnknownScope, check_scope  # noqa: F401 - UnknownScope: what callers catch

SourceName = Literal[tuple(SOURCES)]  # type: ignore[valid-type]
RegionCode = Annotated[str, Field(pattern=r"^\d{2}(\d{2}(\d{2}(\d{3}(\d{3})?)?)?)?$",
                                  description="statistical division code prefix: 2, 4, 6, 9 or 12 digits")]
# A date, refused by the server when the run is created if it is not YYYY-MM-DD with a possible month and day
# (an impossible day such as 02-30 is refused when the run starts, before any work).
def _day(title: str, description: str):
    return Annotated[date | None, WithJsonSchema({
        "anyOf": [{"type": "string", "format": "date", "pattern": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"},
                  {"type": "null"}], "title": title, "description": description})]


AsOf = _day("as_of", "the date the run is as of (default: today)")
Today = _day("today", "the run's day (default: today in the policy's time zone)")


@flow(name="reconcile", log_prints=False, timeout_seconds=FLOW_TIMEOUT_SECONDS)
def reconcile(landing: str, region: RegionCode, households: list[str] | None = None,
              sources: list[SourceName] | None = None, as_of: AsOf = None, dry_run: bool = False,
              warehouse_url: str | None = None, config: str | None = None, work_dir: str | None = None,
              sources_config: str | None = None, deployment_file: str | None = None, engine: EngineName = "duckdb",
              spark_master: str | None = None, today: Today = None, earlier: bool = False) -> dict:
    """Reconcile one region (optionally some households, some sources) now; returns the run summary."""
    warehouse.refuse_password_parameter(warehouse_url)
    url = warehouse.resolve_url(warehouse_url, work_folder(work_dir))
    scope = Scope(region, tuple(households or ()), keep_decisions=earlier)
    check_scope(warehouse.connect(url), scope)  # again here: a deployment's run does not pass the command line
    return run_landing(landing, warehouse_url=url, as_of=as_of, config=config, scope=scope, dry_run=dry_run,
                       work_dir=work_dir, sources_config=sources_config, sources=list(sources) if sources else None,
                       deployment_file=deployment_file, engine=engine, spark_master=spark_master,
                       today=today)
