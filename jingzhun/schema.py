"""The warehouse's tables: one place that says what is stored (the migrations under ``sql/migrations`` create them;
a test compares the two). Run records, quarantine, registers, flags, the decisions and the sign-off chain's steps, users,
the audit log and the data-problem tickets to departments.
"""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Date, DateTime, Float, Integer, MetaData, String, Table, Text

from jingzhun.contract import SOURCES, Source
from jingzhun.staging import DERIVED

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(40), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running | published | dry_run | failed
    Column("as_of", Date, nullable=False),
    Column("landing", Text),
    Column("region", String(12)),
    Column("parameters", Text),     # JSON
    Column("timings", Text),        # JSON: stage -> seconds
    Column("sources", Text),        # JSON: source -> status and counts
    Column("error", Text),
    Column("host", String(255)),
    Column("pid", Integer),
)

run_files = Table(
    "run_files", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("source", String(40), nullable=False),
    Column("file", Text, nullable=False),
    Column("size", Integer), Column("sha256", String(64)), Column("format", String(8)),
    Column("encoding", String(16)), Column("sheet", Text), Column("header_row", Integer),
    Column("rows_read", Integer), Column("rows_not_data", Integer), Column("columns", Text), Column("error", Text),
    Column("modified", DateTime(timezone=True)), Column("missing_column", String(64)),
    Column("ignored", Text),   # why an entry of the source folder was not read
)

validation_results = Table(  # the quality gate: one row per source and expectation of a run
    "validation_results", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("source", String(40), nullable=False),
    Column("expectation", String(80), nullable=False),
    Column("column", String(64)),
    Column("description", Text),
    Column("severity", String(8), nullable=False),        # source | row
    Column("quarantined_by", String(8)),                  # reader | staging | gate
    Column("success", Boolean, nullable=False),
    Column("element_count", Integer), Column("unexpected_count", Integer), Column("unexpected_percent", Float),
    Column("observed_value", Text),
    Column("examples", Text),                             # JSON: up to 20 of {file, row, value}
    Column("outcome", Text),
)

quarantine = Table(
    "quarantine", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("source", String(40), nullable=False),
    Column("file", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text),
)

