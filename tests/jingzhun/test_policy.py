from datetime import date

import pytest

from jingzhun.policy import Policy, PolicyError, load_policy


def test_defaults_come_from_the_spec():
    p = Policy()
    assert p.income_line_for(date(2019, 6, 1)) == 3747 and p.income_line_for(date(2026, 1, 1)) == 4000
    assert (p.referral_income, p.large_medical_expense) == (3500, 10000)
    assert p.vehicle_type_names["小型轿车"] == "K33" and p.vehicle_type_names["三轮汽车"] == "N11"


def test_a_config_file_overrides_fields(tmp_path):
    path = tmp_path / "county.yaml"
    path.write_text("referral_income: 3800\nincome_line: {2026: 4300}\n", encoding="utf-8")
    p = load_policy(path)
    assert p.referral_income == 3800 and p.income_line_for(date(2026, 3, 1)) == 4300
    assert p.large_medical_expense == 10000


def test_unknown_keys_are_refused(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("referal_income: 3800\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="referal_income: unknown key"):
        load_policy(path)


def test_a_province_sets_its_spark_cluster_in_the_policy_and_a_wrong_unit_is_refused(tmp_path):
    path = tmp_path / "province.yaml"
    path.write_text("spark:\n  master: spark://10.0.0.9:7077\n  executor_memory: 16g\n"
                    "  conf: {spark.executor.instances: '20'}\n", encoding="utf-8")
    spark = load_policy(path).spark
    assert (spark.master, spark.executor_memory, spark.driver_memory) == ("spark://10.0.0.9:7077", "16g", "4g")
    assert spark.conf == {"spark.executor.instances": "20"}
    path.write_text("spark:\n  executor_memory: 16GB\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="spark.executor_memory"):
        load_policy(path)
