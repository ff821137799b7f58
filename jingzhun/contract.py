"""The data contract of ``../shared/spec/sources.md`` as data.

Each source lists its canonical columns, the header aliases departments use,
whether the column is required, and its kind (how staging parses it). The
readers find headers through this table; the staging transforms cast by kind;
the quality gate checks required columns and value sets from it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "name", "text", "date", "money", "year", "number", "code12", "vocab"]


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    required: bool = False
    kind: Kind = "text"
    vocab: str | None = None  # field of policy.Vocabulary for kind == "vocab"
    max_chars: int | None = None  # the longest value the warehouse stores (a key column of fixed width)
    vocabulary: tuple[tuple[str, str], ...] | None = None  # a deployment's own code list (sent -> canonical)

    @property
    def header(self) -> str:
        """The column as people name it: its first (Chinese) header."""
        return self.aliases[0]

    @property
    def stored_chars(self) -> int | None:
        """The longest value the warehouse can store in this column (identity numbers: 32), None: no limit."""
        return ID_MAX_CHARS if self.kind == "id" else self.max_chars


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def department(self) -> str:
        """Who sends it (sources.md): whom a steward contacts about its files."""
        return DEPARTMENTS.get(self.name, "")

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


DEPARTMENTS = {  # the sending department of each register (sources.md, in the words of a county office)
    "poverty_register": "乡村振兴局(原扶贫办)", "hukou": "公安局(户政)", "vehicles": "公安局交警大队(车管所)",
    "real_estate": "自然资源局(不动产登记中心)", "housing_safety": "住房和城乡建设局", "social_assistance": "民政局",
    "deaths": "民政局(殡葬管理)", "students": "教育局", "medical_insurance": "医疗保障局", "illness": "卫生健康委员会",
    "cadres": "组织部", "regions": "统计局(区划代码)",
}
ID_MAX_CHARS = 32   # the warehouse's identity-number columns (invalid numbers are kept, so wider than 18)
KEY_MAX_CHARS = 64  # household numbers, as the flags table stores them


def C(name: str, *aliases: str, req: bool = False, kind: Kind = "text", vocab: str | None = None,
      max_chars: int | None = None) -> Column:
    return Column(name, aliases, req, kind, vocab, max_chars)


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("poverty_register", "建档立卡贫困人口", (
        C("household_id", "户编号", "贫困户编号", "户码", req=True, max_chars=KEY_MAX_CHARS),
        C("id_number", "证件号码", "身份证号", "身份证号码", "公民身份号码", req=True, kind="id"),
        C("name", "姓名", req=True, kind="name"),
        C("relation", "与户主关系"),
        C("village_code", "行政区划代码", "村代码", "区划代码", req=True, kind="code12"),
        C("household_type", "贫困户属性"),
        C("status", "贫困户状态", "脱贫状态", req=True, kind="vocab", vocab="register_status"),
        C("identified_year", "识别年度", "纳入年度", kind="year"),
        C("exit_year", "脱贫年度", kind="year"),
        C("household_size", "家庭人口数", kind="number"),
        C("income_per_capita", "人均纯收入", "家庭年人均纯收入", req=True, kind="money"),
        C("labor", "劳动技能", "劳动能力"),
        C("health", "健康状况"),
        C("safe_water", "是否饮水安全", "饮水安全", kind="vocab", vocab="yes_no"),
        C("electricity", "是否通生活用电", "通生活用电", kind="vocab", vocab="yes_no"),
    )),
    Source("hukou", "户籍人口", (
        C("id_number", "公民身份号码", "身份证号", req=True, kind="id"),
        C("name", "姓名", req=True, kind="name"),
        C("sex", "性别"),
        C("birth_date", "出生日期", kind="date"),
        C("hukou_household_id", "户号", req=True, max_chars=KEY_MAX_CHARS),
        C("relation", "与户主关系"),
        C("address_code", "户籍地址区划代码", "住址区划代码", req=True, kind="code12"),
        C("person_status", "人员状态", req=True, kind="vocab", vocab="person_status"),
        C("status_date", "变动日期", kind="date"),
    )),
    Source("vehicles", "机动车登记", (
        C("owner_id_number", "所有人身份证号", "机动车所有人证件号码", "身份证明号码", req=True, kind="id"),
        C("owner_name", "机动车所有人", "所有人", kind="name"),
        C("plate", "号牌号码", "车牌号", req=True),
        C("vehicle_type", "车辆类型", req=True),
        C("usage", "使用性质"),
        C("first_registered", "初次登记日期", kind="date"),
        C("vehicle_status", "机动车状态", "状态", req=True, kind="vocab", vocab="vehicle_status"),
    )),
    Source("real_estate", "不动产登记", (
        C("owner_id_number", "权利人证件号", "权利人证件号码", "产权人身份证号", req=True, kind="id"),
        C("owner_name", "权利人", "产权人", kind="name"),
        C("unit_id", "不动产单元号"),
        C("location", "坐落"),
        C("location_code", "坐落区划代码", kind="code12"),
        C("usage", "用途", "房屋用途", req=True),
        C("nature", "房屋性质", req=True),
        C("area_m2", "建筑面积", kind="number"),
        C("registered", "登记日期", kind="date"),
        C("right_status", "状态", "权属状态", req=True, kind="vocab", vocab="right_status"),
    )),
    Source("housing_safety", "农村住房安全性鉴定", (
        C("head_id_number", "户主身份证号", "户主证件号码", req=True, kind="id"),
        C("head_name", "户主姓名", kind="name"),
        C("grade", "鉴定等级", "危房等级", req=True, kind="vocab", vocab="housing_grade"),
        C("appraised", "鉴定日期", req=True, kind="date"),
        C("renovation", "改造状态", kind="vocab", vocab="renovation"),
        C("renovated", "改造完成日期", "竣工日期", kind="date"),
        C("floor_area_m2", "住房面积", "建筑面积", kind="number"),
    )),
    Source("social_assistance", "低保与特困供养对象", (
        C("id_number", "身份证号", "证件号码", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("assistance_household_id", "救助户号", "低保户号", "户编号", req=True, max_chars=KEY_MAX_CHARS),
        C("assistance_type", "救助类别", "保障类别", req=True, kind="vocab", vocab="assistance_type"),
        C("dibao_class", "低保类别", "保障类别等级", kind="vocab", vocab="dibao_class"),
        C("labor_capacity", "劳动能力", kind="vocab", vocab="labor_capacity"),
        C("income_per_capita", "家庭人均年收入", kind="money"),
        C("start_date", "起始日期", "批准日期", kind="date"),
        C("end_date", "终止日期", "停保日期", kind="date"),
        C("assistance_status", "状态", "保障状态", req=True, kind="vocab", vocab="assistance_status"),
    )),
    Source("deaths", "死亡人员", (
        C("id_number", "身份证号", "死者身份证号", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("death_date", "死亡日期", req=True, kind="date"),
        C("record_source", "信息来源"),
    )),
    Source("students", "学籍", (
        C("id_number", "学生身份证号", "身份证号", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("school", "学校名称"),
        C("stage", "学段"),
        C("grade", "年级"),
        C("enrollment_status", "学籍状态", req=True, kind="vocab", vocab="enrollment_status"),
        C("dropout_reason", "辍学原因", kind="vocab", vocab="dropout_reason"),
        C("status_date", "状态日期", kind="date"),
    )),
    Source("medical_insurance", "基本医疗保险参保", (
        C("id_number", "身份证号", "公民身份号码", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("insured_year", "参保年度", req=True, kind="year"),
        C("insured_status", "参保状态", req=True, kind="vocab", vocab="insured_status"),
        C("scheme", "险种"),
    )),
    Source("illness", "大病与慢性病", (
        C("id_number", "身份证号", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("category", "疾病类别", req=True, kind="vocab", vocab="illness_category"),
        C("disease", "疾病名称"),
        C("diagnosed", "诊断日期", kind="date"),
        C("treatment_status", "治疗状态", kind="vocab", vocab="treatment_status"),
        C("year", "年度", kind="year"),
        C("out_of_pocket", "年度自付费用", "个人自付", kind="money"),
    )),
    Source("cadres", "村两委成员", (
        C("id_number", "身份证号", req=True, kind="id"),
        C("name", "姓名", kind="name"),
        C("position", "职务", req=True),
        C("term_status", "任职状态", req=True, kind="vocab", vocab="term_status"),
        C("village_code", "村代码", kind="code12"),
    )),
)}


def header_key(text: object) -> str:
    """A header cell as compared with aliases: full-width folded, spaces and case ignored."""
    s = unicodedata.normalize("NFKC", str(text or ""))
    return "".join(s.split()).lower()


def alias_index(source: Source) -> dict[str, str]:
    """Header key -> canonical column, for every alias and the canonical name itself."""
    index: dict[str, str] = {}
    for col in source.columns:
        for alias in (col.name, *col.aliases):
            index.setdefault(header_key(alias), col.name)
    return index
