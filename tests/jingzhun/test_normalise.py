import random

import pandas as pd
import pytest
from stdnum.cn import ric

from jingzhun import normalise as nz

from helpers import valid_id


def test_check_digit_agrees_with_stdnum():
    rng = random.Random(3)
    bodies = [f"{rng.choice(['110101', '620421', '440305'])}{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}"
              f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}" for _ in range(2000)]
    ours = nz.check_digits(pd.Series(bodies)).tolist()
    assert ours == [ric.calc_check_digit(b + "0") for b in bodies]


@pytest.mark.parametrize("form", [
    lambda n: f"  {n} ", lambda n: f"'{n}", lambda n: n.lower(),
    lambda n: n.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),
    lambda n: f"{n[:6]} {n[6:14]} {n[14:]}",
])
def test_dirty_forms_normalise_to_the_number(ids, form):
    out = nz.normalise_ids(pd.Series([form(n) for n in ids]))
    assert out["id_number"].tolist() == ids
    assert out["id_valid"].all()


def test_legacy_15_digit_numbers_are_upgraded(ids):
    legacy = [n[:6] + n[8:17] for n in ids if n[6:8] == "19"]
    out = nz.normalise_ids(pd.Series(legacy))
    assert out["id_number"].tolist() == [n for n in ids if n[6:8] == "19"]
    assert out["id_valid"].all() and out["id_legacy15"].all()


def test_old_number_with_a_code_younger_than_its_holder_is_valid():
    number = valid_id("62042119500101001")  # 靖远县 has been 620421 since 1985
    assert not ric.is_valid(number)  # stdnum ties the code to the birth year: we must not
    assert nz.normalise_ids(pd.Series([number]))["id_valid"].all()


@pytest.mark.parametrize("raw, problem", [
    ("6.20421198001011E+17", "excel"),
    ("6.20421198001011e+17", "excel"),
    ("620421198001011234.0", "excel"),
    ("62042119800101123", "shape"),
    ("62042119800101123A", "shape"),
    ("", "missing"),
])
def test_unusable_numbers_are_kept_and_marked(raw, problem):
    out = nz.normalise_ids(pd.Series([raw]))
    assert not out["id_valid"].iloc[0]
    assert out["id_problem"].iloc[0] == problem


def test_excel_integer_that_lost_digits_fails_its_check_digit(ids):
    n = ids[1]
    mangled = n[:15] + "000"
    if nz.check_digits(pd.Series([mangled[:17]])).iloc[0] == "0":
        mangled = n[:14] + "9000"
    out = nz.normalise_ids(pd.Series([mangled]))
    assert out["id_problem"].tolist() == ["checksum"]
    assert out["id_number"].tolist() == [mangled]  # never repaired


def test_impossible_date_and_unknown_region():
    bad_date = valid_id("62042119801301123")
    bad_region = valid_id("99999919800101123")
    out = nz.normalise_ids(pd.Series([bad_date, bad_region]))
    assert out["id_problem"].tolist() == ["date", "region"]


def test_every_date_form():
    raw = pd.Series(["2019-03-11", "2019/3/11", "20190311", "2019年3月11日", "2019.03.11", "2019-03-11 00:00:00", "２０１９-０３-１１"])
    dates, bad = nz.parse_dates(raw)
    assert (dates == pd.Timestamp("2019-03-11")).all()
    assert not bad.any()


def test_unreadable_and_impossible_dates_are_reported():
    dates, bad = nz.parse_dates(pd.Series(["2019-02-30", "三月", "", "2019/13/1"]))
    assert bad.tolist() == [True, True, False, True]
    assert dates.isna().all()


def test_every_money_form():
    values, bad = nz.parse_money(pd.Series(["3500", "3,500.00", "3500元", "３５００", " 3500.5 "]))
    assert values.tolist() == [3500, 3500, 3500, 3500, 3500.5]
    assert not bad.any()
    _, bad = nz.parse_money(pd.Series(["约三千", "35OO"]))
    assert bad.all()


def test_names_compare_across_spaces_width_and_traditional_characters():
    out = nz.normalise_names(pd.Series(["張 偉", "劉　麗華", "ＬＩ明", "王芳"]))
    assert out.tolist() == ["张伟", "刘丽华", "LI明", "王芳"]


def test_ages_use_completed_years():
    n = valid_id("62042120101122001")  # born 2010-11-22
    as_of = pd.Timestamp("2026-11-22")
    assert nz.ages_at(pd.Series([n]), as_of).tolist() == [16]
    assert nz.ages_at(pd.Series([n]), as_of - pd.Timedelta(days=1)).tolist() == [15]


def test_vocabulary_mapping_folds_width_and_reports_unknown_codes():
    mapped, bad = nz.map_vocab(pd.Series(["Ｃ级", "C", "E级", ""]), {"C级": "C", "C": "C"})
    assert mapped.tolist()[:2] == ["C", "C"]
    assert bad.tolist() == [False, False, True, False]


ATTACK = {"\u0336": "a long stroke overlay (Mn)", "\u3164": "the Hangul filler (Lo)", "\u202e": "a right-to-left "
          "override (Cf)", "\u200b": "a zero-width space (Cf)", "\u115f": "a Hangul choseong filler", "\u1160": "a "
          "Hangul jungseong filler", "\uffa0": "the half-width Hangul filler", "\u2800": "the blank braille pattern",
          "\u20dd": "an enclosing circle (Me)", "\u034f": "the combining grapheme joiner (Mn)"}


@pytest.mark.parametrize("char", ATTACK, ids=ATTACK.values())
def test_invisible_combining_and_filler_characters_leave_a_name_and_are_counted(char):
    values, changed = nz.strip_invisible(pd.Series([f"张{char}三{char}", "李四", f"{char}王五"]), marks=True)
    assert values.tolist() == ["张三", "李四", "王五"] and changed.tolist() == [True, False, True]


def test_combining_marks_leave_names_only_and_a_composed_letter_stays():
    number = valid_id("62042119500101001")
    values, changed = nz.strip_invisible(pd.Series([number + "\u0336", "阿依古丽·买买提", "Zoe\u0308"]))
    assert values.tolist() == [number + "\u0336", "阿依古丽·买买提", "Zoe\u0308"] and not changed.any()  # not a name
    values, changed = nz.strip_invisible(pd.Series(["阿依古丽·买买提", "Zoe\u0308", "e\u0301\u0336"]), marks=True)
    assert values.tolist() == ["阿依古丽·买买提", "Zoe\u0308", "\u00e9"]    # ë composes: kept as sent, not counted
    assert changed.tolist() == [False, False, True]
