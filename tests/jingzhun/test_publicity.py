"""The 公示 list a village posts: written through the command line from confirmed decisions, printed."""

import re
import subprocess

import openpyxl
import pandas as pd

from jingzhun import cli, labels
from jingzhun.policy import Policy, ReaderLimits
from jingzhun.publicity import mask_id
from jingzhun.review import HEADERS, write_review_workbook
from jingzhun.review_import import import_review

from helpers import office, publish_county


def _confirmed(county, frames, tmp_path, villages: int = 2):
    """A warehouse where a steward confirmed every add and remove flag of ``villages`` villages."""
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine, raised = publish_county(url, frames, county["landing"])
    names = labels.read_regions(labels.regions_files(county["landing"], None), ReaderLimits())
    chosen = sorted(raised.loc[raised["direction"].isin(["add", "remove"]), "village_code"].unique())[:villages]
    book = write_review_workbook(engine, tmp_path / "review.xlsx")
    wb = openpyxl.load_workbook(book)
    ws = wb["核实清单"]
    village_names = set(labels.region_names(pd.Series(chosen), names.set_index("code")["name"], "village"))
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, HEADERS.index("村") + 1).value in village_names \
                and ws.cell(row, HEADERS.index("方向") + 1).value in ("纳入", "清退"):
            ws.cell(row, HEADERS.index("决定") + 1).value = "确认"
    wb.save(book)
    import_review(engine, book, reviewer="村级核查员")
    return url, chosen, names.set_index("code")["name"]


def test_publicity_list_gives_each_village_a_posted_page(county, frames, tmp_path, capsys):
    url, villages, names = _confirmed(county, frames, tmp_path)
    out = tmp_path / "公示.xlsx"
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(out), "--start", "2026-12-01"]) == 0
    assert "公示期 2026-12-01 to 2026-12-07" in capsys.readouterr().out
    ws = openpyxl.load_workbook(out).active
    cells = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    titles = [c for c in cells if c.endswith("对象公示")]
    assert len(titles) == len(villages)
    assert all(re.fullmatch(f"{names[v[:9] + '000']}{names[v]} 2026年 动态调整(拟纳入/拟清退|拟纳入|拟清退)对象公示", t)
               for v, t in zip(villages, titles)), titles
    assert cells.count("公示期:2026年12月1日至2026年12月7日(共7天)") == len(villages)
    assert cells.count(Policy().publicity_contact) == len(villages)
    assert not any(re.search(r"[0-9]{17}[0-9X]", c) for c in cells)      # no identity number whole
    masked = [c for c in cells if re.fullmatch(r"[0-9]{2}\*{13}[0-9X]{3}", c)]
    assert masked and len(ws.row_breaks.brk) == len(villages) - 1
    assert int(ws.page_setup.paperSize) == 9 and ws.page_setup.fitToWidth == 1

    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(out)],
                   check=True, timeout=180, capture_output=True)
    pdf = (tmp_path / "公示.pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == len(villages)          # one printed page per village
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)   # A4 portrait


def test_nothing_confirmed_is_said_plainly_and_writes_nothing(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    out = tmp_path / "公示.xlsx"
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(out)]) == 0
    assert "没有已确认的拟纳入或拟清退对象" in capsys.readouterr().out and not out.exists()
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(tmp_path / "x.txt")]) == 2


def test_mask_id_shows_first_two_and_last_three():
    out = mask_id(pd.Series(["62042119800101123X", "abc"]), Policy())
    assert out.tolist() == ["62*************23X", "ab*"]
    assert mask_id(pd.Series(["62042119800101123X"]), Policy(publicity_show_first=4, publicity_show_last=1)).tolist() \
        == ["6204*************X"]
