"""``jingzhun rules preview --rules DIR``: new or changed rules tried on the last published registers.

DIR holds a rule catalogue (``rules.yaml``, its models in ``rules/``) and, when its rules read registers of their
own, the ``deployment.yaml`` that adds them. Its rules run in the engine on the registers the warehouse
published last (read as Arrow), as of that run; nothing is written to the warehouse.

Grain of what it reports: per rule, its flags per township and village, a sample with evidence (identity numbers
masked), and against the flags raised now under the same code: how many would be new, stay raised, or be
resolved.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Boolean, Date, select

from jingzhun import deployment, labels, warehouse
from jingzhun.catalogue import Catalogue, CatalogueError, read_catalogue
from jingzhun.engine import Engine, check_catalogue
from jingzhun.policy import Policy
from jingzhun.privacy import Refused, mask_id_shaped

KEY = ["rule_code", "household_id", "hukou_household_id", "id_number"]


@dataclass
class RulePreview:
    code: str
    title: str
    direction: str
    not_evaluated: str              # why it could not run ("" when it ran)
    flags: pd.DataFrame             # one row per flag it would raise
    villages: pd.DataFrame          # one row per village: township and village names, flags
    new: int
    kept: int
    resolved: int


def read_rules(folder: Path) -> Catalogue:
    """The catalogue of a rules folder (its deployment's sources installed first, if it has one)."""
    if not (folder / "rules.yaml").is_file():
        raise Refused(f"--rules {folder}: no rules.yaml in it")
    if (folder / "deployment.yaml").is_file():
        deployment.install_file(folder / "deployment.yaml")
    try:
        rules = read_catalogue(folder / "rules.yaml")
        check_catalogue(rules)
        return rules
    except CatalogueError as exc:
        raise Refused(str(exc)) from None


def published_registers(engine, folder: Path) -> dict[str, Path]:
    """Every published register, as a Parquet file under ``folder`` (read through ADBC as Arrow, typed as
    staging wrote them: dates as timestamps, flags as booleans)."""
    out = {}
    with warehouse._adbc(engine) as conn:
        cur = conn.cursor()
        for source, table in warehouse.staging_tables.items():
            cur.execute(f'SELECT * FROM "{table.name}"')
            arrow = cur.fetch_arrow_table()
            if not arrow.num_rows:
                continue
            columns = {}
            for column in table.columns:
                if column.name == "run_id" or column.name not in arrow.column_names:
                    continue
                values = arrow.column(column.name)
                if isinstance(column.type, Date):
                    values = (pc.strptime(values, format="%Y-%m-%d", unit="us", error_is_null=True)
                              if pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                              else pc.cast(values, pa.timestamp("us")))
                elif isinstance(column.type, Boolean):
                    values = pc.cast(values, pa.bool_())
                columns[column.name] = values
            out[source] = folder / f"{source}.parquet"
            pq.write_table(pa.table(columns), out[source])
    return out


def last_published_as_of(engine) -> date:
    runs = warehouse.runs.c
    with engine.connect() as conn:
        as_of = conn.execute(select(runs.as_of).where(runs.status == "published")
                             .order_by(runs.finished_at.desc()).limit(1)).scalar()
    if as_of is None:
        raise Refused("the warehouse has no published run: run `jingzhun run` first")
    return as_of


def preview(engine, rules: Catalogue, policy: Policy, as_of: date | None = None) -> list[RulePreview]:
    """What each rule of ``rules`` would raise on the published registers (nothing is written)."""
    as_of = as_of or last_published_as_of(engine)
    with tempfile.TemporaryDirectory(prefix="jingzhun-preview-") as tmp:
        tables = published_registers(engine, Path(tmp))
        with Engine(tables, policy, pd.Timestamp(as_of), rules, Path(tmp) / "engine",
                    policy.engine.memory_limit, policy.engine.threads) as run:
            raised, skipped = run.flags({s: "未发布 (not published)" for s in warehouse.staging_tables})
    with engine.connect() as conn:
        f = warehouse.flags.c
        now = pd.read_sql(select(f.rule_code, f.household_id, f.hukou_household_id, f.id_number)
                          .where(f.rule_code.in_(list(rules.rules)), f.status != "resolved"), conn)
    reference = labels.stored_regions(engine)
    out = []
    for code, rule in rules.rules.items():
        mine = raised[raised["rule_code"].eq(code)]
        keys, current = set(map(tuple, mine[KEY].to_numpy())), set(map(tuple, now[now["rule_code"].eq(code)][KEY].fillna("").to_numpy()))
        villages = (mine.groupby("village_code").size().rename("flags").reset_index()
                    if len(mine) else pd.DataFrame({"village_code": pd.Series(dtype="str"), "flags": pd.Series(dtype="int64")}))
        villages.insert(0, "township", labels.township_names(villages["village_code"], reference))
        villages.insert(1, "village", labels.region_names(villages["village_code"], reference, "village"))
        out.append(RulePreview(code, rule.title, rule.direction, skipped.get(code, ""), mine, villages,
                               new=len(keys - current), kept=len(keys & current), resolved=len(current - keys)))
    return out


def print_preview(previews: list[RulePreview], folder: Path, as_of: date, sample: int = 5) -> None:
    print(f"rules preview (试运行): {len(previews)} rules of {folder} on the registers published last, as of {as_of}; "
          f"nothing is published")
    for p in previews:
        print(f"\n{p.code} {p.title} ({p.direction})")
        if p.not_evaluated:
            print(f"  not evaluated (未评估): {p.not_evaluated}")
            continue
        print(f"  {len(p.flags)} flags: {p.new} new (新增), {p.kept} raised now too (持续), "
              f"{p.resolved} raised now would be resolved (解除)")
        for township, rows in p.villages.groupby("township", sort=True):
            print(f"  {township}: {int(rows['flags'].sum())}")
            for _, v in rows.sort_values("village_code").iterrows():
                print(f"    {v['village']} ({v['village_code']}): {v['flags']}")
        for _, f in p.flags.head(sample).iterrows():
            who = f["household_id"] or f["hukou_household_id"]
            print(f"  e.g. {who}: {mask_id_shaped(f['evidence_text'])}")
