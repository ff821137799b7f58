"""The example province pack (examples/province-pack): two registers and their removal rules added as
configuration and SQL only; its rules raise exactly its planted cases, and the whole county's ground truth
stays exact with them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers import AS_OF
from jingzhun import deployment
from jingzhun.catalogue import RULES
from jingzhun.contract import SOURCES
from jingzhun.engine import flags
from jingzhun.policy import Policy
from jingzhun.readers import read_source
from jingzhun.synth import EXPECTED_FLAGS, generate
from jingzhun.staging import STAGING

PACK = Path(__file__).resolve().parents[2] / "examples" / "province-pack"
KEY = ["rule_code", "household_id", "hukou_household_id", "id_number"]


@pytest.fixture
def pack_county(tmp_path):
    """A small county generated with the pack (its deployment installed in this process, removed afterwards)."""
    try:
        summary = generate(tmp_path / "county", households=300, seed=3, as_of=AS_OF, pack=PACK)
        yield tmp_path / "county", Path(summary["landing"])
    finally:
        deployment.uninstall()


def test_the_pack_adds_its_sources_and_rules_and_raises_exactly_its_cases(pack_county):
    out, landing = pack_county
    assert {"public_employees", "business_registry"} <= set(SOURCES)
    assert {"RM_PUBLIC_EMPLOYEE", "RM_BUSINESS_OWNER"} <= set(RULES)
    assert "农户编号" in SOURCES["poverty_register"].column("household_id").aliases
    policy = Policy()
    frames = {name: STAGING[name](read_source(landing, source)[0], policy).rows for name, source in SOURCES.items()}
    raised, skipped = flags(frames, policy, pd.Timestamp(AS_OF))
    assert skipped == {}
    expected = pd.read_csv(out / "ground_truth" / EXPECTED_FLAGS, dtype=str).fillna("")
    both = raised[KEY].merge(expected[KEY], how="outer", indicator=True)
    assert both["_merge"].eq("both").all(), both[both["_merge"] != "both"]
    pack = raised[raised["rule_code"].isin(["RM_PUBLIC_EMPLOYEE", "RM_BUSINESS_OWNER"])]
    assert pack["rule_code"].value_counts().to_dict() == {"RM_PUBLIC_EMPLOYEE": 6, "RM_BUSINESS_OWNER": 6}
    assert pack["evidence_text"].str.contains("为财政供养人员|的法定代表人|的投资人").all()
    assert not pack["evidence_text"].str.contains("退休|注销|监事").any()     # the exemptions raise nothing


def test_uninstalling_leaves_the_shipped_contract_and_catalogue(pack_county):
    deployment.uninstall()
    assert "public_employees" not in SOURCES and "RM_PUBLIC_EMPLOYEE" not in RULES
    assert "农户编号" not in SOURCES["poverty_register"].column("household_id").aliases
    assert len(RULES) == 21
