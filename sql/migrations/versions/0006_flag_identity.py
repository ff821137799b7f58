"""flag identity: a flag is its rule and the register household (and person); keys and digests are SHA-256

Until now a flag's key digested its rule, register household, hukou household and person with pandas' internal
hash, so a family whose 户号 changed (分户, 迁移) or a night without the hukou register raised a new flag and lost
the decision, and a pandas upgrade could have changed every key at once. The key is now the SHA-256 of a documented
canonical text (``warehouse.flag_identities``) without the hukou household of a register family; the evidence
digest is SHA-256 of its canonical body.

This migration keeps every decision, its history and the first night a flag was seen: each flag gets its new key
and digest; flags that only differed by the hukou household (one per 户号 the family had) become one, keeping the
one still in force (open, confirmed or dismissed before resolved; then the one seen last), the earliest first-seen
run, and every review of all of them; where that one is open but the latest review of any of them confirmed or
dismissed it on the evidence it has now, that decision is in force again (the old key had lost it); each review
whose digest was the evidence then stored takes the new digest.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""
import pandas as pd
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

STATE = ["flag_key", "rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
         "evidence", "evidence_text", "evidence_hash", "status", "first_seen_run", "last_seen_run", "resolved_run",
         "opened_run"]


def upgrade() -> None:
    from jingzhun.warehouse import evidence_hashes, flag_keys

    conn = op.get_bind()
    flags = pd.read_sql(sa.text(f"SELECT {', '.join(STATE)} FROM flags"), conn)
    conn.execute(sa.text("DELETE FROM wap_flags"))  # a run's unpublished flags: written again by the next run
    if flags.empty:
        return
    flags["new_key"], flags["new_hash"] = flag_keys(flags), evidence_hashes(flags)
    in_force = flags["status"].ne("resolved")
    ordered = flags.assign(in_force=in_force).sort_values(["new_key", "in_force", "last_seen_run"],
                                                          ascending=[True, False, False])
    kept = ordered.drop_duplicates("new_key").copy()
    kept["first_seen_run"] = kept["new_key"].map(flags.groupby("new_key")["first_seen_run"].min())
    reviews = pd.read_sql(sa.text("SELECT review_id, flag_key, decision, evidence_hash FROM reviews"), conn)
    if not reviews.empty:
        old = flags.set_index("flag_key")
        seen = reviews["evidence_hash"].eq(reviews["flag_key"].map(old["evidence_hash"]))  # what was stored then
        reviews["new_key"] = reviews["flag_key"].map(old["new_key"]).fillna(reviews["flag_key"])
        reviews["new_hash"] = reviews["evidence_hash"].where(~seen, reviews["flag_key"].map(old["new_hash"]))
        # the decision in force: the latest review of any flag merged into one, taken on the evidence it has now
        latest = reviews.assign(seen=seen).sort_values("review_id").drop_duplicates("new_key", keep="last")
        latest = latest.set_index("new_key")
        now = latest["seen"] & latest["new_hash"].eq(kept.set_index("new_key")["new_hash"].reindex(latest.index))
        decision = latest["decision"].map({"确认": "confirmed", "驳回": "dismissed"}).where(now)
        decided = kept["new_key"].map(decision)
        restore = kept["status"].eq("open") & decided.notna()
        kept.loc[restore, "status"] = decided[restore]
        conn.execute(sa.text("UPDATE reviews SET flag_key = :new_key, evidence_hash = :new_hash "
                             "WHERE review_id = :review_id"),
                     reviews[["review_id", "new_key", "new_hash"]].to_dict(orient="records"))
    rows = kept.drop(columns=["flag_key", "evidence_hash", "in_force"]).rename(
        columns={"new_key": "flag_key", "new_hash": "evidence_hash"})[STATE]
    conn.execute(sa.text("DELETE FROM flags"))
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    conn.execute(sa.text(f"INSERT INTO flags ({', '.join(STATE)}) VALUES ({', '.join(':' + c for c in STATE)})"),
                 records)


def downgrade() -> None:
    pass  # the old keys were digests of the hukou household too; they cannot be told from the new ones
