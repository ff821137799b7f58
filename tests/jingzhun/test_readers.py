from datetime import datetime

import pandas as pd
import pytest

from jingzhun.contract import SOURCES
from jingzhun.policy import Policy
from jingzhun.readers import SourceFileError, read_file, read_source
from jingzhun.staging import stg_civil_affairs__social_assistance, stg_poverty_register

from helpers import write_xlsx

ASSIST = SOURCES["social_assistance"]
REGISTER = SOURCES["poverty_register"]
ASSIST_HEADER = ["姓名", "身份证号", "救助户号", "保障类别", "低保类别", "劳动能力", "家庭人均年收入", "批准日期", "状态"]


def assist_row(number: str, income: str = "3500元") -> list[str]:
    return ["张三", number, "MZ001", "低保", "一类", "完全丧失劳动能力", income, "2019年3月11日", "在保"]


def test_xlsx_with_title_rows_totals_row_and_a_notes_sheet(tmp_path, ids):
    path = write_xlsx(tmp_path / "低保.xlsx", {
        "说明": [["本表说明"], ["第二行说明"]],
        "花名册": [["某某县2019年农村低保对象花名册"], ["填报单位:民政局"], ASSIST_HEADER,
                   assist_row(ids[0]), assist_row(ids[1]), ["合计", "2户"]],
    }, merge_title=False)
    data, not_data, record = read_file(path, ASSIST)
    assert record.sheet == "花名册" and record.header_row == 3
    assert data["id_number"].tolist() == ids[:2]
    assert data["_row"].tolist() == [4, 5]
    assert not_data["_reason"].tolist() == ["合计行 (totals row)"]
    assert not_data["_row"].tolist() == [6]
    assert record.rows_read == 3 and record.rows_not_data == 1
    assert len(record.sha256) == 64 and record.size == path.stat().st_size


def test_merged_title_and_two_row_header(tmp_path, ids):
    header_top = ["权利人信息", "", "不动产信息", "", "", ""]
    header = ["权利人", "权利人证件号码", "用途", "房屋性质", "权属状态", "登记日期"]
    path = tmp_path / "estate.xlsx"
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["某县不动产登记信息"])
    ws.merge_cells("A1:F1")
    ws.append(header_top)
    ws.merge_cells("A2:B2")
    ws.merge_cells("C2:F2")
    ws.append(header)
    ws.append(["李四", ids[0], "住宅", "商品房", "现势", datetime(2019, 3, 11)])
    wb.save(path)
    data, _, record = read_file(path, SOURCES["real_estate"])
    assert record.header_row == 3
    assert data[["owner_id_number", "usage", "nature", "right_status", "registered"]].iloc[0].tolist() == \
        [ids[0], "住宅", "商品房", "现势", "2019-03-11"]  # an Excel date cell


