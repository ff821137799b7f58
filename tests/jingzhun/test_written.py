"""Files a person reads appear whole or not at all (jingzhun.written): a full disk leaves no truncated workbook
and says so in one line; an export written over an older one that others could read is owner-only."""

from __future__ import annotations

import os
import stat

import openpyxl
import pandas as pd
import pytest

from helpers import small_disk
from jingzhun.exports import write_table
from jingzhun.storage import DiskFull
from jingzhun.written import save_workbook

FRAME = pd.DataFrame({"rule_code": ["RM_CAR"] * 2000,  # about 800 KB that no compression makes fit in 64 KiB
                      "evidence_text": [os.urandom(200).hex() for _ in range(2000)]})


@pytest.mark.parametrize("name", ["flags.xlsx", "flags.csv"])
def test_a_full_disk_leaves_no_part_of_an_export_and_says_so(tmp_path, name):
    with small_disk(tmp_path / "disk", "64k") as disk:
        with pytest.raises(DiskFull, match=f"{name}: 磁盘空间已满"):
            write_table(FRAME, disk / name)
        assert list(disk.iterdir()) == []


def test_a_complete_workbook_replaces_the_old_one_owner_only(tmp_path):
    old = tmp_path / "review.xlsx"
    old.write_bytes(b"an older list")
    os.chmod(old, 0o644)  # written before, readable by others
    before = os.umask(0o077)
    try:
        wb = openpyxl.Workbook()
        wb.active["A1"] = "新的"
        save_workbook(wb, old)
    finally:
        os.umask(before)
    assert openpyxl.load_workbook(old).active["A1"].value == "新的"
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and [p.name for p in tmp_path.iterdir()] == ["review.xlsx"]
