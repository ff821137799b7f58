"""The flags' state across nights: a flag's identity and evidence digest, the merge of tonight's flags into the
published ones (the chain's stage kept, sent back or ended), and what moved.

Grain: one row per flag (its key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
from sqlalchemy import (Engine, case, delete, func, insert, select)

from jingzhun.evidence import digest_body
from jingzhun.signoff.stages import Action, first_stages

from jingzhun.warehouse.connection import now
from jingzhun.warehouse.loads import bulk_insert
from jingzhun.schema import (
    flags, wap_flags, steps)

FLAG_KEY_CHARS = 48  # the flag key: the first 48 hex digits (192 bits) of SHA-256, the width flags.flag_key holds


def flag_identities(frame: pd.DataFrame) -> pd.Series:
    """The canonical text a flag's key digests: what the flag is about, and nothing another register supplies.

    ``flag/v2|<rule>|register|<register household>|<identity number, for a person-level rule; else empty>`` for a
    flag about a register household (or one of its members), ``flag/v2|<rule>|hukou|<hukou household>`` for a
    family not on the register. The hukou household number and names of a register family are attributes
    refreshed each night, never its identity: a 户号 that changes (分户, 迁移) keeps the flag and its decisions."""
    household = frame["household_id"].fillna("").astype("str")
    person = frame["id_number"].fillna("").astype("str")
    hukou = frame["hukou_household_id"].fillna("").astype("str")
    about = ("register|" + household + "|" + person).where(household.ne(""), "hukou|" + hukou)
    return "flag/v2|" + frame["rule_code"].astype("str") + "|" + about


def flag_keys(frame: pd.DataFrame) -> pd.Series:
    """The stable identity of a flag: the SHA-256 of :func:`flag_identities`, its first 48 hex digits."""
    return sha256_hex(flag_identities(frame)).str[:FLAG_KEY_CHARS]


def evidence_hashes(frame: pd.DataFrame) -> pd.Series:
    """A digest of what the evidence says: the SHA-256 (hex) of its records without the date, file names or row
    numbers they came with (a new export of the same facts is the same evidence; :func:`digest_body`)."""
    return sha256_hex(digest_body(frame["evidence"]))


def sha256_hex(text: pd.Series) -> pd.Series:
    """SHA-256 of each string's UTF-8 bytes, in hex, computed column-wise (DuckDB's ``sha256``): a standard digest
    whose value no library upgrade changes."""
    import duckdb

    if text.empty:
        return pd.Series([], index=text.index, dtype="str")
    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"t": pa.array(text.astype("str"), pa.string())}))
        digests = con.sql("SELECT sha256(t) AS h FROM texts").to_arrow_table().column("h").to_pandas()
    finally:
        con.close()
    return pd.Series(digests.to_numpy(), index=text.index, dtype="str")


FLAG_STATE = ["flag_key", "rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
              "evidence", "evidence_text", "evidence_hash", "status", "first_seen_run", "last_seen_run", "resolved_run",
              "opened_run", "stage", "stage_since", "step_seq"]


@dataclass(frozen=True)
class Scope:
    """What a run may raise and resolve: every flag (the nightly run), or those of villages under a region
    prefix and, optionally, of some households (register or hukou household ids): a reconciliation."""

    region: str | None = None
    households: tuple[str, ...] = ()
    keep_decisions: bool = False  # a deliberate re-run for an earlier as_of: decided flags are left as they are

    def holds(self, frame: pd.DataFrame) -> pd.Series:
        """Which flags (rows with village_code, household_id, hukou_household_id) are inside the scope."""
        inside = pd.Series(True, index=frame.index)
        if self.region:
            inside &= frame["village_code"].astype("str").str.startswith(self.region)
        if self.households:
            inside &= frame["household_id"].isin(self.households) | frame["hukou_household_id"].isin(self.households)
        return inside


def merge_flags(current: pd.DataFrame, raised: pd.DataFrame, run_id: str, evaluated: set[str],
                scope: Scope | None, when: datetime | None = None) -> pd.DataFrame:
    """The flags table after this run.

    Raised and new: open. Raised again: keeps its state and takes tonight's evidence, except that a
    dismissed flag stays dismissed (with the evidence the steward saw) while its evidence is unchanged,
    and opens again when it changes; a resolved flag opens again. Not raised by a rule evaluated tonight
    (within ``scope`` for a reconciliation): open and confirmed flags become resolved. Everything else
    keeps its state. A flag opened again, or whose evidence changed while it walks the sign-off chain, goes back to
    its direction's first stage at ``when`` (its steps stay: :func:`publish_flags` records the move).
    """
    when = when or now()
    old = current.set_index("flag_key")
    new = raised.set_index("flag_key")
    seen = new.index.intersection(old.index)
    fresh = new.loc[new.index.difference(old.index)]
    fresh = fresh.assign(status="open", first_seen_run=run_id, last_seen_run=run_id, resolved_run=None, opened_run=run_id,
                         stage=first_stages(fresh["direction"]), stage_since=when, step_seq=0)
    was = old.loc[seen, "status"]
    same_evidence = old.loc[seen, "evidence_hash"].eq(new.loc[seen, "evidence_hash"])
    still_dismissed = was.eq("dismissed") & same_evidence
    status = was.mask(was.isin(["resolved", "dismissed"]), "open").mask(still_dismissed, "dismissed")
    reopened = was.isin(["resolved", "dismissed"]) & status.eq("open")
    opened = old.loc[seen, "opened_run"].fillna(old.loc[seen, "first_seen_run"]).mask(reopened, run_id)
    again = new.loc[seen].assign(first_seen_run=old.loc[seen, "first_seen_run"], last_seen_run=run_id,
                                 status=status, resolved_run=None, opened_run=opened)
    evidence_cols = ["evidence", "evidence_text", "evidence_hash"]
    keep = scope is not None and scope.keep_decisions  # a re-run for an earlier date changes no decided flag
    if keep:
        still_dismissed = was.eq("dismissed")
        again["status"] = again["status"].mask(still_dismissed, "dismissed")
        again["opened_run"] = again["opened_run"].mask(was.isin(["confirmed", "dismissed"]), old.loc[seen, "opened_run"])
    again.loc[still_dismissed, evidence_cols] = old.loc[still_dismissed[still_dismissed].index, evidence_cols]
    # the chain (signoff.md, "Nightly runs and the chain"): opened again, or evidence changed mid-chain: back to the
    # first stage with its history kept; unchanged facts never move a flag backwards
    start = first_stages(new.loc[seen, "direction"])
    chain = old.loc[seen, ["stage", "stage_since", "step_seq"]].copy()
    chain["stage_since"] = pd.to_datetime(chain["stage_since"], utc=True)  # SQLite gives back naive UTC
    back = again["status"].eq("open") & (reopened | (was.eq("open") & ~same_evidence & chain["stage"].ne(start)))
    if keep:
        back &= ~was.isin(["confirmed", "dismissed"]) & ~was.eq("open")
    chain.loc[back, "stage"] = start[back]
    chain.loc[back, "stage_since"] = pd.Timestamp(when)
    chain["step_seq"] = chain["step_seq"].fillna(0).astype("int64") + back.astype("int64")
    again[["stage", "stage_since", "step_seq"]] = chain
    rest = old.loc[old.index.difference(new.index)].copy()
    in_scope = rest["rule_code"].isin(evaluated) & rest["status"].isin(["open"] if keep else ["open", "confirmed"])
    if scope is not None:
        in_scope &= scope.holds(rest)
    rest.loc[in_scope, "status"] = "resolved"
    rest.loc[in_scope, "resolved_run"] = run_id
    return pd.concat([fresh, again, rest]).reset_index().reindex(columns=FLAG_STATE)


def publish_flags(conn, run_id: str, evaluated: set[str], scope: Scope | None) -> None:
    """Merge the run's audited flags (``wap_flags``) into the published ``flags``. On PostgreSQL the table is
    locked against writers first: a step taken while the run merges waits, then finds the flag as the run left it
    (and is refused if that moved it), instead of being overwritten by the run's older read. (SQLite's publish
    already holds the database's write lock.)"""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE flags IN EXCLUSIVE MODE")
    current = pd.read_sql(select(flags), conn)
    raised = pd.read_sql(select(wap_flags).where(wap_flags.c.run_id == run_id), conn)
    when = now()
    merged = merge_flags(current, raised, run_id, evaluated, scope, when)
    conn.execute(delete(flags))
    bulk_insert(conn, flags, merged)
    record_moves(conn, current, merged, when)


