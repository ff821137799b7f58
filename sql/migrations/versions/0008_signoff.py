"""the sign-off chain: a flag's stage, its steps, users, sessions, API tokens and the audit log

Today's decisions move into the chain: a confirmed flag is ``approved``, a dismissed one ``dismissed``, each review
becomes a step saying it was decided before the chain; an open flag starts at its direction's first stage. The
steps and the audit log are append-only: a trigger refuses UPDATE and DELETE on both backends.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:00:00
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

APPEND_ONLY = ("steps", "audit_log")


def upgrade() -> None:
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage', sa.String(length=20), server_default='pending_village', nullable=False))
        batch_op.add_column(sa.Column('stage_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('step_seq', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_flags_stage'), ['stage'], unique=False)
    op.create_table('steps',
                    sa.Column('step_id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('flag_key', sa.String(length=48), nullable=False),
                    sa.Column('action', sa.String(length=16), nullable=False),
                    sa.Column('stage_before', sa.String(length=20), nullable=False),
                    sa.Column('stage_after', sa.String(length=20), nullable=False),
                    sa.Column('actor', sa.String(length=64), nullable=False),
                    sa.Column('role', sa.String(length=12), nullable=False),
                    sa.Column('acted_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('note', sa.Text(), nullable=True),
                    sa.Column('verifiers', sa.Text(), nullable=True),
                    sa.Column('department', sa.Text(), nullable=True),
                    sa.Column('evidence_hash', sa.String(length=64), nullable=False),
                    sa.Column('state_token', sa.String(length=64), nullable=False),
                    sa.Column('via', sa.String(length=12), nullable=False),
                    sa.Column('workbook_sha256', sa.String(length=64), nullable=True),
                    sa.PrimaryKeyConstraint('step_id'))
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_steps_flag_key'), ['flag_key'], unique=False)
    op.create_table('users',
                    sa.Column('user_id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('username', sa.String(length=64), nullable=False),
                    sa.Column('role', sa.String(length=12), nullable=False),
                    sa.Column('area', sa.String(length=12), nullable=False),
                    sa.Column('password_hash', sa.Text(), nullable=False),
                    sa.Column('disabled', sa.Boolean(), server_default='0', nullable=False),
                    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
                    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('user_id'),
                    sa.UniqueConstraint('username'))
    op.create_table('sessions',
                    sa.Column('session_hash', sa.String(length=64), nullable=False),
                    sa.Column('user_id', sa.Integer(), nullable=False),
                    sa.Column('csrf_token', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('session_hash'))
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_user_id'), ['user_id'], unique=False)
    op.create_table('api_tokens',
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('user_id', sa.Integer(), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
                    sa.PrimaryKeyConstraint('token_hash'))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)
    op.create_table('audit_log',
                    sa.Column('audit_id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('actor', sa.String(length=64), nullable=False),
                    sa.Column('action', sa.String(length=24), nullable=False),
                    sa.Column('object_type', sa.String(length=16), nullable=True),
                    sa.Column('object_key', sa.String(length=64), nullable=True),
                    sa.Column('area', sa.String(length=12), nullable=True),
                    sa.Column('origin', sa.String(length=64), nullable=True),
                    sa.Column('detail', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('audit_id'))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
    _append_only()
    _decisions_into_the_chain()


def _append_only() -> None:
    """UPDATE and DELETE refused by the database itself (TRUNCATE too on PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION jingzhun_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION jingzhun_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION jingzhun_append_only()")
    else:
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


FIRST = ("CASE WHEN f.direction = 'refer' THEN 'pending_referral' WHEN f.direction = 'review' THEN 'pending_steward' "
         "ELSE 'pending_village' END")


def _decisions_into_the_chain() -> None:
    """Every review a step of the chain (``migrated``, as the steward recorded it); every flag at its stage."""
    now = datetime.now(timezone.utc)
    decided = ("CASE r.decision WHEN '确认' THEN 'approved' WHEN '驳回' THEN 'dismissed' ELSE "
               + FIRST + " END")
    op.get_bind().execute(sa.text(
        "INSERT INTO steps (flag_key, action, stage_before, stage_after, actor, role, acted_at, note, evidence_hash, "
        "state_token, via, workbook_sha256) "
        f"SELECT r.flag_key, 'migrated', {FIRST}, {decided}, r.reviewer, 'steward', r.decided_at, "
        "r.decision || CASE WHEN r.note IS NULL OR r.note = '' THEN '' ELSE ':' || r.note END, r.evidence_hash, '', "
        "'migration', r.workbook_sha256 FROM reviews r JOIN flags f ON f.flag_key = r.flag_key ORDER BY r.review_id"))
    op.get_bind().execute(sa.text(
        "UPDATE flags SET stage = CASE status WHEN 'confirmed' THEN 'approved' WHEN 'dismissed' THEN 'dismissed' ELSE "
        + FIRST.replace("f.direction", "direction") + " END, stage_since = :now, "
        "step_seq = (SELECT COUNT(*) FROM reviews r WHERE r.flag_key = flags.flag_key)"), {"now": now})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS jingzhun_append_only()")
    op.drop_table('audit_log')
    op.drop_table('api_tokens')
    op.drop_table('sessions')
    op.drop_table('users')
    op.drop_table('steps')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flags_stage'))
        batch_op.drop_column('step_seq')
        batch_op.drop_column('stage_since')
        batch_op.drop_column('stage')
