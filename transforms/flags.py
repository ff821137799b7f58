"""Marts: the flags. One function per rule of ``rules.md``, its exemptions beside it.

Every rule reads tonight's staged registers through a :class:`Context` and
returns one row per flag (household-level rules: one per household; person-
level: one per person; additions: one per hukou household), each with its
evidence. :func:`flags` runs the rules whose sources and columns are all
present and reports the others as not evaluated, with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import pandas as pd

from jingzhun.contract import SOURCES
from jingzhun.normalise import ID_PROBLEM_WORDS
from jingzhun.policy import Policy
from transforms import evidence as ev
from transforms import intermediate as it

FLAG_COLUMNS = ["rule_code", "direction", "household_id", "hukou_household_id", "id_number", "village_code",
                "evidence", "evidence_text"]
LIVING = ("poverty_register", "hukou", "deaths")  # what "living member" is decided from


@dataclass(frozen=True)
class Context:
    """Tonight's usable registers (a source absent here did not arrive or was blocked), policy and date."""

    frames: dict[str, pd.DataFrame]
    policy: Policy
    as_of: pd.Timestamp
    computed: dict = field(default_factory=dict, compare=False, repr=False)  # see shared()

    @cached_property
    def members(self) -> pd.DataFrame:
        return it.int_register_members(self.frames["poverty_register"], self.frames.get("hukou"),
                                       self.frames.get("deaths"), self.as_of)

    @cached_property
    def households(self) -> pd.DataFrame:
        return it.int_register_households(self.members)

    @cached_property
    def living(self) -> pd.DataFrame:
        return self.members[self.members["living"]]

    @cached_property
    def exited_income(self) -> pd.DataFrame:
        """Register households with their direction for back-to-poverty rules: revert, or refer above the line."""
        hh = self.households
        return hh.assign(above_referral=hh["income"].gt(self.policy.referral_income))

    @cached_property
    def latest_students(self) -> pd.DataFrame:
        s = it._optional(self.frames["students"], ["status_date", "dropout_reason"])
        return it.int_latest_by_person(s, "id_number", "status_date")

    @cached_property
    def latest_appraisals(self) -> pd.DataFrame:
        h = it._optional(self.frames["housing_safety"], ["renovation"])
        return it.int_latest_by_person(h, "head_id_number", "appraised")

    @cached_property
    def insured(self) -> pd.Series:
        i = self.frames["medical_insurance"]
        ok = i["insured_status"].eq("参保") & i["insured_year"].eq(self.as_of.year)
        return i.loc[ok, "id_number"]


def shared(fn: Callable) -> Callable:
    """Computed once per Context: several rules start from the same candidates (callers never modify them)."""
    @functools.wraps(fn)
    def once(ctx: Context, **options):
        key = (fn.__name__, tuple(sorted(options.items())))
        if key not in ctx.computed:
            ctx.computed[key] = fn(ctx, **options)
        return ctx.computed[key]
    return once


Grain = Literal["household", "person", "hukou_household"]
GRAINS: dict[str, str] = {"household": "one flag per register household", "person": "one flag per (household, person)",
                          "hukou_household": "one flag per public-security household not on the register"}


@dataclass(frozen=True)
class Rule:
    """A rule of the catalogue: what reviews, marts and "not evaluated" read of it."""

    code: str
    title: str                              # the Chinese title stewards read
    grain: Grain                            # what one of its flags is about
    direction: str
    needs: tuple[str, ...]                  # sources it reads
    columns: tuple[tuple[str, str], ...]    # optional (source, column) pairs it reads
    build: Callable[[Context], pd.DataFrame]


RULES: dict[str, Rule] = {}


def rule(code: str, title: str, grain: Grain, direction: str, needs: tuple[str, ...],
         columns: tuple[tuple[str, str], ...] = ()):
    def register(fn: Callable[[Context], pd.DataFrame]) -> Callable[[Context], pd.DataFrame]:
        RULES[code] = Rule(code, title, grain, direction, tuple(dict.fromkeys(needs)), columns, fn)
        return fn
    return register


# ---------------------------------------------------------------- flag shapes

