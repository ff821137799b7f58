"""register lookups: each register's person and household numbers indexed, so the workbench's household dossier
reads a family's rows without scanning a county's registers (jingzhun.schema.looked_up)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:00:00
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

LOOKUPS = [  # (register table, column): the contract's registers at this revision
    ("stg_poverty_register", "id_number"), ("stg_poverty_register", "household_id"),
    ("stg_hukou", "id_number"), ("stg_hukou", "hukou_household_id"),
    ("stg_vehicles", "owner_id_number"), ("stg_real_estate", "owner_id_number"),
    ("stg_housing_safety", "head_id_number"), ("stg_social_assistance", "id_number"), ("stg_deaths", "id_number"),
    ("stg_students", "id_number"), ("stg_medical_insurance", "id_number"), ("stg_illness", "id_number"),
    ("stg_cadres", "id_number"),
]


def upgrade() -> None:
    for table, column in LOOKUPS:
        op.create_index(f"ix_{table}_{column}", table, [column], unique=False)


def downgrade() -> None:
    for table, column in LOOKUPS:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
