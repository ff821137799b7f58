"""Region names and people's names, as every output for people shows them."""

import pandas as pd
import pytest

from jingzhun import labels
from jingzhun.policy import ReaderLimits


def test_region_names_from_reference_county_from_gb2260_else_code(tmp_path):
    ref = tmp_path / "regions.csv"
    ref.write_text("区划代码,名称\n620421100,乌兰镇\n620421100201,红柳村\n", encoding="utf-8-sig")
    reference = labels.read_regions([ref], ReaderLimits()).set_index("code")["name"]
    codes = pd.Series(["620421100201", "620421100202", "620421101201"])
    assert labels.region_names(codes, reference, "village").tolist() == ["红柳村", "620421100202", "620421101201"]
    assert labels.region_names(codes, reference, "township").tolist() == ["乌兰镇", "乌兰镇", "620421101"]
    assert labels.region_names(codes, reference, "county").tolist() == ["靖远县"] * 3   # GB/T 2260


def test_a_scope_is_titled_by_the_names_its_prefix_reaches_and_nothing_unknown_is_made_up(tmp_path):
    ref = tmp_path / "regions.csv"
    ref.write_text("区划代码,名称\n620421100,乌兰镇\n620421100201,红柳村\n", encoding="utf-8-sig")
    reference = labels.read_regions([ref], ReaderLimits()).set_index("code")["name"]
    assert labels.scope_title("620421100201", reference) == "靖远县乌兰镇红柳村"
    assert labels.scope_title("620421100", reference) == "靖远县乌兰镇"
    assert labels.scope_title("620421101", reference) == "靖远县"          # a township the reference lacks
    assert labels.scope_title("6204", reference) == "" and labels.scope_title("99", reference) == ""


def test_a_later_reference_file_wins_and_blank_names_are_not_names(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("区划代码,名称\n620421100201,旧名村\n620421100202,东滩村\n", encoding="utf-8")
    b.write_text("统计用区划代码,区划名称\n620421100201,红柳村\n620421100202,\n", encoding="utf-8")
    names = labels.read_regions([a, b], ReaderLimits()).set_index("code")["name"].to_dict()
    assert names == {"620421100201": "红柳村"}


def test_a_reference_with_a_bad_code_is_refused_naming_file_and_row(tmp_path):
    ref = tmp_path / "regions.csv"
    ref.write_text("区划代码,名称\n620421100201,红柳村\n6204211002X1,某村\n", encoding="utf-8")
    with pytest.raises(labels.RegionsError) as caught:
        labels.read_regions([ref], ReaderLimits())
    assert "regions/regions.csv" in str(caught.value) and "第3行" in str(caught.value)
    assert "某村" not in str(caught.value)


def test_townships_of_several_counties_are_led_by_their_county_and_the_title_names_the_province():
    reference = pd.Series({"620121100000": "乌兰镇", "620122100000": "乌兰镇", "620121100201": "红柳村"})
    one_county = pd.Series(["620121100201", "620121100202"])
    assert labels.township_names(one_county, reference).tolist() == ["乌兰镇", "乌兰镇"]
    assert labels.area_name(one_county, reference) == "永登县"
    province = pd.Series(["620121100201", "620122100201"])
    assert labels.township_names(province, reference).tolist() == ["永登县乌兰镇", "皋兰县乌兰镇"]
    assert labels.area_name(province, reference) == "甘肃省"
    assert labels.area_name(pd.Series(["620121100201", "610102001001"]), reference) == ""
    assert labels.area_name(pd.Series([], dtype="str"), reference) == ""