def test_header_cell_only_in_the_upper_row_of_a_merged_header(tmp_path, ids):
    path = write_xlsx(tmp_path / "h.xlsx", {"S": [
        ["户主身份证号", "鉴定信息", ""],
        ["", "鉴定等级", "鉴定日期"],
        [ids[0], "C级", "20190311"],
    ]})
    data, _, _ = read_file(path, SOURCES["housing_safety"])
    assert data[["head_id_number", "grade", "appraised"]].iloc[0].tolist() == [ids[0], "C级", "20190311"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings(tmp_path, ids, encoding):
    path = tmp_path / "a.csv"
    lines = ["某某县农村低保对象花名册", ",".join(ASSIST_HEADER), ",".join(assist_row(ids[0], "3500元")), ""]
    path.write_text("\n".join(lines), encoding=encoding)
    data, not_data, record = read_file(path, ASSIST)
    assert record.encoding == ("gb18030" if encoding == "gb18030" else "utf-8-sig")
    assert data["name"].tolist() == ["张三"] and data["id_number"].tolist() == [ids[0]]
    assert data["_row"].tolist() == [3]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_header_alias_is_recognised(tmp_path, source):
    spec = SOURCES[source]
    widest = max(len(c.aliases) for c in spec.columns)
    for k in range(widest):
        # aliases shared by two columns of one source (状态) can only be told apart once: skip the repeat
        heads, expected = [], []
        for col in spec.columns:
            alias = col.aliases[k % len(col.aliases)] if col.aliases else col.name
            if alias in heads:
                continue
            heads.append(f" {alias} ".replace("号", "号") if k % 2 else alias)
            expected.append(col.name)
        path = tmp_path / f"{source}_{k}.csv"
        path.write_text(",".join(heads) + "\n" + ",".join("x" for _ in heads) + "\n", encoding="utf-8")
        data, _, record = read_file(path, spec)
        assert [c for c in data.columns if not c.startswith("_")] == expected, (source, k, heads)


def test_full_width_and_spaced_headers(tmp_path, ids):
    path = tmp_path / "a.csv"
    path.write_text("姓 名,身份证号,救助户号,保障类别,状态,ＸＹＺ\n张三,%s,MZ1,低保,在保,多余\n" % ids[0], encoding="utf-8")
    data, _, record = read_file(path, ASSIST)
    assert "name" in data.columns and "XYZ" not in record.columns
    assert "ＸＹＺ" in data.columns  # unknown extra column kept with its header


def test_numeric_identity_cell_is_marked_mangled(tmp_path, ids):
    path = write_xlsx(tmp_path / "r.xlsx", {"S": [
        ["户编号", "身份证号", "姓名", "村代码", "贫困户状态", "人均纯收入"],
        ["H1", float(ids[1]), "王五", 620421100201, "未脱贫", 3000],
        ["H1", ids[2], "王六", "620421100201", "未脱贫", 3000],
    ]})
    data, _, _ = read_file(path, REGISTER)
    staged = stg_poverty_register(data, Policy())
    assert staged.rows["id_number_valid"].tolist() == [False, True]
    assert staged.rows["id_number_problem"].tolist() == ["excel", ""]
    assert staged.rows["village_code"].tolist() == ["620421100201", "620421100201"]
    assert staged.quarantine.empty  # register rows with invalid numbers stay: they raise DQ_INVALID_ID


def test_truncated_xlsx_is_a_clear_error(tmp_path, ids):
    good = write_xlsx(tmp_path / "good.xlsx", {"S": [ASSIST_HEADER, assist_row(ids[0])]})
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:400])
    with pytest.raises(SourceFileError, match="broken.xlsx: .*not a readable Excel workbook"):
        read_file(broken, ASSIST)


def test_unknown_encoding_is_a_clear_error(tmp_path, ids):
    path = tmp_path / "utf16.csv"
    path.write_text(",".join(ASSIST_HEADER) + "\n" + ",".join(assist_row(ids[0])), encoding="utf-16")
    with pytest.raises(SourceFileError, match="utf16.csv: 无法识别的文件编码.*unknown encoding"):
        read_file(path, ASSIST)


def test_missing_required_column_names_file_and_column(tmp_path, ids):
    path = tmp_path / "nostatus.csv"
    path.write_text("姓名,身份证号,救助户号,保障类别\n张三,%s,MZ1,低保\n" % ids[0], encoding="utf-8")
    with pytest.raises(SourceFileError) as err:
        read_file(path, ASSIST)
    assert err.value.column == "assistance_status"
    assert "nostatus.csv" in str(err.value) and "assistance_status" in str(err.value) and "保障状态" in str(err.value)


def test_read_source_concatenates_files_and_records_a_bad_one(tmp_path, ids):
    folder = tmp_path / "social_assistance"
    folder.mkdir()
    (folder / "a.csv").write_text(",".join(ASSIST_HEADER) + "\n" + ",".join(assist_row(ids[0])) + "\n", encoding="utf-8")
    write_xlsx(folder / "b.xlsx", {"S": [ASSIST_HEADER, assist_row(ids[1])]})
    (folder / "c.csv").write_text("姓名\n张三\n", encoding="utf-8")
    data, _, records = read_source(tmp_path, ASSIST)
    assert sorted(data["id_number"]) == sorted(ids[:2])
    assert [bool(r.error) for r in records] == [False, False, True]
    assert "social_assistance/c.csv" in records[2].error


def test_missing_source_folder_reads_as_nothing(tmp_path):
    data, not_data, records = read_source(tmp_path, ASSIST)
    assert data.empty and not_data.empty and records == []


