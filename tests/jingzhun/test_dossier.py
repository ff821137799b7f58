"""The household dossier a steward prints before a home visit, through the command line, on a real warehouse."""

import re
import subprocess

import openpyxl

from jingzhun import cli, warehouse
from jingzhun.review import HEADERS, write_review_workbook
from jingzhun.review_import import import_review

from helpers import office, publish_county, published_empty


def _sheet(path, name) -> list[list]:
    return [list(r) for r in openpyxl.load_workbook(path)[name].iter_rows(values_only=True)]


def test_the_dossier_gathers_every_department_and_the_flags_with_their_decisions(county, frames, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    engine, raised = publish_county(url, frames, county["landing"])
    car = raised[raised["rule_code"].eq("RM_CAR")].iloc[0]
    book = write_review_workbook(engine, tmp_path / "review.xlsx")
    wb = openpyxl.load_workbook(book)
    ws = wb["核实清单"]
    key = warehouse.flag_keys(raised.loc[[car.name]]).iloc[0]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, HEADERS.index("标识") + 1).value == key)
    ws.cell(row, HEADERS.index("决定") + 1).value, ws.cell(row, HEADERS.index("备注") + 1).value = "驳回", "车辆已过户"
    wb.save(book)
    import_review(engine, book, reviewer="孙核查")

    out = tmp_path / "dossier.xlsx"
    assert cli.main(["household", car["household_id"], "--warehouse", url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    register = frames["poverty_register"]
    ids = set(register.loc[register["household_id"].eq(car["household_id"]), "id_number"])
    hukou = frames["hukou"]
    ids |= set(hukou.loc[hukou["hukou_household_id"].isin(hukou.loc[hukou["id_number"].isin(ids),
                                                                     "hukou_household_id"]), "id_number"])
    people = _sheet(out, "家庭成员")
    listed = {r[2] for r in people[3:]}
    assert listed == ids and f"{len(ids)} members" in printed and car["household_id"] not in printed
    assert "入户核实资料" in people[0][0] and car["household_id"] in people[1][0]
    history = _sheet(out, "标记与决定")
    car_row = next(r for r in history[2:] if r[0] == "有车(识别时已有)")
    assert car_row[2] == "驳回" and "孙核查 驳回:车辆已过户" in car_row[-1]
    vehicles = _sheet(out, "机动车登记")
    owners = {r[0] for r in vehicles[2:]}
    assert owners <= ids and owners                                     # the car's owner, a member

    by_member = tmp_path / "by_member.xlsx"
    member = sorted(ids)[-1]
    assert cli.main(["household", member, "--warehouse", url, "--out", str(by_member)]) == 0
    assert {r[2] for r in _sheet(by_member, "家庭成员")[3:]} == ids     # any member's number finds the family

    subprocess.run([office(), "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(out)],
                   check=True, timeout=180, capture_output=True)
    pdf = (tmp_path / "dossier.pdf").read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert boxes and all(abs(float(w) - 841.9) < 1 and abs(float(h) - 595.3) < 1 for w, h in boxes)


def test_an_unknown_number_is_refused_without_repeating_it(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    published_empty(url)
    assert cli.main(["household", "620421199001011234", "--warehouse", url, "--out", str(tmp_path / "d.xlsx")]) == 2
    err = capsys.readouterr().err
    assert "没有这个户编号、户号或身份证号" in err and "620421199001011234" not in err
    assert not (tmp_path / "d.xlsx").exists()
