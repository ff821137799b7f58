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


# ---------------------------------------------------------------- personal data at rest

def _jingzhun(args: list[str], work, tmp, **env) -> str:
    """The command line as a deployment runs it, under a umask that would leave its files readable by all."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "jingzhun.cli", *args], cwd=work.parent, capture_output=True,
                          text=True, timeout=900, preexec_fn=lambda: os.umask(0o022),
                          env={**os.environ, "JINGZHUN_WORK": str(work), "TMPDIR": str(tmp),
                               "PREFECT_HOME": str(work / "prefect"), **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_nothing_a_demo_run_a_preview_or_an_export_leaves_is_readable_by_group_or_others(tmp_path):
    """Every file and folder the demo (generate, run, indicators), a rules preview and each export write is its
    owner's only (0600 / 0700), though the shell's umask would have made them 0644 / 0755; the preview's temporary
    folder is gone."""
    import csv
    import stat
    from pathlib import Path

    work, tmp, out = tmp_path / "work", tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir(mode=0o700)
    out.mkdir(mode=0o700)
    _jingzhun(["demo", "--households", "60", "--as-of", "2026-11-22"], work, tmp)
    pack = Path(__file__).resolve().parents[2] / "examples" / "province-pack"
    _jingzhun(["rules", "preview", "--rules", str(pack)], work, tmp)
    _jingzhun(["flags", "export", "--out", str(out / "flags.csv")], work, tmp)
    _jingzhun(["flags", "export", "--out", str(out / "flags.xlsx")], work, tmp)
    _jingzhun(["review", "export", "--out", str(out / "review.xlsx")], work, tmp)
    _jingzhun(["flags", "publicity", "--out", str(out / "publicity.xlsx")], work, tmp)
    _jingzhun(["indicators", "--out", str(out / "indicators.xlsx")], work, tmp)
    with open(out / "flags.csv", encoding="utf-8-sig") as f:
        household = next(r["household_id"] for r in csv.DictReader(f) if r["household_id"])
    _jingzhun(["household", household, "--out", str(out / "household.xlsx")], work, tmp)
    assert list(tmp.iterdir()) == []  # the preview's copy of the registers went with it
    written = [p for p in [*work.rglob("*"), *out.rglob("*")] if not p.is_symlink()]
    kinds = {p.suffix for p in written if p.is_file()}
    assert {".sqlite", ".parquet", ".xlsx", ".csv", ".html"} <= kinds, kinds
    open_to_others = [f"{p.relative_to(tmp_path)} {stat.filemode(p.stat().st_mode)}" for p in written
                      if p.stat().st_mode & 0o077]
    assert open_to_others == []
    assert stat.S_IMODE(work.stat().st_mode) == 0o700


@pytest.mark.parametrize("typed, refused", [
    ("户号 620421900000197 已核实", False),          # a 15-digit hukou household number: no birth date inside
    ("P62042110020190197", False),                    # a register household number
    ("老证 620421810511801", True),                   # the 15-digit identity number of someone born 1981-05-11
    ("户主 62042119810511801X 已死亡", True),
    ("户主 620421 19810511 801X", True),              # typed in groups
    ("6204211981051180", True),                       # a number with a digit lost is still one
])
def test_typed_words_are_refused_for_an_identity_number_not_for_a_household_number(typed, refused):
    from jingzhun.privacy import typed_id_number

    assert typed_id_number(typed) is refused