def _household_flags(ctx: Context, rows: pd.DataFrame, item: pd.Series, text: pd.Series) -> pd.DataFrame:
    """One flag per household from its evidence rows (each with ``household_id``)."""
    out = ev.per_flag(rows, ["household_id"], item, text, ctx.as_of)
    out = out.merge(ctx.households[["household_id", "hukou_household_id", "village_code"]], on="household_id")
    return out.assign(id_number="")


def _person_flags(ctx: Context, rows: pd.DataFrame, item: pd.Series, text: pd.Series) -> pd.DataFrame:
    """One flag per (household, person) from its evidence rows."""
    out = ev.per_flag(rows, ["household_id", "id_number"], item, text, ctx.as_of)
    return out.merge(ctx.households[["household_id", "hukou_household_id", "village_code"]], on="household_id")


def _member_items(rows: pd.DataFrame, extra: dict[str, str] | None = None) -> pd.Series:
    return ev.items(rows, "poverty_register", {"household_id": "household_id", "id_number": "id_number",
                                               "name": "name", **(extra or {})})


# ================================================================ removal

@shared
def _cars(ctx: Context) -> pd.DataFrame:
    """Vehicles in use of a car class owned by living members, with whether bought by identification."""
    p = ctx.policy
    v = it._optional(ctx.frames["vehicles"], ["first_registered"])
    klass = v["vehicle_class"].fillna("")
    is_car = klass.str.startswith(p.car_class_prefixes) & ~klass.str.startswith(p.exempt_class_prefixes)
    cars = v[is_car & v["vehicle_status"].eq("正常")]  # exemption: 注销/报废/转出 and other classes
    owners = ctx.living[["household_id", "id_number", "name", "identified_year"]].rename(
        columns={"id_number": "member_id", "name": "member_name"})
    rows = cars.merge(owners, left_on="owner_id_number", right_on="member_id")
    year_end = pd.to_datetime(rows["identified_year"].astype("Int64").astype("str") + "-12-31", errors="coerce")
    return rows.assign(year_end=year_end, by_identification=rows["first_registered"].le(year_end))


def _car_evidence(rows: pd.DataFrame, type_names: dict[str, str]):
    item = ev.items(rows, "vehicles", {"id_number": "owner_id_number", "plate": "plate", "vehicle_type": "vehicle_type",
                                       "vehicle_class": "vehicle_class", "vehicle_status": "vehicle_status",
                                       "first_registered": "first_registered", "identified_year": "identified_year"})
    rows = rows.assign(vehicle_words=vehicle_words(rows["vehicle_type"], rows["vehicle_class"], type_names))
    text = ev.sentence(rows, "成员{member_name}名下车辆{plate}({vehicle_words},{vehicle_status})"
                             "初次登记于{first_registered},识别年度{identified_year}")
    return item, text


def vehicle_words(given: pd.Series, klass: pd.Series, type_names: dict[str, str]) -> pd.Series:
    """A vehicle's type in words, its GA 802 code after: ``小型轿车,K33`` whether the department wrote the name or
    the code (the first name ``type_names`` lists for the code; a code without a name reads as the code alone)."""
    names: dict[str, str] = {}
    for name, code in type_names.items():
        names.setdefault(code, name)
    given, klass = given.fillna("").astype("str"), klass.fillna("").astype("str")
    named = given.where(given.ne(klass) & given.ne(""), klass.map(names).fillna(""))
    return (named + "," + klass).where(named.ne(""), klass).where(klass.ne(""), given)


@rule("RM_CAR", "有车(识别时已有)", "household", "remove",
      (*LIVING, "vehicles"), (("vehicles", "first_registered"), ("poverty_register", "identified_year")))
def rm_car(ctx: Context) -> pd.DataFrame:
    """A living member owns a car in use, registered by the end of the identification year (错评)."""
    rows = _cars(ctx)
    rows = rows[rows["by_identification"]]
    return _household_flags(ctx, rows, *_car_evidence(rows, ctx.policy.vehicle_type_names))


@rule("RV_CAR_ACQUIRED", "有车(识别后购置)", "household", "review",
      (*LIVING, "vehicles"), (("vehicles", "first_registered"), ("poverty_register", "identified_year")))
