"""quality gate: validation results, and each file's modification time and missing column

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('validation_results',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('expectation', sa.String(length=80), nullable=False),
    sa.Column('column', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('quarantined_by', sa.String(length=8), nullable=True),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('element_count', sa.Integer(), nullable=True),
    sa.Column('unexpected_count', sa.Integer(), nullable=True),
    sa.Column('unexpected_percent', sa.Float(), nullable=True),
    sa.Column('observed_value', sa.Text(), nullable=True),
    sa.Column('examples', sa.Text(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('validation_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_validation_results_run_id'), ['run_id'], unique=False)
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('modified', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('missing_column', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.drop_column('missing_column')
        batch_op.drop_column('modified')
    with op.batch_alter_table('validation_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_validation_results_run_id'))
    op.drop_table('validation_results')
