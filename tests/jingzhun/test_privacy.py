"""What a run may say about itself: locations, never cells."""

from __future__ import annotations

import logging

import pytest

from jingzhun.privacy import SafeError, StepFailed, contained, describe, install_log_masking, mask_cell, mask_id_shaped

from helpers import valid_id

NUMBER = valid_id("62042119800101123")


def test_identity_shaped_text_is_masked_whatever_its_digits():
    arabic = NUMBER.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    text = (f"row 7: {NUMBER} and {arabic}. A run 20261122-abcdef12, a key 12345678901234567890-1, "
            f"a share 2.702702702702703e-06")
    masked = mask_id_shaped(text)
    assert NUMBER not in masked and arabic not in masked
    assert "620421" + "*" * 11 + NUMBER[-1] in masked
    assert "20261122-abcdef12" in masked and "12345678901234567890" in masked   # not numbers of persons
    assert "2.702702702702703e-06" in masked


def test_mask_cell_hides_the_middle_of_a_number_and_all_but_the_first_character_of_a_name():
    assert mask_cell(NUMBER) == NUMBER[:2] + "*" * 13 + NUMBER[-3:]
    assert mask_cell("王小明") == "王**" and mask_cell(None) == ""


def test_a_library_error_is_described_by_its_type_and_our_line_never_its_message():
    def stage():
        raise ValueError(f"bad value {NUMBER} for 王小明")

    try:
        stage()
    except ValueError as exc:
        text = describe(exc)
    assert text.startswith("ValueError at test_privacy.py:") and "in stage" in text
    assert NUMBER not in text and "王小明" not in text


def test_a_contained_step_raises_step_failed_without_the_cause_chained():
    @contained("staging", lambda source: source)
    def step(source):
        raise KeyError(f"{NUMBER}")

    with pytest.raises(StepFailed) as caught:
        step("hukou")
    assert str(caught.value).startswith("staging of hukou failed: KeyError at")
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert NUMBER not in str(caught.value)


def test_a_safe_error_passes_through_a_contained_step_unchanged():
    @contained("read")
    def step():
        raise SafeError("hukou/a.csv: line 3")

    with pytest.raises(SafeError, match="^hukou/a.csv: line 3$"):
        step()


def test_every_log_record_has_identity_numbers_masked_even_in_tracebacks(caplog):
    install_log_masking()
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO):
        logger.info("loaded %s", NUMBER)
        try:
            raise RuntimeError(f"cannot store {NUMBER}")
        except RuntimeError:
            logger.exception("failed")
    assert NUMBER not in caplog.text
    assert NUMBER[:6] in caplog.text and caplog.text.count("*" * 11) >= 2