def rv_car_acquired(ctx: Context) -> pd.DataFrame:
    """Same car, first registered after the identification year (or on an unknown date): check for exit."""
    rows = _cars(ctx)
    rows = rows[~rows["by_identification"]]
    return _household_flags(ctx, rows, *_car_evidence(rows, ctx.policy.vehicle_type_names))


@rule("RM_PROPERTY", "有商品房", "household", "remove", (*LIVING, "real_estate"))
def rm_property(ctx: Context) -> pd.DataFrame:
    """A living member owns current commercial housing for living, business or office use.

    Exempt: relocation, public-rental, low-rent, self-built, affordable and reformed housing (any
    nature outside ``removable_property_natures``), other usages, and rights 注销/历史.
    """
    p = ctx.policy
    e = ctx.frames["real_estate"]
    e = e[e["right_status"].eq("现势") & e["nature"].isin(p.removable_property_natures)
          & e["usage"].isin(p.removable_property_usages)]
    rows = e.merge(ctx.living[["household_id", "id_number", "name"]].rename(
        columns={"id_number": "member_id", "name": "member_name"}), left_on="owner_id_number", right_on="member_id")
    rows = it._optional(rows, ["location", "unit_id", "registered", "area_m2"])
    item = ev.items(rows, "real_estate", {"id_number": "owner_id_number", "unit_id": "unit_id", "location": "location",
                                          "usage": "usage", "nature": "nature", "right_status": "right_status",
                                          "registered": "registered"})
    text = ev.sentence(rows, "成员{member_name}名下{nature}({usage},{right_status}),坐落{location},登记于{registered}")
    return _household_flags(ctx, rows, item, text)


def _dead_members(ctx: Context) -> pd.DataFrame:
    return ctx.members[ctx.members["dead"]]


def _death_evidence(rows: pd.DataFrame):
    rows = rows.assign(_file=rows["death_file"], _row=rows["death_row"])
    item = ev.items(rows, "deaths", {"id_number": "id_number", "name": "name", "recorded_in": "death_source",
                                     "death_date": "death_date"})
    rows = rows.assign(death_source_title=rows["death_source"].map({s: SOURCES[s].title for s in ("deaths", "hukou")}))
    text = ev.sentence(rows, "成员{name}已死亡({death_source_title}登记,日期{death_date})")
    return item, text


@shared
def _all_dead(ctx: Context) -> pd.Series:
    hh = ctx.households
    return hh.loc[hh["dead"].eq(hh["members"]) & hh["members"].gt(0), "household_id"]


@rule("RM_DECEASED", "全户死亡", "household", "remove", LIVING)
def rm_deceased(ctx: Context) -> pd.DataFrame:
    """Every member of the household is dead (a member with an invalid number is not proven dead)."""
    rows = _dead_members(ctx)
    rows = rows[it.member_of(rows["household_id"], _all_dead(ctx))]
    return _household_flags(ctx, rows, *_death_evidence(rows))


@rule("RM_MEMBER_DECEASED", "成员死亡", "person", "remove", LIVING)
def rm_member_deceased(ctx: Context) -> pd.DataFrame:
    """One member (not all) is dead: remove that person and recompute the household size."""
    rows = _dead_members(ctx)
    rows = rows[~it.member_of(rows["household_id"], _all_dead(ctx))]
    return _person_flags(ctx, rows, *_death_evidence(rows))


# ================================================================ addition

@shared
def _on_register(ctx: Context) -> pd.Series:
    m = ctx.members
    return m.loc[m["id_number_valid"], "id_number"]


def _addition_candidates(ctx: Context, assisted: pd.DataFrame) -> pd.DataFrame:
    """Assisted living people mapped to their hukou household (additions are per hukou household)."""
    living = it.int_persons_living(ctx.frames["hukou"], ctx.frames.get("deaths"), ctx.as_of)
    people = living[["id_number", "hukou_household_id", "address_code"]]
    return assisted.merge(people, on="id_number")


