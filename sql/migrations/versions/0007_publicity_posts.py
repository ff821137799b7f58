"""publicity posts: what each 公示 list posted (flag, the confirmation, household, period, the list written)

The next list carries only confirmations not yet posted; a list for a past period is printed again from it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('publicity_posts',
                    sa.Column('post_id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('flag_key', sa.String(length=48), nullable=False),
                    sa.Column('review_id', sa.Integer(), nullable=False),
                    sa.Column('household_id', sa.String(length=64), nullable=False),
                    sa.Column('hukou_household_id', sa.String(length=64), nullable=False),
                    sa.Column('village_code', sa.String(length=12), nullable=False),
                    sa.Column('direction', sa.String(length=8), nullable=False),
                    sa.Column('period_start', sa.Date(), nullable=False),
                    sa.Column('period_end', sa.Date(), nullable=False),
                    sa.Column('list_file', sa.Text(), nullable=False),
                    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('post_id'))
    with op.batch_alter_table('publicity_posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publicity_posts_flag_key'), ['flag_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_publicity_posts_period_start'), ['period_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('publicity_posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publicity_posts_period_start'))
        batch_op.drop_index(batch_op.f('ix_publicity_posts_flag_key'))
    op.drop_table('publicity_posts')
