"""The 公示 list a village posts: written through the command line from confirmed decisions, printed."""

import re
import subprocess
from datetime import timedelta

import openpyxl
import pandas as pd

from jingzhun import cli, clock, labels
from jingzhun.policy import Policy, ReaderLimits
from jingzhun.publicity import mask_id
from jingzhun.review import HEADERS, write_review_workbook
from jingzhun.review_import import import_review

from helpers import office, publish_county, published_empty


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
    start = clock.today() + timedelta(days=1)  # tomorrow, whatever day the suite runs
    end = start + timedelta(days=6)
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(out), "--start", str(start)]) == 0
    assert f"公示期 {start} to {end}" in capsys.readouterr().out
    ws = openpyxl.load_workbook(out).active
    cells = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    titles = [c for c in cells if c.endswith("对象公示")]
    assert len(titles) == len(villages)
    assert all(re.fullmatch(f"{names[v[:9] + '000']}{names[v]} {start.year}年 动态调整(拟纳入/拟清退|拟纳入|拟清退)对象公示", t)
               for v, t in zip(villages, titles)), titles
    assert cells.count(f"公示期:{start.year}年{start.month}月{start.day}日至{end.year}年{end.month}月{end.day}日(共7天)") \
        == len(villages)
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
    published_empty(url)
    out = tmp_path / "公示.xlsx"
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(out)]) == 0
    assert "没有尚未公示的已确认对象" in capsys.readouterr().out and not out.exists()
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(tmp_path / "x.txt")]) == 2


def test_mask_id_shows_first_two_and_last_three():
    out = mask_id(pd.Series(["62042119800101123X", "abc"]), Policy())
    assert out.tolist() == ["62*************23X", "ab*"]
    assert mask_id(pd.Series(["62042119800101123X"]), Policy(publicity_show_first=4, publicity_show_last=1)).tolist() \
        == ["6204*************X"]


def _confirm(url, tmp_path, chosen) -> int:
    """Confirm, through a review workbook, the open flags ``chosen(row cells by header)`` picks; returns how many."""
    from jingzhun import warehouse

    engine = warehouse.connect(url)
    book = write_review_workbook(engine, tmp_path / f"review-{len(list(tmp_path.iterdir()))}.xlsx")
    wb = openpyxl.load_workbook(book)
    ws = wb["核实清单"]
    n = 0
    for row in range(2, ws.max_row + 1):
        cells = {h: ws.cell(row, i + 1).value for i, h in enumerate(HEADERS)}
        if chosen(cells):
            ws.cell(row, HEADERS.index("决定") + 1).value = "确认"
            n += 1
    wb.save(book)
    import_review(engine, book, reviewer="乡镇审核员")
    return n


def test_a_village_posts_its_exits_and_returns_to_poverty_in_plain_words_and_never_twice(county, frames, tmp_path,
                                                                                        capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    _, raised = publish_county(url, frames, county["landing"])
    both = raised.groupby("village_code")["direction"].agg(set)
    village = next(v for v, d in both.items() if {"exit", "revert", "remove"} <= d)
    name = labels.region_names(pd.Series([village]), labels.stored_regions(__import__("jingzhun.warehouse", fromlist=[
        "connect"]).connect(url).connect()), "village").iloc[0]
    confirmed = _confirm(url, tmp_path, lambda c: c["村"] == name and c["方向"] in ("退出", "返贫", "清退"))
    start = clock.today() + timedelta(days=1)
    out = tmp_path / "公示.xlsx"
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(out), "--start", str(start)]) == 0
    printed = capsys.readouterr().out
    assert "拟退出" in printed and "拟返贫" in printed and "拟清退" in printed
    ws = openpyxl.load_workbook(out).active
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    header = next(i for i, r in enumerate(rows) if r[0] == "序号")
    body = [r for r in rows[header + 1:] if isinstance(r[0], int)]
    assert {r[1] for r in body} == {"拟退出", "拟返贫", "拟清退"}
    reasons = "".join(r[5] for r in body)
    assert "达到退出标准" in reasons and "返贫" in reasons
    assert not any(title in reasons for title in ("有车(识别时已有)", "达到退出标准(", "因病返贫(")), reasons
    shared = pd.DataFrame({"mask": [r[4] for r in body], "person": [(r[2], r[3]) for r in body]}).groupby("mask")[
        "person"].nunique()
    widened = [m for m in shared.index if re.fullmatch(r"\d{6}\*{8}[\dX]{4}", m)]
    assert widened  # masks that read alike on the page were widened to the region code and the last four
    assert set(shared[shared > 1].index) <= set(widened)  # only numbers alike beyond that (birth date hidden) share one
    assert sum(1 for _ in body) <= confirmed
    _rendered(out, tmp_path)

    again = tmp_path / "again.xlsx"  # the next list carries only what was not yet posted: nothing
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(again), "--start", str(start)]) == 0
    assert "没有尚未公示的已确认对象" in capsys.readouterr().out and not again.exists()

    past = start - timedelta(days=2)
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(again), "--start", str(past)]) == 2
    assert "--reissue" in capsys.readouterr().err and not again.exists()
    assert cli.main(["flags", "publicity", "--warehouse", url, "--out", str(again), "--start", str(start),
                     "--reissue"]) == 0
    first = [[c.value for c in r] for r in openpyxl.load_workbook(out).active.iter_rows()]
    assert [[c.value for c in r] for r in openpyxl.load_workbook(again).active.iter_rows()] == first  # printed again


def _rendered(book, tmp_path) -> None:
    """The list as a village prints it: LibreOffice → PDF → PNG (looked at when the list changes)."""
    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(book)], check=True,
                   timeout=180, capture_output=True)
    pdf = tmp_path / (book.stem + ".pdf")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert boxes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)  # A4 portrait


def test_two_people_whose_masked_numbers_read_alike_on_one_page_show_more_of_their_ends():
    from jingzhun.publicity import distinct_masks

    a, b, c = "620421198001011007", "620422199505052007", "620421197001011234"
    numbers = pd.Series([a, b, a, c, b])
    pages = pd.Series(["v1", "v1", "v1", "v1", "v2"])
    out = distinct_masks(numbers, pages, Policy()).tolist()
    assert out[0] != out[1] and out[0] == out[2]          # the same person twice reads alike; two people do not
    assert out[0] == "62************1007" and out[1] == "62************2007"
    assert out[3] == "62*************234" and out[4] == "62*************007"  # alone on its page: the policy's mask
    assert all(n[6:14] not in m for n, m in zip(numbers, out))  # the birth date stays hidden
