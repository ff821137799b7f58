"""Staging a register a batch at a time gives exactly what staging it whole gives; the gate reads only its columns."""

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from jingzhun.contract import SOURCES
from jingzhun.policy import EngineSettings, Policy
from jingzhun.quality.gate import columns_read, gate_frame
from jingzhun.quality.suites import Tonight
from jingzhun.readers import read_source
from jingzhun.staging import CHECK_MARK, STAGING, raw_rows_at, stage_file, usable_rows, write_usable_rows

from helpers import AS_OF

SMALL_BATCHES = Policy(engine=EngineSettings(batch_rows=97))


def raw_file(county, source: str, tmp_path, damage=None) -> tuple[pd.DataFrame, str]:
    """One source's raw rows as extraction writes them (text, ``raw/<source>.parquet``)."""
    raw = read_source(county["landing"], SOURCES[source])[0].astype("str")
    if damage:
        damage(raw)
    path = tmp_path / f"{source}.parquet"
    raw.to_parquet(path, index=False)
    return raw.astype({"_row": "int64"}), str(path)


@pytest.mark.parametrize("source", ["poverty_register", "hukou", "vehicles", "housing_safety", "medical_insurance"])
def test_batches_give_what_the_whole_register_gives(county, tmp_path, source):
    raw, path = raw_file(county, source, tmp_path)
    assert len(raw) > 3 * SMALL_BATCHES.engine.batch_rows  # several batches, the last one partial
    whole = STAGING[source](raw, SMALL_BATCHES)

    staged = stage_file(path, source, SMALL_BATCHES, tmp_path / "checked.parquet")

    expected = whole.checked.drop(columns=[c for c in whole.checked.columns if c.endswith(f"{CHECK_MARK}cleaned")])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "checked.parquet"), expected)
    pd.testing.assert_frame_equal(staged.quarantine, whole.quarantine)
    assert staged.rows_read == len(raw)
    assert staged.cleaned == whole.cleaned


def test_a_normalisation_in_a_later_batch_only_is_counted(county, tmp_path):
    """A zero-width space in one name of the last batch: that batch alone has the ``__cleaned`` mark; the file keeps
    one shape and the count says 1."""
    def damage(raw):
        raw.loc[raw.index[-1], "name"] = raw.loc[raw.index[-1], "name"] + "\u200b"
    raw, path = raw_file(county, "hukou", tmp_path, damage)

    staged = stage_file(path, "hukou", SMALL_BATCHES, tmp_path / "checked.parquet")

    assert staged.cleaned == {"name": 1}
    checked = pd.read_parquet(tmp_path / "checked.parquet")
    assert len(checked) == len(raw) and "\u200b" not in checked["name"].iloc[-1]


def test_an_empty_register_stages_to_an_empty_file(county, tmp_path):
    raw, path = raw_file(county, "deaths", tmp_path, damage=lambda r: r.drop(r.index, inplace=True))

    staged = stage_file(path, "deaths", SMALL_BATCHES, tmp_path / "checked.parquet")

    assert staged.rows_read == 0 and staged.quarantine.empty
    assert "id_number" in pq.read_schema(tmp_path / "checked.parquet").names


def test_usable_rows_leave_out_what_staging_and_the_gate_rejected(county, tmp_path):
    raw, path = raw_file(county, "hukou", tmp_path)
    stage_file(path, "hukou", SMALL_BATCHES, tmp_path / "checked.parquet")
    checked = pd.read_parquet(tmp_path / "checked.parquet")
    rejected = np.zeros(len(checked), dtype=bool)
    rejected[[0, 150, len(checked) - 1]] = True

    written = write_usable_rows(tmp_path / "checked.parquet", rejected, tmp_path / "rows.parquet", 97)

    expected = usable_rows(checked.assign(_reason=checked["_reason"].mask(rejected, "gate")))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "rows.parquet"), expected)
    assert written == len(expected) < len(checked) - 2


def test_raw_rows_are_read_back_by_place(county, tmp_path):
    raw, path = raw_file(county, "hukou", tmp_path)
    places = np.array([0, 96, 97, 500, len(raw) - 1])

    rows = raw_rows_at(path, places, 97)

    assert rows.index.tolist() == places.tolist()
    assert rows["_row"].astype("int64").tolist() == raw["_row"].iloc[places].tolist()


@pytest.mark.parametrize("source", ["poverty_register", "hukou", "social_assistance", "students", "vehicles"])
def test_the_gate_on_its_columns_decides_as_on_the_whole_register(county, tmp_path, source):
    raw, _ = raw_file(county, source, tmp_path)
    checked = STAGING[source](raw, Policy()).checked
    tonight, ages = Tonight(AS_OF, date(2026, 11, 23), len(raw)), {f: 1.0 for f in checked["_file"].unique()}

    whole = gate_frame(checked, source, ages, Policy(), tonight, tmp_path / "whole")
    read = columns_read(list(checked.columns), source, Policy(), tonight)
    part = gate_frame(checked[read], source, ages, Policy(), tonight, tmp_path / "part")

    assert len(read) < len(checked.columns)
    pd.testing.assert_frame_equal(part.results, whole.results)
    pd.testing.assert_series_equal(part.reasons, whole.reasons)
    assert part.blocked_because == whole.blocked_because


def test_names_lose_invisible_combining_and_bidi_characters_at_staging_and_the_count_says_so():
    """The attack of #24 (U+0336, U+3164, U+202E, U+200B in names reached the 公示 list and the review workbook)."""
    from helpers import valid_id

    ids = [valid_id(f"6204211950010100{i}") for i in range(4)]
    names = ["张\u0336三\u0336", "\u3164李四", "\u202e王五", "赵\u200b六"]
    raw = pd.DataFrame({"_file": "hukou/h.csv", "_sheet": "", "_row": range(2, 6), "id_number": ids,
                        "name": names, "hukou_household_id": "H1", "address_code": "620421100201",
                        "person_status": "正常"}).astype({"_row": "int64"})
    raw.loc[0, "hukou_household_id"] = "H\u03361"                           # not a name: kept, and so the row's key
    staged = STAGING["hukou"](raw, Policy())
    assert staged.cleaned == {"name": 4}
    assert staged.checked["name"].tolist() == ["张三", "李四", "王五", "赵六"]
    assert staged.checked["name_norm"].tolist() == ["张三", "李四", "王五", "赵六"]
    assert staged.checked["id_number"].tolist() == ids
    assert staged.checked["hukou_household_id"].tolist()[0] == "H\u03361"