@shared
def _dibao_families(ctx: Context) -> pd.DataFrame:
    """Rows of current first/second-class 低保 households where every listed member has lost labour capacity,
    income is at most ``referral_income`` and no member is on the register."""
    p = ctx.policy
    a = it.int_current_assistance(ctx.frames["social_assistance"], ctx.as_of)
    a = a[a["assistance_type"].eq("低保")]
    flags = a.assign(
        eligible_class=a["dibao_class"].isin(p.dibao_classes_for_addition),
        incapable=a["labor_capacity"].isin(p.incapacity_levels),
        on_register=it.member_of(a["id_number"], _on_register(ctx)),
    )
    g = flags.groupby("assistance_household_id")
    ok = g["eligible_class"].all() & g["incapable"].all() & ~g["on_register"].any() \
        & g["income_per_capita"].max().le(p.referral_income) & g["income_per_capita"].count().eq(g.size())
    return _addition_candidates(ctx, a[it.member_of(a["assistance_household_id"], ok[ok].index)])


@shared
def _tekun_people(ctx: Context) -> pd.DataFrame:
    a = it.int_current_assistance(ctx.frames["social_assistance"], ctx.as_of)
    a = a[a["assistance_type"].eq("特困供养") & ~it.member_of(a["id_number"], _on_register(ctx))]
    return _addition_candidates(ctx, a)


@shared
def _blocked_households(ctx: Context) -> pd.DataFrame:
    """Hukou households with a serving member in a blocking cadre position."""
    c = ctx.frames["cadres"]
    c = c[c["term_status"].eq("在任") & c["position"].isin(ctx.policy.blocking_cadre_positions)]
    hukou = ctx.frames["hukou"].drop_duplicates("id_number")[["id_number", "hukou_household_id"]]
    return c.merge(hukou, on="id_number")


def _addition_flags(ctx: Context, rows: pd.DataFrame, text_template: str) -> pd.DataFrame:
    rows = it._optional(rows, ["dibao_class", "labor_capacity", "income_per_capita", "start_date", "name"])
    item = ev.items(rows, "social_assistance", {
        "id_number": "id_number", "name": "name", "assistance_household_id": "assistance_household_id",
        "assistance_type": "assistance_type", "dibao_class": "dibao_class", "labor_capacity": "labor_capacity",
        "income_per_capita": "income_per_capita", "assistance_status": "assistance_status", "start_date": "start_date"})
    out = ev.per_flag(rows, ["hukou_household_id"], item, ev.sentence(rows, text_template), ctx.as_of)
    village = rows.drop_duplicates("hukou_household_id").set_index("hukou_household_id")["address_code"]
    return out.assign(household_id="", id_number="", village_code=out["hukou_household_id"].map(village))


_DIBAO_TEXT = "{name}享受{assistance_type}{dibao_class}({assistance_status}),劳动能力{labor_capacity},家庭人均年收入{income_per_capita}元,不在建档立卡名单"
_TEKUN_TEXT = "{name}为{assistance_type}对象({assistance_status}),不在建档立卡名单"
_ADD_NEEDS = ("poverty_register", "hukou", "deaths", "social_assistance", "cadres")
_DIBAO_COLUMNS = (("social_assistance", "dibao_class"), ("social_assistance", "labor_capacity"),
                  ("social_assistance", "income_per_capita"))


@rule("ADD_DIBAO", "低保户应纳入", "hukou_household", "add", _ADD_NEEDS, _DIBAO_COLUMNS)
def add_dibao(ctx: Context) -> pd.DataFrame:
    """A first/second-class 低保 family unable to work, not on the register. Exempt: a member able to
    work; a serving blocking cadre in the hukou household (RV_ADD_CADRE says why)."""
    rows = _dibao_families(ctx)
    rows = rows[~it.member_of(rows["hukou_household_id"], _blocked_households(ctx)["hukou_household_id"])]
    return _addition_flags(ctx, rows, _DIBAO_TEXT)


@rule("ADD_TEKUN", "特困人员应纳入", "hukou_household", "add", _ADD_NEEDS)
def add_tekun(ctx: Context) -> pd.DataFrame:
    """A person with current 特困供养 support not on the register. Exempt: blocking cadre as above."""
    rows = _tekun_people(ctx)
    rows = rows[~it.member_of(rows["hukou_household_id"], _blocked_households(ctx)["hukou_household_id"])]
    return _addition_flags(ctx, rows, _TEKUN_TEXT)