def test_staging_casts_dates_money_and_quarantines_unreadable_rows(tmp_path, ids):
    path = tmp_path / "a.csv"
    rows = [",".join(ASSIST_HEADER), ",".join(assist_row(ids[0], '"3,500.00"')),
            ",".join(assist_row(ids[1], "三千五")), ",".join(assist_row(ids[2]))[:-2] + "未知",
            ",".join(assist_row("6.20421198001011E+17"))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data, _, _ = read_file(path, ASSIST)
    staged = stg_civil_affairs__social_assistance(data, Policy())
    assert staged.rows["id_number"].tolist() == [ids[0]]
    assert staged.rows["income_per_capita"].tolist() == [3500.0]
    assert staged.rows["start_date"].tolist() == [pd.Timestamp("2019-03-11")]
    q = staged.quarantine.set_index("row")
    assert list(q.index) == [3, 4, 5]
    assert "income_per_capita" in q.loc[3, "reason"]
    assert "assistance_status" in q.loc[4, "reason"]
    assert "Excel" in q.loc[5, "reason"]
    assert '"三千五"' in q.loc[3, "raw"]  # the raw values, as sent


def test_blank_and_totals_rows_are_set_aside_with_full_width_spaces_too():
    from jingzhun.readers import _split_non_data

    frame = pd.DataFrame({"_file": "f.csv", "_sheet": "", "_row": [2, 3, 4, 5, 6],
                          "a": ["合\u3000计", "张三", "\u3000 ", " 小 计 ", "3"], "b": ["", "1", "", "", "总计"]})
    data, not_data = _split_non_data(frame)
    assert data["_row"].tolist() == [3]
    assert not_data.set_index("_row")["_reason"].to_dict() == {2: "合计行 (totals row)", 4: "空行 (blank row)",
                                                                5: "合计行 (totals row)", 6: "合计行 (totals row)"}


def test_a_source_folder_that_is_a_link_outside_the_landing_folder_is_refused_unread(tmp_path, ids):
    landing, outside = tmp_path / "landing", tmp_path / "elsewhere"
    (landing / "poverty_register").mkdir(parents=True)
    outside.mkdir()
    (outside / "低保.csv").write_text(",".join(ASSIST_HEADER) + "\n" + ",".join(assist_row(ids[0])) + "\n", encoding="utf-8")
    (landing / "social_assistance").symlink_to(outside, target_is_directory=True)
    (landing / "poverty_register" / "r.csv").write_text("户编号,证件号码,姓名,行政区划代码,贫困户状态,人均纯收入\n"
                                                       "P1,%s,张三,620421100201,未脱贫,3000\n"
                                                       % ids[1], encoding="utf-8")
    data, _, records = read_source(landing, ASSIST)
    assert data.empty and [r.file for r in records] == ["social_assistance/"]
    assert "refused: the source folder is a symbolic link leading outside the landing folder" in records[0].error
    assert records[0].sha256 == "" and records[0].rows_read == 0
    from jingzhun.steps import extract_source
    extracted = extract_source.fn(str(landing), "social_assistance", str(tmp_path / "run"))
    assert extracted.status == "failed" and "social_assistance/" in extracted.message
    assert extracted.files[0]["file"] == "social_assistance/"
    register, _, records = read_source(landing, REGISTER)                  # the other sources are read as before
    assert register["id_number"].tolist() == [ids[1]] and not records[0].error


def test_a_broken_source_folder_link_is_refused_and_one_inside_the_landing_folder_is_read(tmp_path, ids):
    landing = tmp_path / "landing"
    (landing / "archive" / "assist").mkdir(parents=True)
    (landing / "social_assistance").symlink_to(tmp_path / "gone", target_is_directory=True)
    assert "refused" in read_source(landing, ASSIST)[2][0].error
    (landing / "social_assistance").unlink()
    (landing / "archive" / "assist" / "a.csv").write_text(",".join(ASSIST_HEADER) + "\n" + ",".join(assist_row(ids[0]))
                                                        + "\n", encoding="utf-8")
    (landing / "social_assistance").symlink_to(landing / "archive" / "assist", target_is_directory=True)
    data, _, records = read_source(landing, ASSIST)
    assert data["id_number"].tolist() == [ids[0]] and not records[0].error
