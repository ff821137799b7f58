"""data-problem tickets: what a steward sent back to a department about its register (to whom, when, answered or
not), one row per ticket (jingzhun.tickets)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tickets',
                    sa.Column('ticket_id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('area', sa.String(length=12), nullable=False),
                    sa.Column('department', sa.String(length=64), nullable=False),
                    sa.Column('source', sa.String(length=40), nullable=False),
                    sa.Column('run_id', sa.String(length=40), nullable=True),
                    sa.Column('subject', sa.Text(), nullable=False),
                    sa.Column('opened_by', sa.String(length=64), nullable=False),
                    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('answered_by', sa.String(length=64), nullable=True),
                    sa.Column('answer', sa.Text(), nullable=True),
                    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('closed_by', sa.String(length=64), nullable=True),
                    sa.Column('status', sa.String(length=12), server_default='open', nullable=False),
                    sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name='ck_tickets_status'),
                    sa.PrimaryKeyConstraint('ticket_id'))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_area'), ['area'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_status'))
        batch_op.drop_index(batch_op.f('ix_tickets_area'))
    op.drop_table('tickets')