def record_moves(conn, before: pd.DataFrame, after: pd.DataFrame, when: datetime) -> int:
    """One ``reopened`` step (via ``nightly``) per flag the run sent back to its first stage: the chain's record
    says why a flag someone had moved on is back."""
    was = before.set_index("flag_key")[["stage", "step_seq"]]
    moved = after.join(was, on="flag_key", rsuffix="_before")
    moved = moved[moved["step_seq_before"].notna() & moved["step_seq"].gt(moved["step_seq_before"])]
    if moved.empty:
        return 0
    conn.execute(insert(steps), [
        {"flag_key": k, "action": Action.reopened.value, "stage_before": b, "stage_after": a, "actor": "system",
         "role": "system", "acted_at": when, "note": "证据已变化或重新触发 (evidence changed, or raised again)",
         "evidence_hash": h, "state_token": f"{b}|{int(q) - 1}", "via": "nightly"}
        for k, b, a, h, q in zip(moved["flag_key"], moved["stage_before"], moved["stage"], moved["evidence_hash"],
                                 moved["step_seq"])])
    return len(moved)


def flag_movements(engine: Engine, run_id: str) -> pd.DataFrame:
    """Per rule and direction, what the run did to the published flags: raised for the first time, raised
    again (still there), and resolved. Counts only: no identity number or name."""
    f = flags.c
    with engine.connect() as conn:
        touched = pd.read_sql(select(f.rule_code, f.direction, f.first_seen_run, f.last_seen_run, f.resolved_run).where(
            (f.last_seen_run == run_id) | (f.resolved_run == run_id)), conn)
    counts = touched.assign(
        new=touched["first_seen_run"].eq(run_id),
        still_open=touched["last_seen_run"].eq(run_id) & touched["first_seen_run"].ne(run_id),
        resolved=touched["resolved_run"].eq(run_id),
    ).groupby(["rule_code", "direction"], as_index=False)[["new", "still_open", "resolved"]].sum()
    return counts.astype({"new": "int64", "still_open": "int64", "resolved": "int64"})


def flag_summary(engine: Engine, run_id: str) -> dict[str, int]:
    """What a run did to the published flags, for its summary: raised for the first time, raised again, opened
    again (after being resolved, or dismissed on evidence that has since changed), resolved; and how many flags
    of the whole warehouse await a steward's decision after it."""
    f = flags.c
    with engine.connect() as conn:
        new, again, reopened, resolved, awaiting = conn.execute(select(
            func.sum(case((f.first_seen_run == run_id, 1), else_=0)),
            func.sum(case(((f.last_seen_run == run_id) & (f.first_seen_run != run_id)
                           & (func.coalesce(f.opened_run, "") != run_id), 1), else_=0)),
            func.sum(case(((f.opened_run == run_id) & (f.first_seen_run != run_id), 1), else_=0)),
            func.sum(case((f.resolved_run == run_id, 1), else_=0)),
            func.sum(case((f.status == "open", 1), else_=0)))).one()
    return {"new": int(new or 0), "still_raised": int(again or 0), "reopened": int(reopened or 0),
            "resolved": int(resolved or 0), "awaiting_decision": int(awaiting or 0)}