@rule("RV_ADD_CADRE", "应纳入但有村干部", "hukou_household", "review", _ADD_NEEDS, _DIBAO_COLUMNS)
def rv_add_cadre(ctx: Context) -> pd.DataFrame:
    """A family that would be added, but whose hukou household has a serving blocking cadre."""
    blocked = _blocked_households(ctx)
    families = pd.concat([_dibao_families(ctx), _tekun_people(ctx)], ignore_index=True)
    families = families[it.member_of(families["hukou_household_id"], blocked["hukou_household_id"])]
    if families.empty:
        return _addition_flags(ctx, families, _DIBAO_TEXT)
    flags = _addition_flags(ctx, families, _DIBAO_TEXT)
    cadres = blocked[it.member_of(blocked["hukou_household_id"], families["hukou_household_id"])]
    c_item = ev.items(cadres, "cadres", {"id_number": "id_number", "name": "name", "position": "position",
                                         "term_status": "term_status"})
    c_text = ev.sentence(cadres, "同户{name}现任{position}({term_status})")
    c = cadres.assign(_i=c_item, _t=c_text).groupby("hukou_household_id").agg(_i=("_i", ",".join), _t=("_t", "；".join))
    flags["evidence"] = flags["evidence"].str[:-2] + "," + flags["hukou_household_id"].map(c["_i"]) + "]}"
    flags["evidence_text"] = flags["evidence_text"] + "；" + flags["hukou_household_id"].map(c["_t"])
    return flags


# ================================================================ back to poverty and referral

@shared
def _dropouts(ctx: Context, *, exempt_reasons: bool) -> pd.DataFrame:
    """Living members of compulsory-education age whose latest student record is 辍学 (exempt reasons out)."""
    kids = ctx.living[it.compulsory(ctx.living["age"], ctx.policy)]
    latest = ctx.latest_students
    latest = latest[latest["enrollment_status"].eq("辍学")]
    if exempt_reasons:
        latest = latest[~latest["dropout_reason"].isin(ctx.policy.exempt_dropout_reasons)]
    return latest.merge(kids[["household_id", "id_number", "name", "age"]].rename(columns={"name": "member_name"}),
                        on="id_number")


def _dropout_evidence(rows: pd.DataFrame):
    rows = it._optional(rows, ["school", "status_date"])
    item = ev.items(rows, "students", {"id_number": "id_number", "age": "age", "school": "school",
                                       "enrollment_status": "enrollment_status", "dropout_reason": "dropout_reason",
                                       "status_date": "status_date"})
    return item, ev.sentence(rows, "{member_name}({age}岁)最新学籍状态{enrollment_status},原因{dropout_reason},日期{status_date}")


def _split_by_income(ctx: Context, rows: pd.DataFrame, revert: bool) -> pd.DataFrame:
    """Rows of exited households at most the referral income (revert) or the rest (refer: above it, or unexited)."""
    hh = ctx.exited_income.set_index("household_id")
    exited = ~rows["household_id"].map(hh["unexited"]).astype(bool)
    above = rows["household_id"].map(hh["above_referral"]).astype(bool)
    return rows[exited & ~above] if revert else rows[~exited | above]


@rule("REVERT_DROPOUT", "因学返贫(辍学)", "household", "revert", (*LIVING, "students"), (("students", "dropout_reason"),))
def revert_dropout(ctx: Context) -> pd.DataFrame:
    """An exited household with a compulsory-age dropout. Exempt: 因病/因残/因智; above referral income → refer."""
    rows = _split_by_income(ctx, _dropouts(ctx, exempt_reasons=True), revert=True)
    return _household_flags(ctx, rows, *_dropout_evidence(rows))


@rule("REFER_EDUCATION", "转教育部门(辍学)", "household", "refer", (*LIVING, "students"), (("students", "dropout_reason"),))
def refer_education(ctx: Context) -> pd.DataFrame:
    """A dropout as in REVERT_DROPOUT in an unexited household, or an exited one above referral income."""
    rows = _split_by_income(ctx, _dropouts(ctx, exempt_reasons=True), revert=False)
    return _household_flags(ctx, rows, *_dropout_evidence(rows))


