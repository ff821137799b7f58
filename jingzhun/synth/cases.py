"""Planted cases: small households built on purpose, each with the flags it must raise.

Every case builds fresh households (so cases never interact), gives them the
clean records of the background (insured, enrolled, a safe house), changes
exactly what the case is about, and records its expected flags. The expected
flags come from reading ``rules.md``, never from running the rule code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from jingzhun.normalise import check_digits
from jingzhun.synth.population import COUNTY, SURNAMES, births_at_age, random_names


@dataclass
class Person:
    id_number: str
    name: str
    age: int
    relation: str
    sex: str
    birth: date


@dataclass
class Household:
    hukou_household_id: str
    village_code: str
    members: list[Person]
    household_id: str = ""          # register household id, empty when not on the register
    income: float = 0.0

    @property
    def head(self) -> Person:
        return self.members[0]


@dataclass
class Builder:
    rng: np.random.Generator
    as_of: date
    villages: np.ndarray
    rows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    expected: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    case: str = ""
    county: str = COUNTY
    _seq: dict = field(default_factory=lambda: defaultdict(int))
    _n: int = 0

    # ------------------------------------------------------------ people and households
    def person(self, age: int, relation: str, sex: str, surname: str) -> Person:
        birth = births_at_age(self.rng, self.as_of, np.array([age])).iloc[0].date()
        ymd = birth.strftime("%Y%m%d")
        male = sex == "男"
        key = (ymd, male)
        n = self._seq[key]
        self._seq[key] += 1
        seq = 800 + (2 * n + int(male)) % 200
        body = f"{self.county}{ymd}{seq:03d}"
        number = body + check_digits(pd.Series([body])).iloc[0]
        name = random_names(self.rng, np.array([surname]))[0]
        return Person(number, name, age, relation, sex, birth)

    def household(self, ages: tuple[int, ...] = (45, 43), *, register: str | None = "未脱贫", income: float = 3000,
                  identified: int = 2016, safe_water: str = "是", electricity: str = "是",
                  clean: bool = True) -> Household:
        """A hukou household (and register household when ``register`` is a status), with clean records."""
        self._n += 1
        surname = self.rng.choice(SURNAMES)
        relations = ["户主", "配偶"] + ["之子" if i % 2 else "之女" for i in range(len(ages) - 2)]
        sexes = ["男", "女"] + ["男" if i % 2 else "女" for i in range(len(ages) - 2)]
        members = [self.person(a, r, s, surname) for a, r, s in zip(ages, relations, sexes)]
        village = str(self.rng.choice(self.villages))
        hh = Household(f"{self.county}9{self._n:08d}", village, members, income=income)
        for p in members:
            self.add("hukou", id_number=p.id_number, name=p.name, sex=p.sex, birth_date=p.birth,
                     hukou_household_id=hh.hukou_household_id, relation=p.relation, address_code=village,
                     person_status="正常", status_date=None)
        if register:
            hh.household_id = f"P{village}9{self._n:04d}"
            exited = register in ("已脱贫", "标注脱贫")
            for p in members:
                self.add("poverty_register", household_id=hh.household_id, id_number=p.id_number, name=p.name,
                         relation=p.relation, village_code=village, household_type="一般贫困户", status=register,
                         identified_year=identified, exit_year=min(identified + 2, 2020) if exited else None,
                         household_size=len(members), income_per_capita=income, labor="普通劳动力", health="健康",
                         safe_water=safe_water, electricity=electricity)
            if clean:
                self.clean_records(hh)
        return hh

    def clean_records(self, hh: Household, *, skip: tuple[str, ...] = ()) -> None:
        """What the background gives every register household: insurance, school, a safe house."""
        for p in hh.members:
            if p.id_number not in skip:
                self.insure(p)
                if 6 <= p.age <= 15:
                    self.student(p, "在读")
        self.appraisal(hh.head, "B", days_ago=400)

    # ------------------------------------------------------------ records
    def add(self, table: str, **row) -> None:
        self.rows[table].append(row)

    def insure(self, p: Person, year: int | None = None, status: str = "参保") -> None:
        self.add("medical_insurance", id_number=p.id_number, name=p.name, insured_year=year or self.as_of.year,
                 insured_status=status, scheme="城乡居民基本医疗保险")

    def student(self, p: Person, status: str, reason: str = "", days_ago: int = 60) -> None:
        self.add("students", id_number=p.id_number, name=p.name, school="靖远县第三小学", stage="小学", grade="",
                 enrollment_status=status, dropout_reason=reason, status_date=self.as_of - timedelta(days=days_ago))

    def appraisal(self, p: Person, grade: str, renovation: str = "", days_ago: int = 300) -> None:
        self.add("housing_safety", head_id_number=p.id_number, head_name=p.name, grade=grade,
                 appraised=self.as_of - timedelta(days=days_ago), renovation=renovation,
                 renovated=None, floor_area_m2=80)

    def vehicle(self, p: Person, vtype: str, first: date, status: str = "正常") -> None:
        self.add("vehicles", owner_id_number=p.id_number, owner_name=p.name,
                 plate=f"甘D{self.rng.integers(10000, 99999)}", vehicle_type=vtype, usage="非营运",
                 first_registered=first, vehicle_status=status)

    def estate(self, p: Person, nature: str, usage: str = "住宅", status: str = "现势") -> None:
        self.add("real_estate", owner_id_number=p.id_number, owner_name=p.name, unit_id="", location="兰州市城关区",
                 location_code="620102001001", usage=usage, nature=nature, area_m2=90, registered=date(2018, 5, 1),
                 right_status=status)

    def death(self, p: Person, when: date) -> None:
        self.add("deaths", id_number=p.id_number, name=p.name, death_date=when, record_source="火化")

    def illness(self, p: Person, category: str, status: str, cost: float, year: int | None = None) -> None:
        self.add("illness", id_number=p.id_number, name=p.name, category=category, disease="慢性肾病",
                 diagnosed=date(2020, 3, 1), treatment_status=status, year=year or self.as_of.year - 1,
                 out_of_pocket=cost)

    def assistance(self, people: list[Person], kind: str, klass: str, labor: list[str], income: float,
                   status: str = "在保") -> None:
        aid = f"MZ{self.rng.integers(10**8, 10**9)}"
        for p, cap in zip(people, labor):
            self.add("social_assistance", id_number=p.id_number, name=p.name, assistance_household_id=aid,
                     assistance_type=kind, dibao_class=klass, labor_capacity=cap, income_per_capita=income,
                     start_date=date(2022, 1, 1), end_date=None if status == "在保" else date(2025, 12, 31),
                     assistance_status=status)

    def cadre(self, hh: Household, position: str, term: str = "在任") -> Person:
        p = self.person(40, "之子", "男", hh.head.name[0])
        hh.members.append(p)
        self.add("hukou", id_number=p.id_number, name=p.name, sex="男", birth_date=p.birth,
                 hukou_household_id=hh.hukou_household_id, relation="之子", address_code=hh.village_code,
                 person_status="正常", status_date=None)
        self.add("cadres", id_number=p.id_number, name=p.name, position=position, term_status=term,
                 village_code=hh.village_code)
        return p

    # ------------------------------------------------------------ expectations
    def expect(self, rule: str, direction: str, hh: Household, person: Person | str | None = None) -> None:
        number = person.id_number if isinstance(person, Person) else (person or "")
        self.expected.append({"rule_code": rule, "direction": direction, "household_id": hh.household_id,
                              "hukou_household_id": hh.hukou_household_id, "id_number": number,
                              "village_code": hh.village_code, "case": self.case})


    def expect_quarantine(self, source: str, value: str, reason: str) -> None:
        """A row of ``source`` the staging must quarantine, found by the (raw) value planted in it."""
        self.quarantined.append({"source": source, "value": value, "reason": reason, "case": self.case})


CASES: dict[str, Callable[[Builder], None]] = {}


def case(fn: Callable[[Builder], None]) -> Callable[[Builder], None]:
    CASES[fn.__name__] = fn
    return fn


def _year_end(year: int) -> date:
    return date(year, 12, 31)


# ================================================================ removal
@case
def rm_car_code(b: Builder) -> None:
    hh = b.household(identified=2016)
    b.vehicle(hh.head, "K33", date(2015, 6, 1))
    b.expect("RM_CAR", "remove", hh)


@case
def rm_car_name_on_identification_year_end(b: Builder) -> None:
    hh = b.household(identified=2016)
    b.vehicle(hh.members[1], "小型轿车", _year_end(2016), status="A")
    b.expect("RM_CAR", "remove", hh)


@case
def rm_car_truck_exited(b: Builder) -> None:
    hh = b.household(register="已脱贫", income=9000, identified=2015)
    b.vehicle(hh.head, "轻型普通货车", date(2014, 3, 9))
    b.expect("RM_CAR", "remove", hh)


@case
def rv_car_acquired(b: Builder) -> None:
    hh = b.household(identified=2016)
    b.vehicle(hh.head, "K33", date(2017, 1, 1))
    b.expect("RV_CAR_ACQUIRED", "review", hh)


@case
def exempt_vehicle_classes(b: Builder) -> None:
    for vtype in ("N11", "三轮汽车", "M21", "二轮摩托车", "手扶拖拉机", "T11", "H51", "低速货车"):
        hh = b.household(identified=2017)
        b.vehicle(hh.head, vtype, date(2015, 5, 5))


@case
def exempt_car_gone(b: Builder) -> None:
    for status in ("注销", "报废", "转出", "E"):
        hh = b.household(identified=2017)
        b.vehicle(hh.head, "K33", date(2015, 5, 5), status=status)


@case
def dead_member_owning_car(b: Builder) -> None:
    hh = b.household(ages=(70, 66, 40))
    dead = hh.members[0]
    b.vehicle(dead, "K33", date(2010, 1, 1))
    b.death(dead, b.as_of - timedelta(days=100))
    b.expect("RM_MEMBER_DECEASED", "remove", hh, dead)


@case
def rm_property(b: Builder) -> None:
    for usage in ("住宅", "商业", "办公"):
        hh = b.household(register="未脱贫")
        b.estate(hh.members[1], "商品房", usage)
        b.expect("RM_PROPERTY", "remove", hh)


@case
def exempt_property(b: Builder) -> None:
    for nature in ("安置房", "公租房", "廉租房", "自建房", "经济适用住房", "房改房"):
        hh = b.household()
        b.estate(hh.head, nature)
    hh = b.household()
    b.estate(hh.head, "商品房", status="注销")
    hh = b.household()
    b.estate(hh.head, "商品房", usage="车库")


@case
def rm_deceased(b: Builder) -> None:
    hh = b.household(ages=(82, 80), register="已脱贫", income=6000, clean=False)
    b.death(hh.members[0], b.as_of - timedelta(days=300))
    b.rows["hukou"][-1].update(person_status="死亡", status_date=b.as_of - timedelta(days=20))
    b.expect("RM_DECEASED", "remove", hh)
    single = b.household(ages=(88,), clean=False)
    b.death(single.head, b.as_of - timedelta(days=5))
    b.expect("RM_DECEASED", "remove", single)


@case
def rm_member_deceased(b: Builder) -> None:
    hh = b.household(ages=(75, 72, 45), clean=False)
    b.clean_records(hh, skip=(hh.members[1].id_number,))
    b.death(hh.members[1], b.as_of - timedelta(days=40))
    b.expect("RM_MEMBER_DECEASED", "remove", hh, hh.members[1])
    hh = b.household(ages=(50, 48, 12), clean=False)
    b.clean_records(hh, skip=(hh.members[2].id_number,))  # a dead child: neither uninsured nor unenrolled
    b.rows["hukou"][-1].update(person_status="死亡", status_date=b.as_of - timedelta(days=200))
    b.expect("RM_MEMBER_DECEASED", "remove", hh, hh.members[2])


@case
def death_after_as_of(b: Builder) -> None:
    hh = b.household(ages=(66, 60))
    b.death(hh.members[1], b.as_of + timedelta(days=10))


# ================================================================ addition
def _family_on_dibao(b: Builder, klass: str = "一类", labor=("完全丧失劳动能力", "部分丧失劳动能力"),
                     income: float = 2800, status: str = "在保") -> Household:
    hh = b.household(ages=(70, 67), register=None)
    b.assistance(hh.members, "低保", klass, list(labor), income, status)
    return hh


@case
def add_dibao(b: Builder) -> None:
    b.expect("ADD_DIBAO", "add", _family_on_dibao(b))
    b.expect("ADD_DIBAO", "add", _family_on_dibao(b, "二类", ("部分丧失劳动能力", "部分丧失劳动能力"), 3500))
    b.expect("ADD_DIBAO", "add", _family_on_dibao(b, "A类"))


@case
def add_dibao_exemptions(b: Builder) -> None:
    _family_on_dibao(b, labor=("完全丧失劳动能力", "有劳动能力"))
    _family_on_dibao(b, income=3600)
    _family_on_dibao(b, klass="三类")
    _family_on_dibao(b, status="停保")
    on_register = b.household(ages=(71, 69), register="未脱贫")
    b.assistance(on_register.members, "低保", "一类", ["完全丧失劳动能力"] * 2, 2500)


@case
def add_tekun(b: Builder) -> None:
    hh = b.household(ages=(79,), register=None)
    b.assistance(hh.members, "特困人员", "", ["完全丧失劳动能力"], 1500)
    b.expect("ADD_TEKUN", "add", hh)
    stopped = b.household(ages=(80,), register=None)
    b.assistance(stopped.members, "特困供养", "", ["完全丧失劳动能力"], 1500, status="退出")


@case
def rv_add_cadre(b: Builder) -> None:
    hh = _family_on_dibao(b)
    b.cadre(hh, "文书")
    b.expect("RV_ADD_CADRE", "review", hh)
    hh = b.household(ages=(77,), register=None)
    b.assistance(hh.members, "特困供养", "", ["完全丧失劳动能力"], 1500)
    b.cadre(hh, "村委会主任")
    b.expect("RV_ADD_CADRE", "review", hh)


@case
def cadre_not_blocking(b: Builder) -> None:
    hh = _family_on_dibao(b)
    b.cadre(hh, "村党支部书记", term="离任")
    b.expect("ADD_DIBAO", "add", hh)
    hh = _family_on_dibao(b)
    b.cadre(hh, "委员")
    b.expect("ADD_DIBAO", "add", hh)


# ================================================================ back to poverty and referral
@case
def revert_dropout(b: Builder) -> None:
    for age, reason in ((12, "厌学"), (6, "因贫"), (15, "外出务工")):
        hh = b.household(ages=(40, 38, age), register="已脱贫", income=3200, clean=False)
        kid = hh.members[2]
        b.clean_records(hh, skip=(kid.id_number,))
        b.insure(kid)
        b.student(kid, "在读", days_ago=500)
        b.student(kid, "辍学", reason, days_ago=30)
        b.expect("REVERT_DROPOUT", "revert", hh)


def _dropout_household(b: Builder, *, age: int = 11, reason: str = "厌学", register: str = "已脱贫",
                       income: float = 3200) -> Household:
    hh = b.household(ages=(41, 39, age), register=register, income=income, clean=False)
    kid = hh.members[2]
    b.clean_records(hh, skip=(kid.id_number,))
    b.insure(kid)
    b.student(kid, "辍学", reason)
    return hh


@case
def dropout_exemptions(b: Builder) -> None:
    for reason in ("因病", "因残", "因智"):
        _dropout_household(b, reason=reason)
    _dropout_household(b, age=16)
    _dropout_household(b, age=5)
    back = b.household(ages=(42, 40, 13), register="已脱贫", income=3100, clean=False)
    b.clean_records(back, skip=(back.members[2].id_number,))
    b.insure(back.members[2])
    b.student(back.members[2], "辍学", "厌学", days_ago=400)
    b.student(back.members[2], "在读", days_ago=30)
    _dropout_household(b, reason="因病", register="未脱贫", income=5000)  # blocks exit, refers nothing


@case
def refer_education(b: Builder) -> None:
    b.expect("REFER_EDUCATION", "refer", _dropout_household(b, income=3800))
    b.expect("REFER_EDUCATION", "refer", _dropout_household(b, register="未脱贫", income=2500))


def _house_household(b: Builder, grade: str, renovation: str = "未改造", *, register: str = "已脱贫",
                     income: float = 3000) -> Household:
    hh = b.household(register=register, income=income)
    b.appraisal(hh.head, grade, renovation, days_ago=100)
    return hh


@case
def revert_housing(b: Builder) -> None:
    b.expect("REVERT_HOUSING", "revert", _house_household(b, "C"))
    b.expect("REVERT_HOUSING", "revert", _house_household(b, "D级", "改造中"))


@case
def housing_exemptions(b: Builder) -> None:
    _house_household(b, "C", "已改造")
    hh = b.household(register="已脱贫", income=3000, clean=False)
    b.clean_records(hh)  # gives a B appraisal 400 days ago
    b.appraisal(hh.head, "D", "未改造", days_ago=2000)
    b.expect("REFER_HOUSING", "refer", _house_household(b, "C", income=3900))
    b.expect("REFER_HOUSING", "refer", _house_household(b, "D", register="未脱贫", income=2500))


@case
def revert_illness(b: Builder) -> None:
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[1], "重大疾病", "治疗中", 8000)
    b.expect("REVERT_ILLNESS", "revert", hh)
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[0], "慢性病", "治疗中", 12000)
    b.expect("REVERT_ILLNESS", "revert", hh)
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[0], "门诊慢特病", "治疗中", 6000)
    b.illness(hh.members[1], "慢性病", "治疗中", 4000)
    b.expect("REVERT_ILLNESS", "revert", hh)


@case
def illness_exemptions(b: Builder) -> None:
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[0], "大病", "已治愈", 30000)
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[0], "慢性病", "治疗中", 8000)
    hh = b.household(register="已脱贫", income=3000)
    b.illness(hh.members[0], "慢性病", "治疗中", 15000, year=b.as_of.year - 2)
    b.illness(hh.members[0], "慢性病", "治疗中", 2000, year=b.as_of.year - 1)
    hh = b.household(register="已脱贫", income=4200)
    b.illness(hh.members[1], "大病", "未治愈", 9000)
    b.expect("REFER_HEALTH", "refer", hh)


@case
def refer_insurance(b: Builder) -> None:
    hh = b.household(ages=(50, 47), clean=False)
    b.clean_records(hh, skip=(hh.members[1].id_number,))
    b.expect("REFER_INSURANCE", "refer", hh, hh.members[1])
    hh = b.household(ages=(50, 47), register="已脱贫", income=7000, clean=False)
    b.clean_records(hh, skip=(hh.members[0].id_number,))
    b.insure(hh.members[0], year=b.as_of.year - 1)
    b.expect("REFER_INSURANCE", "refer", hh, hh.members[0])
    hh = b.household(ages=(50, 47), clean=False)
    b.clean_records(hh, skip=(hh.members[0].id_number,))
    b.insure(hh.members[0], status="停保")
    b.expect("REFER_INSURANCE", "refer", hh, hh.members[0])


@case
def rv_unenrolled(b: Builder) -> None:
    for age in (9, 6, 15):
        hh = b.household(ages=(40, 38, age), clean=False)
        kid = hh.members[2]
        b.clean_records(hh, skip=(kid.id_number,))
        b.insure(kid)
        b.expect("RV_UNENROLLED", "review", hh, kid)
    for age in (5, 16):
        hh = b.household(ages=(40, 38, age), clean=False)
        b.clean_records(hh, skip=(hh.members[2].id_number,))
        b.insure(hh.members[2])
    hh = b.household(ages=(40, 38, 10), clean=False)
    b.clean_records(hh, skip=(hh.members[2].id_number,))
    b.insure(hh.members[2])
    b.student(hh.members[2], "送教上门")


# ================================================================ exit
@case
def exit_eligible(b: Builder) -> None:
    b.expect("EXIT_ELIGIBLE", "exit", b.household(ages=(44, 42, 10), income=5200))
    hh = b.household(register="返贫", income=4500)
    b.appraisal(hh.head, "D", "已改造", days_ago=30)
    b.expect("EXIT_ELIGIBLE", "exit", hh)


@case
def exit_blocked(b: Builder) -> None:
    hh = b.household(income=5200, clean=False)
    for p in hh.members:
        b.insure(p)  # no appraisal on file: not proven
    b.household(income=5200, safe_water="否")
    b.household(income=5200, electricity="否")
    b.household(income=4000)  # not above the line
    sick = b.household(income=5200)
    b.illness(sick.members[1], "大病", "治疗中", 3000)
    _dropout_household(b, reason="因残", register="未脱贫", income=6000)
    hh = b.household(income=5200, clean=False)
    b.clean_records(hh, skip=(hh.members[1].id_number,))
    b.expect("REFER_INSURANCE", "refer", hh, hh.members[1])


# ================================================================ data quality
@case
def dq_invalid_id(b: Builder) -> None:
    for kind in ("checksum", "excel", "excel_integer", "date", "shape"):
        hh = b.household(ages=(55, 52))
        p = hh.members[1]
        bad = _invalid_form(p.id_number, kind)
        b.rows["poverty_register"][-1]["id_number"] = bad
        b.expect("DQ_INVALID_ID", "review", hh, bad)


def _invalid_form(number: str, kind: str) -> str:
    if kind == "checksum":
        return number[:17] + ("0" if number[17] != "0" else "1")
    if kind == "excel":
        return f"{float(number[:17]) / 1e16:.14f}".rstrip("0") + "E+17"
    if kind == "excel_integer":
        mangled = number[:15] + "000"
        if check_digits(pd.Series([mangled[:17]])).iloc[0] == mangled[17]:
            mangled = number[:14] + "9000"
        return mangled
    if kind == "date":
        body = number[:10] + "13" + number[12:17]
        return body + check_digits(pd.Series([body])).iloc[0]
    return number[:17]


@case
def dq_not_in_hukou(b: Builder) -> None:
    hh = b.household(ages=(60, 58))
    del b.rows["hukou"][-1]
    b.expect("DQ_NOT_IN_HUKOU", "review", hh, hh.members[1])


@case
def dq_name_mismatch(b: Builder) -> None:
    hh = b.household(ages=(60, 58))
    b.rows["hukou"][-1]["name"] = hh.members[1].name[0] + "某某"
    b.expect("DQ_NAME_MISMATCH", "review", hh, hh.members[1])


@case
def same_name_in_other_forms(b: Builder) -> None:
    for register_name, hukou_name in (("張 偉", "张伟"), ("劉　麗華", "刘丽华"), ("王 芳", "王芳")):
        b.household(ages=(61, 59))
        b.rows["hukou"][-1]["name"] = hukou_name
        b.rows["poverty_register"][-1]["name"] = register_name


@case
def dq_multi_household(b: Builder) -> None:
    on_two_registers(b, b)


def on_two_registers(a: Builder, b: Builder) -> None:
    """A member of a register household of ``a`` listed again in a one-person register household of ``b`` (the
    same county, or another)."""
    first = a.household(ages=(45, 43))
    second = b.household(ages=(70,))
    twin = first.members[1]
    row = dict(b.rows["poverty_register"][-1])
    row.update(id_number=twin.id_number, name=twin.name, relation="之女")
    b.rows["poverty_register"].append(row)
    a.expect("DQ_MULTI_HOUSEHOLD", "review", first, twin)
    # the second household's hukou household: one member in each, so the greater number (int_register_households)
    b.expect("DQ_MULTI_HOUSEHOLD", "review",
             replace(second, hukou_household_id=max(first.hukou_household_id, second.hukou_household_id)), twin)


@case
def unusable_department_rows(b: Builder) -> None:
    """Rows outside the register that staging must quarantine, each with its reason."""
    hh = b.household(ages=(35, 33), register=None)
    head, spouse = hh.members
    for kind, reason in (("excel", "excel"), ("checksum", "checksum")):
        bad = _invalid_form(head.id_number, kind)
        b.vehicle(head, "K33", date(2019, 1, 1))
        b.rows["vehicles"][-1]["owner_id_number"] = bad
        b.expect_quarantine("vehicles", bad, reason)
    b.vehicle(spouse, "水陆两用车", date(2019, 1, 1))
    b.expect_quarantine("vehicles", b.rows["vehicles"][-1]["plate"], "unknown vehicle type")
    b.insure(spouse, status="已参加")
    b.expect_quarantine("medical_insurance", spouse.id_number, "unreadable value")


def pack_cases(path: Path) -> dict[str, Callable[[Builder], None]]:
    """The cases of a pack's ``cases.yaml`` (its sources installed): each a fresh household (on the register
    unless ``on_register: false``) with clean records, one ``row`` of ``source`` for its ``member`` (identity
    number and name filled in) and the flag it must raise (``expect``), if any. Refused naming the case and field."""
    from jingzhun import yamlfile
    from jingzhun.contract import SOURCES
    from jingzhun.deployment import DeploymentError

    try:
        entries = (yamlfile.parse(path.read_text(encoding="utf-8"), path.name) or {}).get("cases") or {}
    except yamlfile.YamlFileError as exc:
        raise DeploymentError(str(exc)) from None
    out = {}
    for name, case in entries.items():
        at = f"{path.name}: cases.{name}"
        source = SOURCES.get(case.get("source"))
        if source is None:
            raise DeploymentError(f"{at}.source: unknown source {case.get('source')!r}")
        unknown = sorted(set(case.get("row") or {}) - {c.name for c in source.columns})
        if unknown:
            raise DeploymentError(f"{at}.row: unknown column(s) {', '.join(unknown)} of {source.name}")
        if case.get("member", 0) not in (0, 1):
            raise DeploymentError(f"{at}.member: 0 (the head) or 1 (the spouse)")
        out[str(name)] = _pack_case(source, case)
    return out


def _pack_case(source, case: dict) -> Callable[[Builder], None]:
    id_column = next(c.name for c in source.columns if c.kind == "id")
    name_column = next((c.name for c in source.columns if c.kind == "name"), None)

    def build(b: Builder) -> None:
        hh = b.household(register="未脱贫" if case.get("on_register", True) else None)
        person = hh.members[case.get("member", 0)]
        b.add(source.name, **{id_column: person.id_number, **({name_column: person.name} if name_column else {}),
                              **(case.get("row") or {})})
        if case.get("expect"):
            b.expect(case["expect"]["rule"], case["expect"]["direction"], hh)
    return build


def plant(rng: np.random.Generator, as_of: date, villages: np.ndarray, repeats: int,
          extra: dict[str, Callable[[Builder], None]] | None = None
          ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Every case (and ``extra``: a pack's) ``repeats`` times: rows it adds to each register, flags and quarantine
    it expects."""
    b = Builder(rng, as_of, villages)
    plant_into(b, repeats, extra)
    return planted(b)


def plant_into(b: Builder, repeats: int, extra: dict[str, Callable[[Builder], None]] | None = None) -> None:
    """Every case (and ``extra``) ``repeats`` times, into ``b``."""
    for _ in range(repeats):
        for name, build in {**CASES, **(extra or {})}.items():
            b.case = name
            build(b)


def planted(b: Builder) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """What ``b`` planted: rows per register, the flags and the quarantine it expects."""
    tables = {name: pd.DataFrame(rows) for name, rows in b.rows.items()}
    quarantined = pd.DataFrame(b.quarantined, columns=["source", "value", "reason", "case"])
    expected = pd.DataFrame(b.expected, columns=["rule_code", "direction", "household_id", "hukou_household_id",
                                                 "id_number", "village_code", "case"])
    return tables, expected, quarantined
