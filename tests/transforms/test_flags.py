"""Each rule on a minimal case, and each exemption, on tiny inline registers passed through staging."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
import pytest
from helpers import valid_id

from jingzhun.catalogue import RULES
from jingzhun.engine import flags
from jingzhun.policy import Policy
from jingzhun.staging import STAGING

AS_OF = date(2026, 11, 22)
VILLAGE = "620421100201"


@dataclass
class Town:
    """A handful of people and their department records, built as raw text rows."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    n: int = 0

    def person_id(self, age: int, male: bool = True) -> str:
        self.n += 1
        born = date(AS_OF.year - age, AS_OF.month, AS_OF.day) - timedelta(days=30)
        return valid_id(f"620421{born:%Y%m%d}{(2 * self.n + male) % 1000:03d}")

    def household(self, ages=(45, 43), status: str | None = "未脱贫", income: float = 3000, identified: int = 2016,
                  clean: bool = True, water: str = "是", power: str = "是") -> "Hh":
        self.n += 1
        hid, kid = f"P{self.n:04d}", f"HK{self.n:04d}"
        hh = Hh(hid if status else "", kid, [])
        for i, age in enumerate(ages):
            pid = self.person_id(age, male=i != 1)
            name = f"成员{self.n}{i}"
            hh.ids.append(pid)
            self.add("hukou", 公民身份号码=pid, 姓名=name, 户号=kid, 户籍地址区划代码=VILLAGE, 人员状态="正常",
                     与户主关系="户主" if i == 0 else "之子")
            if status:
                self.add("poverty_register", 户编号=hid, 身份证号=pid, 姓名=name, 与户主关系="户主" if i == 0 else "之子",
                         村代码=VILLAGE, 贫困户状态=status, 识别年度=str(identified), 人均纯收入=str(income),
                         饮水安全=water, 通生活用电=power)
                if clean:
                    self.insure(pid)
                    if 6 <= age <= 15:
                        self.student(pid, "在读")
        if status and clean:
            self.appraisal(hh.ids[0], "B", days_ago=400)
        return hh

    def add(self, source: str, **cells) -> None:
        self.rows[source].append(cells)

    def insure(self, pid, year=AS_OF.year, status="参保"):
        self.add("medical_insurance", 身份证号=pid, 参保年度=str(year), 参保状态=status)

    def student(self, pid, status, reason="", days_ago=30):
        self.add("students", 身份证号=pid, 学籍状态=status, 辍学原因=reason, 状态日期=f"{AS_OF - timedelta(days=days_ago)}")

    def appraisal(self, head, grade, renovation="", days_ago=100):
        self.add("housing_safety", 户主身份证号=head, 鉴定等级=grade, 鉴定日期=f"{AS_OF - timedelta(days=days_ago)}", 改造状态=renovation)

    def vehicle(self, pid, vtype, first, status="正常"):
        self.add("vehicles", 所有人身份证号=pid, 号牌号码=f"甘D{self.n:05d}", 车辆类型=vtype, 初次登记日期=first, 机动车状态=status)
        self.n += 1

    def estate(self, pid, nature, usage="住宅", status="现势"):
        self.add("real_estate", 权利人证件号=pid, 用途=usage, 房屋性质=nature, 权属状态=status)

    def death(self, pid, when):
        self.add("deaths", 身份证号=pid, 死亡日期=str(when))

    def illness(self, pid, category, status, cost, year=AS_OF.year - 1):
        self.add("illness", 身份证号=pid, 疾病类别=category, 治疗状态=status, 年度=str(year), 年度自付费用=str(cost))

    def assistance(self, hh: "Hh", kind, klass, labor, income, status="在保"):
        for pid, cap in zip(hh.ids, labor):
            self.add("social_assistance", 身份证号=pid, 救助户号=f"MZ{hh.hukou}", 救助类别=kind, 低保类别=klass,
                     劳动能力=cap, 家庭人均年收入=str(income), 保障状态=status)

    def cadre(self, hh: "Hh", position, term="在任"):
        pid = self.person_id(40)
        self.add("hukou", 公民身份号码=pid, 姓名="干部", 户号=hh.hukou, 户籍地址区划代码=VILLAGE, 人员状态="正常")
        self.add("cadres", 身份证号=pid, 职务=position, 任职状态=term)

    def frames(self, without: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
        """Every source staged as a file with the full header (less ``drop``: "source.column"), ``without`` absent."""
        from jingzhun.contract import SOURCES, alias_index, header_key

        out = {}
        for name in SOURCES:
            if name in without:
                continue
            index = alias_index(SOURCES[name])
            raw = pd.DataFrame(self.rows.get(name, []), dtype="str").fillna("")
            raw.columns = [index[header_key(c)] for c in raw.columns]
            for col in SOURCES[name].columns:
                if col.name not in raw.columns and f"{name}.{col.name}" not in drop:
                    raw[col.name] = pd.Series([], dtype="str") if raw.empty else ""
            raw.insert(0, "_row", range(2, len(raw) + 2))
            raw.insert(0, "_sheet", "")
            raw.insert(0, "_file", f"{name}/t.csv")
            staged = STAGING[name](raw.astype({"_row": "int64"}), Policy())
            assert staged.quarantine.empty, staged.quarantine.to_dict("records")
            out[name] = staged.rows
        return out

    def flags(self, without: tuple[str, ...] = (), drop: tuple[str, ...] = (), policy: Policy | None = None):
        return flags(self.frames(without, drop), policy or Policy(), pd.Timestamp(AS_OF))


@dataclass
class Hh:
    register: str
    hukou: str
    ids: list[str]


def raised(town: Town, **kw) -> set[tuple[str, str, str]]:
    """(rule, household or hukou household, person) of every flag."""
    f, _ = town.flags(**kw)
    return {(r.rule_code, r.household_id or r.hukou_household_id, r.id_number) for r in f.itertuples()}


def only(town: Town, *expected, **kw) -> None:
    assert raised(town, **kw) == set(expected)


# ================================================================ removal
def test_rm_car_owned_when_identified():
    t = Town()
    hh = t.household(identified=2016)
    t.vehicle(hh.ids[1], "小型轿车", "2016-12-31", status="A")
    only(t, ("RM_CAR", hh.register, ""))


def test_rv_car_acquired_after_identification():
    t = Town()
    hh = t.household(identified=2016)
    t.vehicle(hh.ids[0], "K33", "2017-01-01")
    only(t, ("RV_CAR_ACQUIRED", hh.register, ""))


@pytest.mark.parametrize("vtype", ["三轮汽车", "N11", "二轮摩托车", "M22", "H51", "低速货车", "手扶拖拉机", "T11"])
def test_rm_car_exempt_vehicle_classes(vtype):
    t = Town()
    hh = t.household()
    t.vehicle(hh.ids[0], vtype, "2010-01-01")
    only(t)


@pytest.mark.parametrize("status", ["注销", "报废", "转出"])
def test_rm_car_exempt_scrapped_or_transferred(status):
    t = Town()
    t.vehicle(t.household().ids[0], "K33", "2010-01-01", status=status)
    only(t)


def test_rm_car_ignores_cars_outside_the_register():
    t = Town()
    t.vehicle(t.household(status=None).ids[0], "K33", "2010-01-01")
    only(t)


def test_rm_property_current_commercial_housing():
    t = Town()
    hh = t.household()
    t.estate(hh.ids[0], "商品房", "商业")
    only(t, ("RM_PROPERTY", hh.register, ""))


@pytest.mark.parametrize("nature", ["安置房", "公租房", "廉租房", "自建房", "经济适用住房", "房改房"])
def test_rm_property_exempt_natures(nature):
    t = Town()
    t.estate(t.household().ids[0], nature)
    only(t)


def test_rm_property_exempt_when_not_current_or_other_usage():
    t = Town()
    t.estate(t.household().ids[0], "商品房", status="注销")
    t.estate(t.household().ids[0], "商品房", usage="车库")
    only(t)


def test_rm_deceased_every_member_dead():
    t = Town()
    hh = t.household(ages=(80, 78), clean=False)
    t.death(hh.ids[0], AS_OF - timedelta(days=10))
    t.rows["hukou"][-1]["人员状态"] = "死亡"
    only(t, ("RM_DECEASED", hh.register, ""))


def test_rm_member_deceased_and_dead_member_raises_nothing_else():
    t = Town()
    hh = t.household(ages=(50, 48, 10), clean=False)
    t.insure(hh.ids[0]), t.insure(hh.ids[1]), t.appraisal(hh.ids[0], "B")
    t.death(hh.ids[2], AS_OF - timedelta(days=10))  # dead child: no insurance, no school record
    t.vehicle(hh.ids[2], "K33", "2010-01-01")
    only(t, ("RM_MEMBER_DECEASED", hh.register, hh.ids[2]))


def test_death_after_as_of_is_not_a_death():
    t = Town()
    hh = t.household()
    t.death(hh.ids[1], AS_OF + timedelta(days=1))
    only(t)


# ================================================================ addition
def dibao(t: Town, klass="一类", labor=("完全丧失劳动能力", "部分丧失劳动能力"), income=2800, status="在保") -> Hh:
    hh = t.household(ages=(70, 68), status=None)
    t.assistance(hh, "低保", klass, labor, income, status)
    return hh


def test_add_dibao():
    t = Town()
    hh = dibao(t, "二类", income=3500)
    only(t, ("ADD_DIBAO", hh.hukou, ""))


def test_add_dibao_exempt_member_able_to_work():
    t = Town()
    dibao(t, labor=("完全丧失劳动能力", "有劳动能力"))
    only(t)


@pytest.mark.parametrize("change", [{"income": 3501}, {"klass": "三类"}, {"status": "停保"}])
def test_add_dibao_needs_low_income_first_or_second_class_and_current(change):
    t = Town()
    dibao(t, **change)
    only(t)


def test_add_dibao_not_for_a_family_on_the_register():
    t = Town()
    hh = t.household(ages=(70, 68))
    t.assistance(hh, "低保", "一类", ("完全丧失劳动能力",) * 2, 2000)
    only(t)


def test_add_tekun():
    t = Town()
    hh = t.household(ages=(80,), status=None)
    t.assistance(hh, "特困人员", "", ("完全丧失劳动能力",), 1000)
    only(t, ("ADD_TEKUN", hh.hukou, ""))


def test_rv_add_cadre_instead_of_addition():
    t = Town()
    hh = dibao(t)
    t.cadre(hh, "村委会主任")
    only(t, ("RV_ADD_CADRE", hh.hukou, ""))


@pytest.mark.parametrize("position, term", [("委员", "在任"), ("文书", "离任")])
def test_cadre_not_blocking(position, term):
    t = Town()
    hh = dibao(t)
    t.cadre(hh, position, term)
    only(t, ("ADD_DIBAO", hh.hukou, ""))


# ================================================================ back to poverty and referral
def dropout(t: Town, age=12, reason="厌学", status="已脱贫", income=3200) -> Hh:
    hh = t.household(ages=(40, 38, age), status=status, income=income, clean=False)
    for pid in hh.ids:
        t.insure(pid)
    t.appraisal(hh.ids[0], "B")
    t.student(hh.ids[2], "在读", days_ago=400)
    t.student(hh.ids[2], "辍学", reason, days_ago=20)
    return hh


@pytest.mark.parametrize("age", [6, 15])
def test_revert_dropout_at_the_age_boundaries(age):
    t = Town()
    hh = dropout(t, age=age)
    only(t, ("REVERT_DROPOUT", hh.register, ""))


@pytest.mark.parametrize("age", [5, 16])
def test_no_dropout_flag_outside_compulsory_age(age):
    t = Town()
    dropout(t, age=age)
    only(t)


@pytest.mark.parametrize("reason", ["因病", "因残", "因智"])
def test_dropout_exempt_reasons(reason):
    t = Town()
    dropout(t, reason=reason)
    only(t)


def test_dropout_above_referral_income_is_referred():
    t = Town()
    hh = dropout(t, income=3501)
    only(t, ("REFER_EDUCATION", hh.register, ""))


def test_dropout_in_unexited_household_is_referred():
    t = Town()
    hh = dropout(t, status="未脱贫", income=2000)
    only(t, ("REFER_EDUCATION", hh.register, ""))


def test_back_at_school_after_a_dropout():
    t = Town()
    hh = dropout(t)
    t.student(hh.ids[2], "在读", days_ago=5)
    only(t)


def test_revert_housing_and_referral():
    t = Town()
    low = t.household(status="已脱贫", income=3000)
    t.appraisal(low.ids[0], "Ｃ级", "未改造")
    high = t.household(status="已脱贫", income=3600)
    t.appraisal(high.ids[0], "D")
    unexited = t.household(status="未脱贫", income=2000)
    t.appraisal(unexited.ids[0], "D", "改造中")
    only(t, ("REVERT_HOUSING", low.register, ""), ("REFER_HOUSING", high.register, ""),
         ("REFER_HOUSING", unexited.register, ""))


def test_housing_exemptions_renovated_or_superseded():
    t = Town()
    t.appraisal(t.household(status="已脱贫").ids[0], "C", "已改造")
    old = t.household(status="已脱贫")  # clean: B 400 days ago
    t.appraisal(old.ids[0], "D", days_ago=2000)
    only(t)


def test_revert_illness_serious_or_heavy_chronic():
    t = Town()
    serious = t.household(status="已脱贫")
    t.illness(serious.ids[0], "重大疾病", "治疗中", 100)
    chronic = t.household(status="已脱贫")
    t.illness(chronic.ids[0], "慢性病", "治疗中", 6000)
    t.illness(chronic.ids[1], "门诊慢特病", "治疗中", 4000)
    high = t.household(status="已脱贫", income=3600)
    t.illness(high.ids[0], "大病", "未治愈", 100)
    only(t, ("REVERT_ILLNESS", serious.register, ""), ("REVERT_ILLNESS", chronic.register, ""),
         ("REFER_HEALTH", high.register, ""))


def test_illness_exemptions():
    t = Town()
    t.illness(t.household(status="已脱贫").ids[0], "大病", "已治愈", 50000)
    t.illness(t.household(status="已脱贫").ids[0], "慢性病", "治疗中", 9999)
    old = t.household(status="已脱贫")
    t.illness(old.ids[0], "慢性病", "治疗中", 20000, year=AS_OF.year - 2)
    t.illness(old.ids[0], "慢性病", "治疗中", 100, year=AS_OF.year - 1)
    t.illness(t.household(status="未脱贫").ids[0], "大病", "治疗中", 100)  # no revert or refer when unexited
    only(t)


def test_refer_insurance():
    t = Town()
    hh = t.household(clean=False)
    t.insure(hh.ids[0], year=AS_OF.year - 1)
    t.insure(hh.ids[1], status="停保")
    only(t, ("REFER_INSURANCE", hh.register, hh.ids[0]), ("REFER_INSURANCE", hh.register, hh.ids[1]))


@pytest.mark.parametrize("age, flagged", [(5, False), (6, True), (15, True), (16, False)])
def test_rv_unenrolled_age_boundaries(age, flagged):
    t = Town()
    hh = t.household(ages=(40, 38, age), clean=False)
    for pid in hh.ids:
        t.insure(pid)
    expected = {("RV_UNENROLLED", hh.register, hh.ids[2])} if flagged else set()
    assert raised(t) == expected


def test_home_schooling_counts_as_enrolled():
    t = Town()
    hh = t.household(ages=(40, 38, 10), clean=False)
    for pid in hh.ids:
        t.insure(pid)
    t.student(hh.ids[2], "送教上门")
    only(t)


# ================================================================ exit
def test_exit_eligible():
    t = Town()
    hh = t.household(ages=(44, 42, 9), income=4001)
    only(t, ("EXIT_ELIGIBLE", hh.register, ""))


def test_exit_with_renovated_house():
    t = Town()
    hh = t.household(status="返贫", income=5000)
    t.appraisal(hh.ids[0], "D", "已改造", days_ago=10)
    only(t, ("EXIT_ELIGIBLE", hh.register, ""))


@pytest.mark.parametrize("block", ["income", "water", "power", "no_appraisal", "sick", "dropout_for_illness", "invalid_id"])
def test_exit_blocked(block):
    t = Town()
    hh = t.household(ages=(44, 42, 9), income=4000 if block == "income" else 6000, clean=block != "no_appraisal",
                     water="否" if block == "water" else "是", power="否" if block == "power" else "是")
    if block == "no_appraisal":
        for pid in hh.ids:
            t.insure(pid)
        t.student(hh.ids[2], "在读")
    if block == "sick":
        t.illness(hh.ids[1], "大病", "治疗中", 10)
    if block == "dropout_for_illness":
        t.student(hh.ids[2], "辍学", "因病", days_ago=1)
    expected = set()
    if block == "invalid_id":
        t.rows["poverty_register"][1]["身份证号"] = hh.ids[1][:17] + ("0" if hh.ids[1][17] != "0" else "1")
        expected = {("DQ_INVALID_ID", hh.register, t.rows["poverty_register"][1]["身份证号"])}
    assert raised(t) == expected


# ================================================================ data quality
def test_dq_invalid_id_raises_nothing_else():
    t = Town()
    hh = t.household(clean=True)
    bad = "6.20421198001011E+17"
    t.rows["poverty_register"][1]["身份证号"] = bad
    only(t, ("DQ_INVALID_ID", hh.register, bad))


def test_dq_not_in_hukou_and_name_mismatch():
    t = Town()
    hh = t.household(ages=(60, 58, 30))
    t.rows["hukou"][1]["姓名"] = "别人"
    del t.rows["hukou"][2]
    only(t, ("DQ_NAME_MISMATCH", hh.register, hh.ids[1]), ("DQ_NOT_IN_HUKOU", hh.register, hh.ids[2]))


def test_traditional_and_spaced_names_are_the_same_name():
    t = Town()
    t.household(ages=(60,))
    t.rows["hukou"][0]["姓名"] = "张伟"
    t.rows["poverty_register"][0]["姓名"] = "張 偉"
    only(t)


def test_dq_multi_household_flags_each_household():
    t = Town()
    a, b = t.household(), t.household(ages=(70,))
    t.add("poverty_register", **{**t.rows["poverty_register"][1], "户编号": b.register})
    only(t, ("DQ_MULTI_HOUSEHOLD", a.register, a.ids[1]), ("DQ_MULTI_HOUSEHOLD", b.register, a.ids[1]))


# ================================================================ not evaluated
def test_a_missing_source_evaluates_nothing_that_needs_it():
    t = Town()
    hh = t.household(identified=2016)
    t.vehicle(hh.ids[0], "K33", "2015-01-01")
    f, skipped = t.flags(without=("vehicles",))
    assert set(f["rule_code"]) <= {c for c in RULES if c not in skipped}
    assert set(skipped) == {c for c, r in RULES.items() if "vehicles" in r.needs} == {"RM_CAR", "RV_CAR_ACQUIRED"}
    assert "vehicles" in skipped["RM_CAR"]
    assert "DQ_INVALID_ID" not in skipped


def test_a_register_read_only_through_an_intermediate_model_holds_back_the_rule():
    """身份证号无效 and 住房不安全返贫 read hukou and deaths through the living members and heads: a night without
    hukou evaluates neither (they would resolve and raise again what hukou decides)."""
    from jingzhun.engine import rule_sources

    t = Town()
    t.household(identified=2016)
    f, skipped = t.flags(without=("hukou",))
    assert f.empty
    assert set(skipped) == {c for c, r in RULES.items() if "hukou" in rule_sources(r)} == set(RULES)
    assert {"DQ_INVALID_ID", "REVERT_HOUSING", "REFER_HOUSING"} <= set(skipped)
    assert "hukou" in skipped["DQ_INVALID_ID"]


def test_a_missing_optional_column_is_reported():
    t = Town()
    t.vehicle(t.household().ids[0], "K33", "2015-01-01")
    for row in t.rows["vehicles"]:
        row.pop("初次登记日期")
    f, skipped = t.flags(drop=("vehicles.first_registered",))
    assert "vehicles.first_registered" in skipped["RM_CAR"] and "RV_CAR_ACQUIRED" in skipped
    assert f.empty


def test_evidence_is_json_with_file_row_and_values():
    import json

    t = Town()
    hh = t.household(identified=2016)
    t.vehicle(hh.ids[0], "K33", "2015-01-01")
    f, _ = t.flags()
    evidence = json.loads(f.iloc[0]["evidence"])
    assert evidence["as_of"] == "2026-11-22"
    record = evidence["records"][0]
    assert record["source"] == "vehicles" and record["file"] == "vehicles/t.csv" and record["row"] == 2
    assert record["first_registered"] == "2015-01-01" and record["identified_year"] == "2016"
    assert "甘D" in f.iloc[0]["evidence_text"] and "识别年度2016" in f.iloc[0]["evidence_text"]


def test_evidence_text_is_chinese_words_with_names_as_compared():
    """A steward reads words, not source names or codes twice: a vehicle sent as a code reads with its name, a
    death names the register it was found in, an invalid number says why in Chinese; a name sent with a space or
    traditional characters reads as the registers compare it (the JSON keeps what was sent)."""
    import json
    import re

    t = Town()
    car = t.household(identified=2016)
    t.rows["poverty_register"][-2]["姓名"] = "袁 秀榮"
    t.vehicle(car.ids[0], "K33", "2015-01-01")
    dead = t.household(ages=(80,))
    t.death(dead.ids[0], AS_OF - timedelta(days=10))
    bad = t.household()
    t.rows["poverty_register"][-1]["身份证号"] = valid_id("62042119741331800")   # 13th month
    f, _ = t.flags()
    text = dict(zip(f["rule_code"], f["evidence_text"]))
    assert "袁秀荣名下车辆" in text["RM_CAR"] and "(小型轿车,K33,正常)" in text["RM_CAR"]
    assert json.loads(f.set_index("rule_code").loc["RM_CAR", "evidence"])["records"][0]["vehicle_type"] == "K33"
    assert "(死亡人员登记," in text["RM_DECEASED"]
    assert "身份证号中出生日期不存在" in text["DQ_INVALID_ID"]
    for rule, sentence in text.items():
        assert not re.search(r"[A-Za-z]{2,}", sentence), (rule, sentence)   # no English, no internal names


def test_every_flag_is_at_its_rules_grain(frames):
    """The catalogue's grain says what a flag is about: a register household, a person in it, or a
    public-security household not on the register."""
    f, _ = flags(frames, Policy(), pd.Timestamp(AS_OF))
    grain = f["rule_code"].map({code: r.grain for code, r in RULES.items()})
    household, person = f["household_id"].ne(""), f["id_number"].ne("")
    assert (household & ~person)[grain.eq("household")].all()
    assert (household & person)[grain.eq("person")].all()
    assert (~household & ~person & f["hukou_household_id"].ne(""))[grain.eq("hukou_household")].all()
    assert set(grain) == {"household", "person", "hukou_household"}
    assert all(r.title and r.grain in ("household", "person", "hukou_household") for r in RULES.values())