@shared
def _unsafe_houses(ctx: Context) -> pd.DataFrame:
    """Heads whose latest appraisal is C or D and not renovated, with their household."""
    p = ctx.policy
    a = ctx.latest_appraisals
    a = a[a["grade"].isin(p.unsafe_housing_grades) & a["renovation"].ne("已改造")]
    heads = ctx.households[["household_id", "head_id_number"]].dropna()
    return a.merge(heads, left_on="head_id_number", right_on="head_id_number")


def _house_evidence(rows: pd.DataFrame):
    rows = it._optional(rows, ["head_name", "renovation"])
    item = ev.items(rows, "housing_safety", {"head_id_number": "head_id_number", "grade": "grade",
                                             "appraised": "appraised", "renovation": "renovation"})
    return item, ev.sentence(rows, "户主{head_name}住房最新鉴定为{grade}级({appraised}),改造状态{renovation}")


@rule("REVERT_HOUSING", "住房不安全返贫", "household", "revert",
      ("poverty_register", "housing_safety"), (("housing_safety", "renovation"),))
def revert_housing(ctx: Context) -> pd.DataFrame:
    """An exited household whose head's latest appraisal is C/D and not renovated; above referral → refer."""
    rows = _split_by_income(ctx, _unsafe_houses(ctx), revert=True)
    return _household_flags(ctx, rows, *_house_evidence(rows))


@rule("REFER_HOUSING", "转住建部门(危房)", "household", "refer",
      ("poverty_register", "housing_safety"), (("housing_safety", "renovation"),))
def refer_housing(ctx: Context) -> pd.DataFrame:
    """A C/D house as in REVERT_HOUSING in an unexited household, or an exited one above referral income."""
    rows = _split_by_income(ctx, _unsafe_houses(ctx), revert=False)
    return _household_flags(ctx, rows, *_house_evidence(rows))


@shared
def _illness_rows(ctx: Context) -> pd.DataFrame:
    """Illness records of living members, marked serious (大病 not cured) or chronic-with-heavy-cost."""
    i = it._optional(ctx.frames["illness"], ["treatment_status", "year", "out_of_pocket", "disease"])
    rows = i.merge(ctx.living[["household_id", "id_number", "name"]].rename(columns={"name": "member_name"}),
                   on="id_number")
    latest_year = rows.groupby("household_id")["year"].transform("max")
    cost = rows["out_of_pocket"].where(rows["year"].eq(latest_year), 0).fillna(0)
    household_cost = cost.groupby(rows["household_id"]).transform("sum")
    serious = rows["category"].eq("大病") & rows["treatment_status"].ne("已治愈")
    heavy = rows["category"].eq("慢性病") & household_cost.ge(ctx.policy.large_medical_expense)
    return rows.assign(latest_year=latest_year, household_cost=household_cost, qualifying=serious | heavy)


def _illness_evidence(rows: pd.DataFrame):
    item = ev.items(rows, "illness", {"id_number": "id_number", "category": "category", "disease": "disease",
                                      "treatment_status": "treatment_status", "year": "year",
                                      "out_of_pocket": "out_of_pocket", "household_cost_latest_year": "household_cost"})
    return item, ev.sentence(rows, "{member_name}患{category}({disease},{treatment_status}),"
                                   "{latest_year}年家庭自付合计{household_cost}元")


@rule("REVERT_ILLNESS", "因病返贫", "household", "revert", (*LIVING, "illness"),
      (("illness", "treatment_status"), ("illness", "year"), ("illness", "out_of_pocket")))
def revert_illness(ctx: Context) -> pd.DataFrame:
    """An exited household with a serious illness not cured, or a chronic one with heavy yearly cost."""
    rows = _illness_rows(ctx)
    rows = _split_by_income(ctx, rows[rows["qualifying"]], revert=True)
    return _household_flags(ctx, rows, *_illness_evidence(rows))


