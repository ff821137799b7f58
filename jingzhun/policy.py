"""The one typed configuration of policy numbers and vocabularies.

Defaults come from ``../shared/spec/rules.md`` and the seed documents. Rule
code never holds a literal threshold or code list: it reads them from here.
A deployment overrides any field with a YAML or JSON file
(``jingzhun run --config FILE``); unknown keys are refused.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jingzhun import yamlfile
from jingzhun.clock import DEFAULT_TIME_ZONE
from jingzhun.privacy import SafeError


class Vocabulary(BaseModel):
    """Synonyms departments use, mapped to the canonical value of each coded column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    register_status: dict[str, str] = {
        "未脱贫": "未脱贫", "已脱贫": "已脱贫", "标注脱贫": "已脱贫", "返贫": "返贫",
    }
    unexited_statuses: tuple[str, ...] = ("未脱贫", "返贫")
    person_status: dict[str, str] = {
        "正常": "正常", "死亡": "死亡", "迁出": "迁出", "注销": "注销",
        "服兵役": "服兵役", "出国(境)": "出国(境)", "出国（境）": "出国(境)", "出国": "出国(境)",
    }
    vehicle_status: dict[str, str] = {
        "正常": "正常", "A": "正常", "注销": "注销", "E": "注销", "报废": "报废", "M": "报废",
        "G": "报废", "转出": "转出", "C": "转出", "被盗抢": "被盗抢", "B": "被盗抢",
    }
    right_status: dict[str, str] = {"现势": "现势", "注销": "注销", "历史": "历史"}
    housing_grade: dict[str, str] = {
        "A": "A", "B": "B", "C": "C", "D": "D",
        "A级": "A", "B级": "B", "C级": "C", "D级": "D",
    }
    renovation: dict[str, str] = {
        "未改造": "未改造", "改造中": "改造中", "已改造": "已改造", "竣工": "已改造", "已竣工": "已改造",
    }
    assistance_type: dict[str, str] = {
        "低保": "低保", "农村低保": "低保", "特困供养": "特困供养", "特困人员": "特困供养", "特困": "特困供养",
    }
    dibao_class: dict[str, str] = {
        "一类": "一类", "二类": "二类", "三类": "三类", "四类": "四类",
        "A类": "一类", "B类": "二类", "C类": "三类",
    }
    labor_capacity: dict[str, str] = {
        "完全丧失劳动能力": "完全丧失", "完全丧失": "完全丧失",
        "部分丧失劳动能力": "部分丧失", "部分丧失": "部分丧失",
        "有劳动能力": "有劳动能力",
    }
    assistance_status: dict[str, str] = {"在保": "在保", "停保": "停保", "退出": "退出"}
    enrollment_status: dict[str, str] = {
        "在读": "在读", "在校": "在读", "休学": "休学", "辍学": "辍学",
        "送教上门": "送教上门", "转学": "转学", "毕业": "毕业",
    }
    dropout_reason: dict[str, str] = {
        "因病": "因病", "因残": "因残", "因智": "因智", "厌学": "厌学",
        "因贫": "因贫", "外出务工": "外出务工", "其他": "其他",
    }
    insured_status: dict[str, str] = {
        "参保": "参保", "正常参保": "参保", "停保": "停保", "中断": "中断", "未参保": "未参保",
    }
    illness_category: dict[str, str] = {
        "大病": "大病", "重大疾病": "大病", "慢性病": "慢性病", "门诊慢特病": "慢性病",
    }
    treatment_status: dict[str, str] = {"治疗中": "治疗中", "未治愈": "未治愈", "已治愈": "已治愈"}
    term_status: dict[str, str] = {"在任": "在任", "离任": "离任"}
    yes_no: dict[str, str] = {"是": "是", "否": "否"}
    totals_markers: tuple[str, ...] = ("合计", "总计", "小计")


