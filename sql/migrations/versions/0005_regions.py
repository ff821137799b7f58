"""regions: the names of division codes (county, township, village) that outputs for people show

A reference sent with a run (the landing folder's ``regions/`` or the policy's ``regions_file``) replaces it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('regions',
                    sa.Column('code', sa.String(length=12), nullable=False),
                    sa.Column('name', sa.Text(), nullable=False),
                    sa.Column('run_id', sa.String(length=40), nullable=False),
                    sa.PrimaryKeyConstraint('code'))


def downgrade() -> None:
    op.drop_table('regions')
