"""canonical evidence digest: the digest of a flag's evidence no longer depends on the order of its records

The digest now covers the records sorted by what they say (``transforms.evidence.digest_body``), so the same
facts sent in another row or file order keep a dismissed flag dismissed. This recomputes the digest of the
evidence already stored, so that no dismissed flag opens again on the first night after the upgrade merely
because the digest's definition changed (single-record evidence keeps its digest).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:45:00
"""
import pandas as pd
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from jingzhun.warehouse import evidence_hashes

    conn = op.get_bind()
    flags = pd.read_sql(sa.text("SELECT flag_key, evidence, evidence_hash FROM flags"), conn)
    if flags.empty:
        return
    flags["new_hash"] = evidence_hashes(flags)
    changed = flags[flags["new_hash"].ne(flags["evidence_hash"])]
    if not changed.empty:
        conn.execute(sa.text("UPDATE flags SET evidence_hash = :new_hash WHERE flag_key = :flag_key"),
                     changed[["flag_key", "new_hash"]].to_dict(orient="records"))


def downgrade() -> None:
    pass  # the old digest cannot be told from the new one for single-record evidence; nothing to undo safely
