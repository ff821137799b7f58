"""initial warehouse schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 11:59:31.102689
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flags',
    sa.Column('flag_key', sa.String(length=48), nullable=False),
    sa.Column('rule_code', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('hukou_household_id', sa.String(length=64), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('evidence_text', sa.Text(), nullable=True),
    sa.Column('evidence_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('first_seen_run', sa.String(length=40), nullable=False),
    sa.Column('last_seen_run', sa.String(length=40), nullable=False),
    sa.Column('resolved_run', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('flag_key')
    )
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flags_rule_code'), ['rule_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_flags_village_code'), ['village_code'], unique=False)

    op.create_table('mart_village_indicators',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=False),
    sa.Column('register_households', sa.Integer(), nullable=True),
    sa.Column('register_persons', sa.Integer(), nullable=True),
    sa.Column('unexited_households', sa.Integer(), nullable=True),
    sa.Column('unexited_persons', sa.Integer(), nullable=True),
    sa.Column('hukou_persons', sa.Integer(), nullable=True),
    sa.Column('poverty_incidence', sa.Float(), nullable=True),
    sa.Column('share_remove', sa.Float(), nullable=True),
    sa.Column('share_revert', sa.Float(), nullable=True),
    sa.Column('share_exit', sa.Float(), nullable=True),
    sa.Column('share_refer', sa.Float(), nullable=True),
    sa.Column('share_review', sa.Float(), nullable=True),
    sa.Column('add_families', sa.Integer(), nullable=True)
    )
    with op.batch_alter_table('mart_village_indicators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mart_village_indicators_run_id'), ['run_id'], unique=False)

    op.create_table('quarantine',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('file', sa.Text(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_run_id'), ['run_id'], unique=False)

    op.create_table('reviews',
    sa.Column('review_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flag_key', sa.String(length=48), nullable=False),
    sa.Column('decision', sa.String(length=8), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reviewer', sa.String(length=128), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence_hash', sa.String(length=64), nullable=False),
    sa.Column('workbook', sa.Text(), nullable=False),
    sa.Column('workbook_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('review_id')
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviews_flag_key'), ['flag_key'], unique=False)

    op.create_table('run_files',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('file', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('format', sa.String(length=8), nullable=True),
    sa.Column('encoding', sa.String(length=16), nullable=True),
    sa.Column('sheet', sa.Text(), nullable=True),
    sa.Column('header_row', sa.Integer(), nullable=True),
    sa.Column('rows_read', sa.Integer(), nullable=True),
    sa.Column('rows_not_data', sa.Integer(), nullable=True),
    sa.Column('columns', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_files_run_id'), ['run_id'], unique=False)

    op.create_table('run_rules',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('rule_code', sa.String(length=32), nullable=False),
    sa.Column('evaluated', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('raised', sa.Integer(), nullable=True)
    )
    with op.batch_alter_table('run_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_rules_run_id'), ['run_id'], unique=False)

    op.create_table('runs',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('landing', sa.Text(), nullable=True),
    sa.Column('region', sa.String(length=12), nullable=True),
    sa.Column('parameters', sa.Text(), nullable=True),
    sa.Column('timings', sa.Text(), nullable=True),
    sa.Column('sources', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('run_id')
    )
    op.create_table('stg_cadres',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('position', sa.Text(), nullable=True),
    sa.Column('term_status', sa.String(length=32), nullable=True),
    sa.Column('village_code', sa.String(length=12), nullable=True)
    )
    op.create_table('stg_deaths',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('death_date', sa.Date(), nullable=True),
    sa.Column('record_source', sa.Text(), nullable=True)
    )
    op.create_table('stg_housing_safety',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('head_id_number', sa.String(length=32), nullable=True),
    sa.Column('head_id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('head_id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('head_name', sa.Text(), nullable=True),
    sa.Column('head_name_norm', sa.Text(), nullable=True),
    sa.Column('grade', sa.String(length=32), nullable=True),
    sa.Column('appraised', sa.Date(), nullable=True),
    sa.Column('renovation', sa.String(length=32), nullable=True),
    sa.Column('renovated', sa.Date(), nullable=True),
    sa.Column('floor_area_m2', sa.Float(), nullable=True)
    )
    op.create_table('stg_hukou',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('sex', sa.Text(), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('hukou_household_id', sa.Text(), nullable=True),
    sa.Column('relation', sa.Text(), nullable=True),
    sa.Column('address_code', sa.String(length=12), nullable=True),
    sa.Column('person_status', sa.String(length=32), nullable=True),
    sa.Column('status_date', sa.Date(), nullable=True)
    )
    op.create_table('stg_illness',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('disease', sa.Text(), nullable=True),
    sa.Column('diagnosed', sa.Date(), nullable=True),
    sa.Column('treatment_status', sa.String(length=32), nullable=True),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('out_of_pocket', sa.Float(), nullable=True)
    )
    op.create_table('stg_medical_insurance',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('insured_year', sa.Integer(), nullable=True),
    sa.Column('insured_status', sa.String(length=32), nullable=True),
    sa.Column('scheme', sa.Text(), nullable=True)
    )
    op.create_table('stg_poverty_register',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('household_id', sa.Text(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('relation', sa.Text(), nullable=True),
    sa.Column('village_code', sa.String(length=12), nullable=True),
    sa.Column('household_type', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('identified_year', sa.Integer(), nullable=True),
    sa.Column('exit_year', sa.Integer(), nullable=True),
    sa.Column('household_size', sa.Float(), nullable=True),
    sa.Column('income_per_capita', sa.Float(), nullable=True),
    sa.Column('labor', sa.Text(), nullable=True),
    sa.Column('health', sa.Text(), nullable=True),
    sa.Column('safe_water', sa.String(length=32), nullable=True),
    sa.Column('electricity', sa.String(length=32), nullable=True),
    sa.Column('unexited', sa.Boolean(), nullable=True)
    )
    op.create_table('stg_real_estate',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('owner_id_number', sa.String(length=32), nullable=True),
    sa.Column('owner_id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('owner_id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('owner_name', sa.Text(), nullable=True),
    sa.Column('owner_name_norm', sa.Text(), nullable=True),
    sa.Column('unit_id', sa.Text(), nullable=True),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('location_code', sa.String(length=12), nullable=True),
    sa.Column('usage', sa.Text(), nullable=True),
    sa.Column('nature', sa.Text(), nullable=True),
    sa.Column('area_m2', sa.Float(), nullable=True),
    sa.Column('registered', sa.Date(), nullable=True),
    sa.Column('right_status', sa.String(length=32), nullable=True)
    )
    op.create_table('stg_social_assistance',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('assistance_household_id', sa.Text(), nullable=True),
    sa.Column('assistance_type', sa.String(length=32), nullable=True),
    sa.Column('dibao_class', sa.String(length=32), nullable=True),
    sa.Column('labor_capacity', sa.String(length=32), nullable=True),
    sa.Column('income_per_capita', sa.Float(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('assistance_status', sa.String(length=32), nullable=True)
    )
    op.create_table('stg_students',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('id_number', sa.String(length=32), nullable=True),
    sa.Column('id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('name_norm', sa.Text(), nullable=True),
    sa.Column('school', sa.Text(), nullable=True),
    sa.Column('stage', sa.Text(), nullable=True),
    sa.Column('grade', sa.Text(), nullable=True),
    sa.Column('enrollment_status', sa.String(length=32), nullable=True),
    sa.Column('dropout_reason', sa.String(length=32), nullable=True),
    sa.Column('status_date', sa.Date(), nullable=True)
    )
    op.create_table('stg_vehicles',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('_file', sa.Text(), nullable=True),
    sa.Column('_row', sa.Integer(), nullable=True),
    sa.Column('owner_id_number', sa.String(length=32), nullable=True),
    sa.Column('owner_id_number_valid', sa.Boolean(), nullable=True),
    sa.Column('owner_id_number_problem', sa.String(length=16), nullable=True),
    sa.Column('owner_name', sa.Text(), nullable=True),
    sa.Column('owner_name_norm', sa.Text(), nullable=True),
    sa.Column('plate', sa.Text(), nullable=True),
    sa.Column('vehicle_type', sa.Text(), nullable=True),
    sa.Column('usage', sa.Text(), nullable=True),
    sa.Column('first_registered', sa.Date(), nullable=True),
    sa.Column('vehicle_status', sa.String(length=32), nullable=True),
    sa.Column('vehicle_class', sa.String(length=8), nullable=True)
    )
    op.create_table('wap_flags',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('flag_key', sa.String(length=48), nullable=False),
    sa.Column('rule_code', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('hukou_household_id', sa.String(length=64), nullable=False),
    sa.Column('id_number', sa.String(length=32), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('evidence_text', sa.Text(), nullable=True),
    sa.Column('evidence_hash', sa.String(length=64), nullable=False)
    )
    with op.batch_alter_table('wap_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wap_flags_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wap_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wap_flags_run_id'))

    op.drop_table('wap_flags')
    op.drop_table('stg_vehicles')
    op.drop_table('stg_students')
    op.drop_table('stg_social_assistance')
    op.drop_table('stg_real_estate')
    op.drop_table('stg_poverty_register')
    op.drop_table('stg_medical_insurance')
    op.drop_table('stg_illness')
    op.drop_table('stg_hukou')
    op.drop_table('stg_housing_safety')
    op.drop_table('stg_deaths')
    op.drop_table('stg_cadres')
    op.drop_table('runs')
    with op.batch_alter_table('run_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_rules_run_id'))

    op.drop_table('run_rules')
    with op.batch_alter_table('run_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_files_run_id'))

    op.drop_table('run_files')
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_flag_key'))

    op.drop_table('reviews')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_run_id'))

    op.drop_table('quarantine')
    with op.batch_alter_table('mart_village_indicators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mart_village_indicators_run_id'))

    op.drop_table('mart_village_indicators')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flags_village_code'))
        batch_op.drop_index(batch_op.f('ix_flags_rule_code'))

    op.drop_table('flags')
