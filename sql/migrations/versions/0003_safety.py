"""safety: entries of a source folder that were not read, and the run that last opened each flag

``run_files.ignored`` records why an entry of a source folder was not read (a subfolder, another kind of
file), so nothing in a landing folder goes unrecorded. ``flags.opened_run`` is the run that raised a flag
for the first time or opened it again (after it was resolved or its dismissal's evidence changed): a review
workbook's decision is bound to it, so a decision taken on an earlier opening is refused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ignored', sa.Text(), nullable=True))
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_run', sa.String(length=40), nullable=True))
    op.execute("UPDATE flags SET opened_run = first_seen_run")


def downgrade() -> None:
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_column('opened_run')
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.drop_column('ignored')