@rule("REFER_HEALTH", "转卫健部门(疾病)", "household", "refer", (*LIVING, "illness"),
      (("illness", "treatment_status"), ("illness", "year"), ("illness", "out_of_pocket")))
def refer_health(ctx: Context) -> pd.DataFrame:
    """An illness as in REVERT_ILLNESS in an exited household above referral income (never unexited ones)."""
    rows = _illness_rows(ctx)
    rows = _split_by_income(ctx, rows[rows["qualifying"]], revert=False)
    exited = ~rows["household_id"].map(ctx.households.set_index("household_id")["unexited"]).astype(bool)
    rows = rows[exited]
    return _household_flags(ctx, rows, *_illness_evidence(rows))


@shared
def _uninsured(ctx: Context) -> pd.DataFrame:
    return ctx.living[~it.member_of(ctx.living["id_number"], ctx.insured)]


@rule("REFER_INSURANCE", "未参保", "person", "refer", (*LIVING, "medical_insurance"))
def refer_insurance(ctx: Context) -> pd.DataFrame:
    """A living member without a 参保 record for the year of ``as_of``."""
    rows = _uninsured(ctx).assign(insured_year=ctx.as_of.year)
    item = _member_items(rows, {"required_insured_year": "insured_year"})
    return _person_flags(ctx, rows, item, ev.sentence(rows, "{name}无{insured_year}年度参保记录"))


@shared
def _unenrolled(ctx: Context) -> pd.DataFrame:
    kids = ctx.living[it.compulsory(ctx.living["age"], ctx.policy)]
    return kids[~it.member_of(kids["id_number"], ctx.frames["students"]["id_number"])]  # 送教上门 is a record


@rule("RV_UNENROLLED", "适龄未入学", "person", "review", (*LIVING, "students"))
def rv_unenrolled(ctx: Context) -> pd.DataFrame:
    """A living member of compulsory-education age with no student record at all."""
    rows = _unenrolled(ctx)
    item = _member_items(rows, {"age": "age"})
    return _person_flags(ctx, rows, item, ev.sentence(rows, "{name}({age}岁)处于义务教育年龄,无任何学籍记录"))


# ================================================================ exit

@rule("EXIT_ELIGIBLE", "达到退出标准", "household", "exit",
      (*LIVING, "medical_insurance", "students", "housing_safety", "illness"),
      (("poverty_register", "safe_water"), ("poverty_register", "electricity"), ("housing_safety", "renovation"),
       ("illness", "treatment_status")))
def exit_eligible(ctx: Context) -> pd.DataFrame:
    """An unexited household meeting every exit standard. A household with a member whose number is invalid
    cannot prove them, nor can one whose head has no appraisal on file."""
    p = ctx.policy
    hh = ctx.households
    blocked = pd.concat([
        _uninsured(ctx)["household_id"], _unenrolled(ctx)["household_id"],
        _dropouts(ctx, exempt_reasons=False)["household_id"],
        _illness_rows(ctx).query("category == '大病' and treatment_status != '已治愈'")["household_id"],
    ])
    a = ctx.latest_appraisals
    safe = a[a["grade"].isin(p.safe_housing_grades)
             | (a["grade"].isin(p.unsafe_housing_grades) & a["renovation"].eq("已改造"))]
    candidates = hh[hh["unexited"].astype(bool) & hh["income"].gt(p.income_line_for(ctx.as_of.date()))
                    & hh["invalid_ids"].eq(0) & hh["living"].gt(0) & ~it.member_of(hh["household_id"], blocked)
                    & hh["safe_water"].ne("否") & hh["electricity"].ne("否")]
    rows = candidates.merge(safe, left_on="head_id_number", right_on="head_id_number")
    rows = rows.assign(income_line=p.income_line_for(ctx.as_of.date()))
    item = ev.items(rows, "housing_safety", {"head_id_number": "head_id_number", "grade": "grade",
                                             "appraised": "appraised", "renovation": "renovation",
                                             "income_per_capita": "income", "income_line": "income_line",
                                             "safe_water": "safe_water", "electricity": "electricity"})
    text = ev.sentence(rows, "人均纯收入{income}元高于标准{income_line}元；全员参保、无辍学或未入学、无未治愈大病；"
                             "户主住房最新鉴定{grade}级{renovation}；饮水安全:{safe_water},通生活用电:{electricity}")
    return _household_flags(ctx, rows, item, text)