flags = Table(
    "flags", metadata,
    Column("flag_key", String(48), primary_key=True),  # stable identity: rule and household / person
    Column("rule_code", String(32), nullable=False, index=True),
    Column("direction", String(8), nullable=False),
    Column("household_id", String(64), nullable=False),
    Column("hukou_household_id", String(64), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("village_code", String(12), nullable=False, index=True),
    Column("evidence", Text, nullable=False),
    Column("evidence_text", Text),
    Column("evidence_hash", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # open | confirmed | dismissed | resolved
    Column("first_seen_run", String(40), nullable=False),
    Column("last_seen_run", String(40), nullable=False),
    Column("resolved_run", String(40)),
    Column("opened_run", String(40)),  # the run that raised it first or opened it again: decisions bind to it
    # the sign-off chain (jingzhun/signoff): where the flag stands, since when (a period counts from it), and how many
    # steps it has taken (part of the state token: two people acting on the same state, the second is refused)
    Column("stage", String(20), nullable=False, server_default="pending_village", index=True),
    Column("stage_since", DateTime(timezone=True)),
    Column("step_seq", Integer, nullable=False, server_default="0"),
)

run_rules = Table(
    "run_rules", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("rule_code", String(32), nullable=False),
    Column("evaluated", Boolean, nullable=False),
    Column("reason", Text),
    Column("raised", Integer),
)

wap_flags = Table(  # write-audit-publish: a run's flags are written here, audited, then published
    "wap_flags", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("flag_key", String(48), nullable=False),
    Column("rule_code", String(32), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("household_id", String(64), nullable=False),
    Column("hukou_household_id", String(64), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("evidence_text", Text),
    Column("evidence_hash", String(64), nullable=False),
)

reviews = Table(
    "reviews", metadata,
    Column("review_id", Integer, primary_key=True, autoincrement=True),
    Column("flag_key", String(48), nullable=False, index=True),
    Column("decision", String(8), nullable=False),   # 确认 | 驳回 | 待核实
    Column("note", Text),
    Column("reviewer", String(128), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("evidence_hash", String(64), nullable=False),  # the evidence the steward saw
    Column("workbook", Text, nullable=False),
    Column("workbook_sha256", String(64), nullable=False),
)

publicity_posts = Table(  # what a 公示 list posted: one row per flag (and the confirmation) on a list
    "publicity_posts", metadata,
    Column("post_id", Integer, primary_key=True, autoincrement=True),
    Column("flag_key", String(48), nullable=False, index=True),
    Column("review_id", Integer, nullable=False),         # the confirmation posted
    Column("household_id", String(64), nullable=False),
    Column("hukou_household_id", String(64), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("period_start", Date, nullable=False, index=True),
    Column("period_end", Date, nullable=False),
    Column("list_file", Text, nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=False),
)

village_indicators = Table(
    "mart_village_indicators", metadata,
    Column("run_id", String(40), nullable=False, index=True),
    Column("village_code", String(12), nullable=False),
    Column("township_code", String(9), nullable=False),
    Column("register_households", Integer), Column("register_persons", Integer),
    Column("unexited_households", Integer), Column("unexited_persons", Integer),
    Column("hukou_persons", Integer), Column("poverty_incidence", Float),
    Column("share_remove", Float), Column("share_revert", Float), Column("share_exit", Float),
    Column("share_refer", Float), Column("share_review", Float), Column("add_families", Integer),
)

regions = Table(  # the regions reference (labels.py): one row per division code, replaced by a run that has one
    "regions", metadata,
    Column("code", String(12), primary_key=True),
    Column("name", Text, nullable=False),
    Column("run_id", String(40), nullable=False),
)

steps = Table(  # the sign-off chain's record (jingzhun/signoff): one row per step taken on a flag; append-only
    "steps", metadata,
    Column("step_id", Integer, primary_key=True, autoincrement=True),
    Column("flag_key", String(48), nullable=False, index=True),
    Column("action", String(16), nullable=False),          # signoff.Action
    Column("stage_before", String(20), nullable=False),
    Column("stage_after", String(20), nullable=False),
    Column("actor", String(64), nullable=False),           # the user's name; "system" for a period that ended
    Column("role", String(12), nullable=False),
    Column("acted_at", DateTime(timezone=True), nullable=False),
    Column("note", Text),                                  # reason, objection, department's answer
    Column("verifiers", Text),                             # JSON list of names (乡镇审核's 入户核实)
    Column("department", Text),                            # a referral's department
    Column("evidence_hash", String(64), nullable=False),   # the evidence the person saw
    Column("state_token", String(64), nullable=False),     # the flag's state they acted on
    Column("via", String(12), nullable=False),             # web | api | workbook | nightly | period | migration
    Column("workbook_sha256", String(64)),
)

users = Table(  # who may sign in (jingzhun/auth.py): role and area decide what they see and may do
    "users", metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(12), nullable=False),            # village | township | county | steward | auditor
    Column("area", String(12), nullable=False),            # a division-code prefix ("" for an auditor: any)
    Column("password_hash", Text, nullable=False),         # Argon2id
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(  # a browser's sign-in: only the SHA-256 of the cookie's secret is stored
    "sessions", metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(  # a script's credential: only the SHA-256 of the token is stored
    "api_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(  # one row per login, failed login, step, full-number view, export and user change; append-only
    "audit_log", metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False),           # the user's name, or the name tried at a failed login
    Column("action", String(24), nullable=False),          # audit.Event
    Column("object_type", String(16)),                     # flag | household | user | export | session
    Column("object_key", String(64)),                      # never an identity number: a flag key, household id, name
    Column("area", String(12)),                            # the object's division code (who may read the row)
    Column("origin", String(64)),                          # where from: the client's address, or "cli"
    Column("detail", Text),
)

tickets = Table(  # data problems a steward sent back to a department (jingzhun/tickets.py): one row per ticket
    "tickets", metadata,
    Column("ticket_id", Integer, primary_key=True, autoincrement=True),
    Column("area", String(12), nullable=False, index=True),  # the opening steward's area: who may read the ticket
    Column("department", String(64), nullable=False),        # to whom: the sending department (contract.DEPARTMENTS)
    Column("source", String(40), nullable=False),            # which register
    Column("run_id", String(40)),                            # the run it was opened from (none: opened freehand)
    Column("subject", Text, nullable=False),                 # what is wrong, in words: files, rows, columns; no value
    Column("opened_by", String(64), nullable=False),         # the steward's user name
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
    Column("answered_by", String(64)),                       # who answered for the department, as recorded
    Column("answer", Text),                                  # the department's answer, as the steward recorded it
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", String(64)),
    Column("status", String(12), nullable=False, server_default="open", index=True),  # tickets.Status
    CheckConstraint("status IN ('open', 'answered', 'closed')", name="ck_tickets_status"),
)

FLAG_EXPORT_COLUMNS = ["rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
                       "evidence", "status", "first_seen_run", "last_seen_run"]

_KIND_TYPES = {"id": String(32), "name": Text, "text": Text, "vocab": String(32), "code12": String(12),
               "date": Date, "money": Float, "number": Float, "year": Integer}
_DERIVED_TYPES = {"flag": Boolean, "code": lambda: String(8)}  # staging.DERIVED's kinds


def staging_table_name(source: str) -> str:
    return f"stg_{source}"


LOOKUP_COLUMNS = ("household_id", "hukou_household_id")  # besides each register's person: how a family is found


def looked_up(source: Source) -> set[str]:
    """The columns a household's dossier finds rows by: the register's person (its first identity number) and its
    household numbers; indexed, so that a page reads a family's rows without scanning a county's registers."""
    person = next((c.name for c in source.columns if c.kind == "id"), None)
    return {person} - {None} | {c.name for c in source.columns if c.name in LOOKUP_COLUMNS}


def _staging_table(source: Source) -> Table:
    cols = [Column("run_id", String(40), nullable=False), Column("_file", Text), Column("_row", Integer)]
    indexed = looked_up(source)
    for c in source.columns:
        cols.append(Column(c.name, _KIND_TYPES[c.kind], index=c.name in indexed or None))
        if c.kind == "id":
            cols += [Column(f"{c.name}_valid", Boolean), Column(f"{c.name}_problem", String(16))]
        if c.kind == "name":
            cols.append(Column(f"{c.name}_norm", Text))
    cols += [Column(name, _DERIVED_TYPES[kind]()) for name, kind in DERIVED.get(source.name, {}).items()]
    return Table(staging_table_name(source.name), metadata, *cols)


staging_tables = {name: _staging_table(source) for name, source in SOURCES.items()}
DEPLOYMENT_TABLES: dict[str, Table] = {}  # a deployment's own registers: created when missing, outside the migrations


def add_source_table(source: Source) -> None:
    """A table for a deployment's new source (deployment.py); a source of the contract keeps its own."""
    if source.name not in staging_tables:
        staging_tables[source.name] = DEPLOYMENT_TABLES[source.name] = _staging_table(source)


def remove_source_tables() -> None:
    """Forget a deployment's tables (its rows stay in the warehouse)."""
    for name, table in DEPLOYMENT_TABLES.items():
        staging_tables.pop(name, None)
        metadata.remove(table)
    DEPLOYMENT_TABLES.clear()