class ReaderLimits(BaseModel):
    """What a real department export never reaches; a file beyond any of them is refused (named, with the
    limit) before the reader allocates for it, and the other files and sources go on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_rows: int = Field(20_000_000, gt=0)      # lines of a CSV file, rows of a worksheet
    max_sheet_columns: int = Field(1_000, gt=0)       # the widest column a worksheet may use
    max_sheet_cells: int = Field(60_000_000, gt=0)    # rows x columns of a worksheet's used range
    max_cell_chars: int = Field(32_767, gt=0)         # Excel's own limit on one cell
    # what one part of an xlsx archive may hold once inflated, declared or measured while inflating (xlsx_guard).
    # A worksheet's XML costs some 40 bytes a cell: a county's largest register (hukou, 500,000 people x 12
    # columns) is about 250 MB, and a sheet filled to Excel's 1,048,576 rows x 12 columns about 500 MB.
    max_part_bytes: int = Field(512 << 20, gt=0)      # a worksheet, and any part not named below
    # the text of every distinct cell: a county's names, addresses and identity numbers kept as text are some
    # 2 million strings of 20 to 40 bytes, well under 100 MB; twice that and more is not an export
    max_shared_strings_bytes: int = Field(256 << 20, gt=0)
    # number formats, fonts and cell styles: kilobytes in an export, a few MB in a workbook bloated by copying
    max_styles_bytes: int = Field(32 << 20, gt=0)


class EngineSettings(BaseModel):
    """How much of the machine the run may use: beyond ``memory_limit`` the matching engine spills to the run folder
    (DuckDB's units: ``4GB``, ``1500MB``, ``6GiB``); ``threads`` defaults to the machine's cores; staging and the
    quality gate hold at most ``batch_rows`` rows of a register's text at a time; one model runs at most
    ``model_seconds`` and the engine spills at most ``spill_limit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_limit: str = Field("4GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int | None = Field(None, gt=0)
    batch_rows: int = Field(500_000, gt=0)
    # the longest one model may run (a county's take under a second, a province's on Spark minutes): a model that
    # never ends is stopped and named instead of holding the night
    model_seconds: float = Field(1_800, gt=0)
    # the most the engine may spill to the run folder (DuckDB's own cap is 90 % of the free disk: a model that
    # sorts a cross join would fill it)
    spill_limit: str = Field("50GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class SparkSettings(BaseModel):
    """The matching engine on Spark (``--engine spark``): the master (``local[*]`` on this machine; a cluster's
    ``spark://…``, ``yarn`` or ``k8s://…``; ``--spark-master`` or ``JINGZHUN_SPARK_MASTER`` win), the driver's and
    each executor's memory (Spark's units: ``4g``), the partitions of a shuffle, and any other Spark setting by its
    name (``conf``). Spark spills beyond its memory to ``spark.local.dir`` (the work folder's ``spark-local/``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master: str = "local[*]"
    driver_memory: str = Field("4g", pattern=r"^[0-9]+[kmgt]$")
    executor_memory: str = Field("4g", pattern=r"^[0-9]+[kmgt]$")
    shuffle_partitions: int = Field(16, gt=0)
    conf: dict[str, str] = {}


class SignoffSettings(BaseModel):
    """The sign-off chain's numbers (signoff.md; seeds 000 and 002): a 公示 lasts ``publicity_days`` whole days (0: a
    province that publicises offline), 乡镇审核's 入户核实 names at least ``min_verifiers`` people, and a second 公示
    follows it unless ``second_publicity`` is false; a level that has not acted within ``act_days`` is overdue. A browser session lasts ``session_hours``; ``max_failed_logins``
    failures in a row lock an account for ``lockout_minutes``; an address with ``max_failed_logins_per_address``
    failed sign-ins within ``lockout_minutes`` is refused every sign-in until they age out (one machine cannot try
    passwords on, or lock, account after account)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publicity_days: int = Field(7, ge=0, le=60)
    min_verifiers: int = Field(3, ge=1, le=20)
    second_publicity: bool = True
    # the days a level has to act on what waits for it before its queue shows it overdue (首先显示逾期)
    act_days: int = Field(15, ge=1, le=365)
    session_hours: float = Field(8, gt=0, le=24 * 7)
    max_failed_logins: int = Field(5, ge=1, le=100)
    lockout_minutes: float = Field(15, gt=0)
    max_failed_logins_per_address: int = Field(20, ge=1, le=100_000)


class Policy(BaseModel):
    """Policy parameters of the cross-match rules (rules.md, "Policy parameters")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    income_line: dict[int, float] = Field(default={2016: 3000, 2017: 3335, 2018: 3535, 2019: 3747, 2020: 4000},
                                          min_length=1)
    referral_income: float = Field(3500, ge=0)
    large_medical_expense: float = Field(10000, ge=0)
    car_class_prefixes: tuple[str, ...] = ("K", "H1", "H2", "H3", "H4")
    exempt_class_prefixes: tuple[str, ...] = ("H5", "N", "M", "T")
    vehicle_type_names: dict[str, str] = Field(default_factory=lambda: dict(_VEHICLE_TYPE_NAMES))
    blocking_cadre_positions: tuple[str, ...] = ("村党支部书记", "村委会主任", "副书记", "副主任", "文书")
    compulsory_age_min: int = Field(6, ge=0)
    compulsory_age_max: int = Field(15, ge=0)
    removable_property_natures: tuple[str, ...] = ("商品房",)
    removable_property_usages: tuple[str, ...] = ("住宅", "商业", "办公")
    # documented for stewards; the rule raises only on removable_property_natures
    exempt_property_natures: tuple[str, ...] = ("安置房", "公租房", "廉租房", "自建房", "经济适用住房", "房改房")
    exempt_dropout_reasons: tuple[str, ...] = ("因病", "因残", "因智")
    dibao_classes_for_addition: tuple[str, ...] = ("一类", "二类")
    incapacity_levels: tuple[str, ...] = ("完全丧失", "部分丧失")
    unsafe_housing_grades: tuple[str, ...] = ("C", "D")
    safe_housing_grades: tuple[str, ...] = ("A", "B")
    # 公示: characters of an identity number shown at the start and at the end; the birth date in the middle
    # (characters 7 to 14) is always hidden
    publicity_show_first: int = Field(2, ge=0, le=6)
    publicity_show_last: int = Field(3, ge=0, le=4)
    # a village exits when its poverty incidence is below this ("一低于": 贫困发生率低于3%, seeds/000)
    village_exit_incidence: float = Field(0.03, ge=0, le=1)
    # 公示 in the village "不少于七天" (the exit procedure, seeds/000): the period printed on the list
    publicity_days: int = Field(7, ge=7, le=60)
    publicity_contact: str = Field("对公示对象有异议的,请于公示期内向村民委员会或乡镇人民政府反映。监督举报电话:12317",
                                   min_length=1, max_length=300)
    # the quality gate (jingzhun/quality/): source-level thresholds and plausible date ranges
    stale_after_days: int = Field(7, ge=0)        # a file older than this (at the run's as_of) blocks its source
    max_shrink_share: float = Field(0.20, ge=0, le=1)      # shrinking by more than this against the last snapshot blocks
    max_invalid_id_share: float = Field(0.05, ge=0, le=1)  # a larger share of invalid identity numbers blocks
    earliest_date: date = date(1900, 1, 1)
    earliest_appraisal: date = date(2000, 1, 1)   # rural housing-safety appraisals began after 2000
    dates_may_be_future: tuple[str, ...] = ("social_assistance.end_date",)  # source.column
    # names of division codes for what people read (labels.py): a CSV or xlsx of 区划代码, 名称; the landing
    # folder's regions/ adds to it
    regions_file: str | None = None
    # the time zone people's dates and times are shown in, and in which a run's "today" is the day (jingzhun.clock)
    time_zone: str = DEFAULT_TIME_ZONE
    vocab: Vocabulary = Vocabulary()
    limits: ReaderLimits = ReaderLimits()
    engine: EngineSettings = EngineSettings()
    spark: SparkSettings = SparkSettings()
    signoff: SignoffSettings = SignoffSettings()

    def vocabulary_of(self, column) -> dict[str, str]:
        """The code list of a vocab column: its own (a deployment's source) or the policy's ``vocab`` field."""
        return dict(column.vocabulary) if column.vocabulary else getattr(self.vocab, column.vocab)

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        if self.compulsory_age_min > self.compulsory_age_max:
            raise ValueError("compulsory_age_min is above compulsory_age_max")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone: unknown time zone {self.time_zone!r} (an IANA name, e.g. Asia/Shanghai)") from None
        if any(v <= 0 for v in self.income_line.values()):
            raise ValueError("income_line: every poverty line must be above 0")
        return self

    def income_line_for(self, as_of: date) -> float:
        """The poverty line of ``as_of``'s year: the latest year on or before it."""
        years = [y for y in self.income_line if y <= as_of.year]
        if not years:
            raise ValueError(f"no income_line configured for {as_of.year} or earlier")
        return float(self.income_line[max(years)])


# GA 802 names departments write instead of codes (rules.md: "Names map to codes").
_VEHICLE_TYPE_NAMES: dict[str, str] = {
    "大型普通客车": "K11", "大型客车": "K11", "中型普通客车": "K21", "中型客车": "K21",
    "小型普通客车": "K31", "小型客车": "K31", "小型越野客车": "K32", "小型轿车": "K33",
    "微型普通客车": "K41", "微型客车": "K41", "微型轿车": "K43",
    "重型普通货车": "H11", "重型货车": "H11", "中型普通货车": "H21", "中型货车": "H21",
    "轻型普通货车": "H31", "轻型货车": "H31", "轻型厢式货车": "H32", "微型普通货车": "H41",
    "微型货车": "H41", "低速货车": "H51", "普通低速货车": "H51", "厢式低速货车": "H52",
    "罐式低速货车": "H53", "自卸低速货车": "H54",
    "三轮汽车": "N11", "低速三轮汽车": "N11",
    "普通正三轮摩托车": "M11", "普通二轮摩托车": "M21", "二轮摩托车": "M21", "摩托车": "M21",
    "轻便二轮摩托车": "M22", "轻便摩托车": "M22",
    "大型轮式拖拉机": "T11", "小型轮式拖拉机": "T21", "手扶拖拉机": "T22", "拖拉机": "T21",
    "重型半挂牵引车": "Q11", "专项作业车": "Z11",
}


class PolicyError(SafeError):
    """A policy file that cannot be used; the message names the file and every key at fault."""


def load_policy(path: str | Path | None = None) -> Policy:
    """The default policy, with the fields of a YAML or JSON file laid over it. Every field is checked (unknown
    keys, types, ranges) before anything runs; :class:`PolicyError` names each key at fault."""
    if path is None:
        return Policy()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yamlfile.parse(text, str(path))
    except FileNotFoundError:
        raise PolicyError(f"{path}: 配置文件不存在 (no such policy file)") from None
    except yamlfile.YamlFileError as exc:
        raise PolicyError(str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PolicyError(f"{path}: 无法读取配置文件 (not a readable YAML or JSON file: {type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy file must be a mapping of fields")
    try:
        return Policy.model_validate({**Policy().model_dump(), **data})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: "
                    + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"]) for e in exc.errors()]
        raise PolicyError(f"{path}: 配置有误 (invalid policy): " + "; ".join(problems)) from None