# ================================================================ data quality

@rule("DQ_INVALID_ID", "身份证号无效", "person", "review", ("poverty_register",))
def dq_invalid_id(ctx: Context) -> pd.DataFrame:
    """A register row whose identity number is invalid after normalisation."""
    reg = ctx.frames["poverty_register"]
    rows = reg[~reg["id_number_valid"].astype(bool)]
    rows = rows.assign(problem_text=rows["id_number_problem"].map(ID_PROBLEM_WORDS))
    item = _member_items(rows, {"problem": "id_number_problem"})
    return _person_flags(ctx, rows, item, ev.sentence(rows, "{name}的身份证号{id_number}无效:{problem_text}"))


@rule("DQ_NOT_IN_HUKOU", "不在户籍库", "person", "review", ("poverty_register", "hukou", "deaths"))
def dq_not_in_hukou(ctx: Context) -> pd.DataFrame:
    """A valid register number absent from hukou."""
    rows = ctx.living[~ctx.living["in_hukou"]]
    return _person_flags(ctx, rows, _member_items(rows), ev.sentence(rows, "{name}({id_number})不在户籍人口库中"))


@rule("DQ_NAME_MISMATCH", "姓名与户籍不符", "person", "review", ("poverty_register", "hukou", "deaths"))
def dq_name_mismatch(ctx: Context) -> pd.DataFrame:
    """The number is in hukou under another name (after spaces, width and traditional characters are folded)."""
    m = ctx.living
    rows = m[m["in_hukou"] & m["name_norm"].ne(m["hukou_name_norm"])]
    item = _member_items(rows, {"hukou_name": "hukou_name", "hukou_file": "hukou_file", "hukou_row": "hukou_row"})
    return _person_flags(ctx, rows, item, ev.sentence(rows, "建档立卡姓名{name},户籍姓名{hukou_name}"))


@rule("DQ_MULTI_HOUSEHOLD", "重复在多个贫困户", "person", "review", ("poverty_register", "hukou", "deaths"))
def dq_multi_household(ctx: Context) -> pd.DataFrame:
    """The same number in more than one register household: one flag in each."""
    m = ctx.living
    households = m.groupby("id_number")["household_id"].transform("nunique")
    rows = m[households.gt(1)]
    item = _member_items(rows)
    return _person_flags(ctx, rows, item, ev.sentence(rows, "{name}({id_number})同时出现在多个贫困户中"))


# ---------------------------------------------------------------- running the rules

def not_evaluated_reason(r: Rule, frames: dict[str, pd.DataFrame], unavailable: dict[str, str]) -> str:
    """Why a rule cannot be evaluated tonight (empty when it can)."""
    missing = [s for s in r.needs if s not in frames]
    if missing:
        return "; ".join(f"{s}: {unavailable.get(s, '未收到 (not received)')}" for s in missing)
    absent = [f"{s}.{c}" for s, c in r.columns if c not in frames[s].columns]
    return f"缺少列 (missing optional columns): {', '.join(absent)}" if absent else ""


def flags(frames: dict[str, pd.DataFrame], policy: Policy, as_of: pd.Timestamp,
          unavailable: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """All flags of tonight's rules, and the rules not evaluated with their reason.

    ``frames`` holds the usable staged registers; ``unavailable`` says why the others are not there
    (missing, failed, blocked by the quality gate).
    """
    ctx = Context(frames, policy, pd.Timestamp(as_of))
    out, skipped = [], {}
    for r in RULES.values():
        reason = not_evaluated_reason(r, frames, unavailable or {})
        if reason:
            skipped[r.code] = reason
            continue
        raised = r.build(ctx)
        out.append(raised.assign(rule_code=r.code, direction=r.direction))
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=FLAG_COLUMNS)
    result = result.reindex(columns=FLAG_COLUMNS)
    for col in ("household_id", "hukou_household_id", "id_number", "village_code"):
        result[col] = result[col].astype(object).where(result[col].notna(), "").astype("str")
    return result, skipped
