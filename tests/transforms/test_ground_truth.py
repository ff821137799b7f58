"""On the generated county, tonight's flags equal the planted ground truth exactly, rule by rule."""

import pandas as pd
from helpers import AS_OF

from jingzhun.catalogue import RULES
from jingzhun.contract import SOURCES
from jingzhun.engine import flags
from jingzhun.policy import Policy
from jingzhun.readers import read_source
from jingzhun.synth import EXPECTED_FLAGS
from jingzhun.staging import STAGING

KEY = ["rule_code", "household_id", "hukou_household_id", "id_number"]


def test_flags_equal_ground_truth_per_rule(county):
    policy = Policy()
    frames = {name: STAGING[name](read_source(county["landing"], source)[0], policy).rows
              for name, source in SOURCES.items()}
    raised, skipped = flags(frames, policy, pd.Timestamp(AS_OF))
    assert skipped == {}
    assert not raised.duplicated(KEY).any()
    expected = pd.read_csv(county["out"] / "ground_truth" / EXPECTED_FLAGS, dtype=str).fillna("")
    both = raised[KEY].merge(expected[KEY], how="outer", indicator=True)
    print(f"\n{'rule':<20}{'expected':>9}{'raised':>8}{'precision':>11}{'recall':>8}")
    for code in RULES:
        rows = both[both["rule_code"].eq(code)]
        tp = int(rows["_merge"].eq("both").sum())
        n_raised, n_expected = int(rows["_merge"].ne("right_only").sum()), int(rows["_merge"].ne("left_only").sum())
        precision = tp / n_raised if n_raised else 1.0
        recall = tp / n_expected if n_expected else 1.0
        print(f"{code:<20}{n_expected:>9}{n_raised:>8}{precision:>11.3f}{recall:>8.3f}")
        assert n_expected >= 3, f"{code} is not planted"
        assert (precision, recall) == (1.0, 1.0), rows[rows["_merge"] != "both"]
    directions = raised.set_index("rule_code")["direction"].groupby(level=0).first()
    assert directions.to_dict() == {code: r.direction for code, r in RULES.items()}
