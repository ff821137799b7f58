"""The ``jingzhun`` command line (interface.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from jingzhun import clock
from jingzhun.storage import StorageBusy

WORK_DIR = Path(os.environ.get("JINGZHUN_WORK", "jingzhun-work"))
# no telemetry leaves this machine (and there is no network to send it to)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from jingzhun.synth import generate
    from jingzhun.synth.province import generate_province

    if args.counties is not None:
        if args.pack:
            print("refused: --pack plants a county's cases; with --counties it is not supported", file=sys.stderr)
            return 2
        summary = generate_province(Path(args.out), counties=args.counties, households=args.households,
                                    seed=args.seed, as_of=args.as_of)
    else:
        summary = generate(Path(args.out), households=args.households, seed=args.seed, as_of=args.as_of,
                           pack=Path(args.pack) if args.pack else None)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


REGION_PATTERN = r"[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?"
EARLIEST_AS_OF = date(2000, 1, 1)


def check_run_args(args: argparse.Namespace) -> str | None:
    """What is wrong with ``jingzhun run``'s parameters (None: nothing), found in well under a second, before
    any server starts or any file is read. Each problem names its parameter or key."""
    from jingzhun.contract import SOURCES
    from jingzhun.landing import load_database_sources
    from jingzhun.policy import PolicyError, load_policy

    problems = []
    try:
        policy = load_policy(args.config)
    except PolicyError as exc:
        problems.append(f"--config {exc}")
        policy = None
    today = args.today or clock.today(policy.time_zone if policy else clock.DEFAULT_TIME_ZONE)
    latest = today.replace(year=today.year + 1)
    if not EARLIEST_AS_OF <= args.as_of <= latest:
        problems.append(f"--as-of {args.as_of}: must lie between {EARLIEST_AS_OF} and {latest}")
    elif policy is not None and not any(year <= args.as_of.year for year in policy.income_line):
        problems.append(f"--as-of {args.as_of}: the policy has no income_line for {args.as_of.year} or earlier")
    if args.region is not None and not re.fullmatch(REGION_PATTERN, args.region):
        problems.append(f"--region {args.region!r}: a division code prefix of 2, 4, 6, 9 or 12 digits")
    unknown = sorted(set(_listed(args.sources) or ()) - set(SOURCES))
    if unknown:
        problems.append(f"--sources: unknown {', '.join(unknown)} (known: {', '.join(SOURCES)})")
    try:
        databases = load_database_sources(args.sources_config)
    except Exception as exc:  # noqa: BLE001 - a deployment file's own problem, named by its message
        problems.append(f"--sources-config {exc}")
        databases = {}
    landing = Path(args.landing)
    if not landing.is_dir():
        problems.append(f"--landing {landing}: no such folder")
    elif not databases and not any((landing / name).is_dir() for name in SOURCES):
        problems.append(f"--landing {landing}: holds none of the source folders ({', '.join(SOURCES)})")
    return "; ".join(problems) or None


def cmd_run(args: argparse.Namespace) -> int:
    problem = check_run_args(args)
    if problem:
        print(f"refused: {problem}", file=sys.stderr)
        return 2
    common = dict(landing=str(args.landing), warehouse_url=args.warehouse, as_of=args.as_of, config=args.config,
                  dry_run=args.dry_run, work_dir=str(WORK_DIR), sources_config=args.sources_config,
                  deployment_file=args.deployment, engine=args.engine, spark_master=args.spark_master,
                  today=args.today, earlier=args.earlier)
    from jingzhun import warehouse

    engine = warehouse.connect(args.warehouse)
    warehouse.check_as_of(engine, args.as_of, args.earlier, args.dry_run)  # before Prefect
    if args.region is not None or args.households or args.sources:  # a reconciliation: its scope is checked first
        if not args.region:
            print("refused: a reconciliation needs --region (a division code prefix)", file=sys.stderr)
            return 2
        scope = warehouse.Scope(args.region, tuple(_listed(args.households) or ()), keep_decisions=args.earlier)
        warehouse.check_scope(engine, scope)  # before any server starts
        from jingzhun import labels

        named = labels.scope_title(scope.region, labels.stored_regions(engine))
        print(f"对账范围 (reconciliation of region) {scope.region}{f' {named}' if named else ''}"
              + (f", {len(scope.households)} households" if scope.households else "")
              + (f", sources {args.sources}" if args.sources else ", every source"))
        from prefect.exceptions import ParameterTypeError

        from jingzhun.reconcile import reconcile

        try:
            result = reconcile(region=args.region, households=_listed(args.households),
                               sources=_listed(args.sources), **common)
        except ParameterTypeError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
    else:
        from jingzhun.nightly import nightly

        result = nightly(**common)
    _print_run(result)
    return 0 if all(v["status"] not in ("failed", "blocked") for v in result["sources"].values()) else 3


def _listed(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def cmd_demo(args: argparse.Namespace) -> int:
    from jingzhun.nightly import nightly
    from jingzhun.synth import generate

    out = Path(args.out)
    summary = generate(out, households=args.households, seed=1, as_of=args.as_of)
    print(f"synthetic county: {summary['residents']} residents, landing folder {summary['landing']}")
    result = nightly(landing=summary["landing"], warehouse_url=None, as_of=args.as_of, work_dir=str(WORK_DIR))
    _print_run(result)
    from jingzhun import warehouse
    from jingzhun.indicators import write_indicators
    from jingzhun.policy import load_policy

    officials = Path(result["run_dir"]) / f"indicators_{result['run_id']}.xlsx"
    write_indicators(warehouse.connect(result["warehouse"]), load_policy(None), officials)
    print(f"village indicators: {officials}")
    print(f"ground truth (expected flags): {summary['ground_truth']}")
    demo_users(warehouse.connect(result["warehouse"]), result["warehouse"])
    return 0


DEMO_USERS = {"village": "demo_village", "township": "demo_township", "county": "demo_county",
              "steward": "demo_steward", "auditor": "demo_auditor"}


def demo_users(engine, url: str) -> None:
    """One demo account per role, in the area of the village with the most open flags (its township, its county),
    passwords printed once (a second demo gives them new ones); and how to open the workbench."""
    import pandas as pd
    from sqlalchemy import select

    from jingzhun import auth, warehouse

    with engine.connect() as conn:
        villages = pd.read_sql(select(warehouse.flags.c.village_code).where(warehouse.flags.c.status == "open"), conn)
    village = villages["village_code"].value_counts().index[0]
    areas = {"village": village, "township": village[:9], "county": village[:6], "steward": village[:6], "auditor": ""}
    known = set(auth.list_users(engine)["username"])
    print("workbench accounts (passwords shown once):")
    for role, name in DEMO_USERS.items():
        password = (auth.set_password(engine, name, by="demo") if name in known
                    else auth.add_user(engine, name, role, areas[role], by="demo"))
        print(f"  {role:9} {name:14} area {areas[role] or '(all)':12} password {password}")
    print(f"open the workbench: .venv/bin/jingzhun serve --warehouse {url}  then http://127.0.0.1:8000/")


def cmd_flags_export(args: argparse.Namespace) -> int:
    from jingzhun import warehouse
    from jingzhun.exports import check_export_path, flags_for_export, write_table

    check_export_path(Path(args.out))
    frame = flags_for_export(warehouse.connect(args.warehouse), args.status)
    path = write_table(frame, Path(args.out))
    print(f"{len(frame)} flags written to {path}")
    return 0


def _xlsx(out: str, what: str) -> None:
    """Refuse an output path that is not an xlsx workbook."""
    from jingzhun.exports import check_export_path

    check_export_path(Path(out), (".xlsx",), what)


def cmd_flags_publicity(args: argparse.Namespace) -> int:
    from jingzhun import warehouse
    from jingzhun.policy import load_policy
    from jingzhun.publicity import CATEGORIES, period, publicity_list, record_posting, write_publicity

    _xlsx(args.out, "公示名单")
    policy = load_policy(args.config)
    today = clock.today(policy.time_zone)
    start = args.start or today
    if start < today and not args.reissue:
        print(f"refused: 公示开始日期 {start} 早于今天 {today};重印该期已张贴的公示请加 --reissue (--start {start} is "
              f"before today {today}: add --reissue to print again the list posted for that period)", file=sys.stderr)
        return 2
    engine = warehouse.connect(args.warehouse)
    listed = publicity_list(engine, policy, reissue=start if args.reissue else None)
    if listed.empty:
        print(f"没有公示期从 {start} 开始的已张贴名单 (no list was posted for a period starting {start})" if args.reissue
              else "没有尚未公示的已确认对象(拟纳入、拟清退、拟退出、拟返贫),未生成公示名单 (nothing confirmed that was "
                   "not yet posted: no 公示 list written)")
        return 0
    path = write_publicity(listed, Path(args.out), policy, start)
    if not args.reissue:
        record_posting(engine, listed, start, policy, path)
    first, last = period(start, policy)
    counts = ", ".join(f"{CATEGORIES[d]} {n}" for d, n in listed["direction"].value_counts().reindex(
        list(CATEGORIES)).dropna().astype(int).items())
    print(f"公示名单 (publicity list{', re-issued' if args.reissue else ''}): {counts} in "
          f"{listed['village_code'].nunique()} villages, 公示期 {first} to {last}: {path}")
    return 0


def cmd_rules_preview(args: argparse.Namespace) -> int:
    from jingzhun import preview, warehouse
    from jingzhun.policy import load_policy

    folder = Path(args.rules)
    rules = preview.read_rules(folder)
    engine = warehouse.connect(args.warehouse)
    as_of = args.as_of or preview.last_published_as_of(engine)
    preview.print_preview(preview.preview(engine, rules, load_policy(args.config), as_of), folder, as_of, args.sample)
    return 0


def cmd_household(args: argparse.Namespace) -> int:
    from jingzhun import warehouse
    from jingzhun.dossier import write_dossier

    _xlsx(args.out, "入户核实资料")
    counts = write_dossier(warehouse.connect(args.warehouse), args.number.strip(), Path(args.out))
    print(f"入户核实资料 (household dossier): {counts['members']} members, {counts['records']} department records, "
          f"{counts['flags']} flags: {args.out}")
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    from jingzhun import warehouse
    from jingzhun.indicators import write_indicators
    from jingzhun.policy import load_policy

    _xlsx(args.out, "村级指标")
    policy = load_policy(args.config)
    done = write_indicators(warehouse.connect(args.warehouse), policy, Path(args.out))
    print(f"村级指标 (indicators) of run {done['run_id']}: {done['villages']} villages in {done['townships']} townships, "
          f"{done['below']} below the exit threshold of {policy.village_exit_incidence:.0%}: {args.out}")
    if done["not_evaluated"]:
        print("not evaluated in that run: " + ", ".join(done["not_evaluated"]))
    return 0


def cmd_review_import(args: argparse.Namespace) -> int:
    from jingzhun import warehouse
    from jingzhun.review_import import ReviewError, import_review

    from jingzhun.auth import actor_named

    engine = warehouse.connect(args.warehouse)
    try:
        actor = actor_named(engine, args.actor)
        counts = import_review(engine, Path(args.file), actor.username, actor=actor)
    except ReviewError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "no decisions in the workbook")
    return 0


def cmd_review_export(args: argparse.Namespace) -> int:
    from jingzhun import audit, warehouse
    from jingzhun.policy import load_policy
    from jingzhun.review import write_review_workbook

    scope = warehouse.Scope(args.region, tuple(_listed(args.households) or ())) if args.region else None
    engine = warehouse.connect(args.warehouse)
    who = "cli"
    if args.actor:  # whose export it is: the area must be theirs, and the audit log says so
        from jingzhun.auth import actor_named
        from jingzhun.signoff.access import holds

        actor = actor_named(engine, args.actor)
        if not holds(actor, (args.area or args.region or "").ljust(12, "0")[:12]) or not (args.area or args.region):
            print("review export: 该区划不在此用户的辖区内 (the area is not that user's)", file=sys.stderr)
            return 2
        who = actor.username
    if args.area:
        from jingzhun.signoff.workbook import write_area_workbook

        out = write_area_workbook(engine, args.area, Path(args.out), load_policy(args.config))
    else:
        if scope is not None:
            warehouse.check_scope(engine, scope)
        out = write_review_workbook(engine, Path(args.out), scope)
    with engine.begin() as conn:
        audit.record(conn, who, audit.Event.export, "workbook", out.name, args.area or args.region or None, "cli")
    print(f"review workbook: {out}")
    return 0


def _stdin_password() -> str | None:
    """The password a script pipes in: one line on stdin when stdin is not a terminal and has one (None: make one).
    A password is never an argument: the process list shows every argument to every user."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return None
        line = sys.stdin.readline()
    except (OSError, ValueError):  # closed, or not readable (a test's captured stdin)
        return None
    return line.rstrip("\r\n") or None


def _shown_once(password: str) -> None:
    print("密码只显示这一次,请交给本人 (the password, shown this once: give it to the person):")
    print(password)


def cmd_users_add(args: argparse.Namespace) -> int:
    from jingzhun import auth, warehouse

    given = _stdin_password()
    password = auth.add_user(warehouse.connect(args.warehouse), args.name, args.role, args.area, given)
    print(f"用户已添加 (user added): {args.name}, {args.role}, {args.area or '(all)'}")
    if given is None:
        _shown_once(password)
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from jingzhun import auth, warehouse

    frame = auth.list_users(warehouse.connect(args.warehouse))
    if frame.empty:
        print("没有用户 (no users)")
        return 0
    for column in ("locked_until", "created_at"):  # as people read them (Beijing time)
        frame[column] = clock.local_times(frame[column]).dt.strftime("%Y-%m-%d %H:%M").fillna("")
    frame["area"] = frame["area"].replace("", "(all)")
    print(frame.to_string(index=False))
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from jingzhun import auth, warehouse

    auth.disable_user(warehouse.connect(args.warehouse), args.name)
    print(f"用户已停用,会话和令牌已失效 (user disabled; their sessions and API tokens ended): {args.name}")
    return 0


def cmd_users_password(args: argparse.Namespace) -> int:
    from jingzhun import auth, warehouse

    given = _stdin_password()
    password = auth.set_password(warehouse.connect(args.warehouse), args.name, given)
    print(f"密码已更换,原有会话已结束 (password changed; their sessions ended): {args.name}")
    if given is None:
        _shown_once(password)
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from jingzhun import auth, warehouse

    token = auth.new_token(warehouse.connect(args.warehouse), args.name)
    print(f"新的 API 令牌,此前的已作废,只显示这一次 (a new API token for {args.name}; earlier ones revoked; shown this "
          f"once; send it as Authorization: Bearer TOKEN):")
    print(token)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from jingzhun.bench import bench, print_table

    report = bench(args.residents, args.repeat, WORK_DIR, seed=args.seed, as_of=args.as_of, counties=args.counties,
                   engine=args.engine, warehouse_url=args.bench_warehouse)
    print_table(report)
    name = f"bench-{args.counties}x{args.residents}-{args.engine}" if args.counties else f"bench-{args.residents}"
    if args.workbench:
        from jingzhun.bench_web import workbench_load

        url = args.bench_warehouse or f"sqlite:///{(WORK_DIR / 'bench' / f'warehouse-{args.residents}-0.sqlite').resolve()}"
        report["workbench"] = load = workbench_load(url, Path(report["landing"]), args.as_of, WORK_DIR, args.users,
                                                    args.seconds, args.think, args.nightly_nice)
        print(f"workbench: {load['users']} people (reading {load['think_seconds']} s a page) for {load['seconds']} s "
              f"while a nightly run (nice {load['nightly_nice']}) publishes "
              f"(its exit code {load['nightly_exit_code']}), login errors {load['login_errors']}")
        for row in load["pages"] + [{"page": "all", **load["all"]}]:
            print(f"  {row['page']:10} {row['requests']:7} requests {row['errors']:4} errors  p50 {row['p50_ms']} ms  "
                  f"p95 {row['p95_ms']} ms")
        name += "-workbench"
    out = Path(args.json or WORK_DIR / "bench" / f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"results: {out}")
    return 0


SERVE_WORKERS = 2


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 32:
        raise argparse.ArgumentTypeError("1 to 32")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from jingzhun.policy import load_policy
    from jingzhun.web import create_app
    from jingzhun.web.app import LOG_CONFIG, SERVE_CONFIG, SERVE_WAREHOUSE

    policy = load_policy(args.config)  # a wrong policy file is refused here, once, before any process starts
    print(f"精准工作台 (the workbench): http://{args.host}:{args.port}/  (Ctrl-C to stop)")
    # the access log names method, path and status: no identity number is ever in a path or a query string, and
    # every log record is masked of anything shaped like one (privacy.install_log_masking). Behind a reverse proxy on
    # this machine (https), its X-Forwarded-Proto and -For are believed (uvicorn trusts 127.0.0.1 only, or the
    # addresses in FORWARDED_ALLOW_IPS): the session cookie is then Secure and the audit log has the client's address.
    options = dict(host=args.host, port=args.port, proxy_headers=True, server_header=False, date_header=False,
                   log_config=LOG_CONFIG)
    if args.workers == 1:
        uvicorn.run(create_app(args.warehouse, policy), **options)
        return 0
    # several processes: each builds the application from what this one was told (uvicorn starts them by name)
    os.environ[SERVE_WAREHOUSE] = args.warehouse
    os.environ[SERVE_CONFIG] = args.config or ""
    from jingzhun import warehouse

    warehouse.connect(args.warehouse).dispose()  # migrated once here, not by two workers at once
    uvicorn.run("jingzhun.web.app:from_environment", factory=True, workers=args.workers, **options)
    return 0


def _print_run(result: dict) -> None:
    print(f"run {result['run_id']}: {result['status']}")
    print(f"{'source':<20}{'status':<10}{'validation':<15}{'files':>6}{'read':>10}{'valid':>10}{'quarantined':>13}")
    for name, s in result["sources"].items():
        print(f"{name:<20}{s['status']:<10}{s['validation']:<15}{s['files']:>6}{s['rows_read']:>10}{s['rows_valid']:>10}"
              f"{s['rows_quarantined']:>13}")
        if s["message"]:
            print(f"    {s['message']}")
        if s.get("cleaned"):
            print("    已去除控制或不可见字符 (control or invisible characters removed): "
                  + ", ".join(f"{column} {n}" for column, n in s["cleaned"].items()))
        if s.get("ignored"):
            print(f"    未读取的条目 (entries not read, see run_files.ignored): {s['ignored']}")
    regions = result.get("regions") or {}
    if regions.get("message"):
        print(regions["message"])
    elif regions.get("names"):
        print(f"区划名称 (regions reference): {regions['names']} names")
    print(f"flags raised: {result['flags_raised']}")
    if result.get("flags"):
        m = result["flags"]
        print(f"flags: {m['new']} new (新增), {m['still_raised']} still raised (持续), {m['reopened']} reopened (重新打开), "
              f"{m['resolved']} resolved (解除); {m['awaiting_decision']} awaiting a decision (待核实)")
    for code, reason in result["not_evaluated"].items():
        print(f"  not evaluated {code}: {reason}")
    print(f"warehouse: {result['warehouse']}")
    for key, label in (("review_workbook", "review workbook"), ("validation_workbook", "validation workbook"),
                       ("data_docs", "data docs")):
        if result.get(key):
            print(f"{label}: {result[key]}")
    print(f"run folder: {result['run_dir']}")
    for line in next_steps(result):
        print(line)


def next_steps(result: dict) -> list[str]:
    """What people do after a run: nothing of a dry run was published; otherwise the flags await the chain."""
    if result.get("status") != "published":
        return ["下一步 (next): 本次未发布,标记未进入待办 (nothing was published: no flag entered the queues)"]
    url = result["warehouse"]
    return ["下一步 (next):",
            f"  在工作台逐级处理待办 (each level works its queue in the workbench): jingzhun serve --warehouse {url}",
            "  不能上网的村 (a village offline): jingzhun review export --area 村代码 --out 村.xlsx, 填写决定后 (its "
            "decisions filled in) jingzhun review import --as 用户名 村.xlsx"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jingzhun", description="精准: cross-match department registers against the poverty register.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic landing folder and its ground truth")
    g.add_argument("--out", required=True)
    g.add_argument("--households", type=int, default=2000, help="hukou households (per county with --counties)")
    g.add_argument("--counties", type=int, default=None, help="a province: this many real counties of 甘肃省, with "
                                                               "per-county and province-wide files and cross-county cases")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--as-of", type=_date, default=clock.today())
    g.add_argument("--pack", default=None, help="a province pack's folder: its sources and cases are planted too")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="run the nightly flow once")
    r.add_argument("--landing", default="landing")
    r.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: SQLite file in the work folder)")
    r.add_argument("--as-of", type=_date, default=clock.today())
    r.add_argument("--today", type=_date, default=None,
                   help="the run's day: no record may be dated after the later of it and --as-of (default: today in "
                        "the policy's time zone; give it to re-run a night exactly as it was)")
    r.add_argument("--config", default=None, help="YAML or JSON file overriding policy parameters")
    r.add_argument("--region", default=None, help="reconcile only villages whose code starts with this prefix")
    r.add_argument("--households", default=None, help="reconcile only these households (comma-separated ids)")
    r.add_argument("--sources", default=None, help="read only these sources (comma-separated names)")
    r.add_argument("--sources-config", default=None, help="YAML file of sources read from databases (url, query)")
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--earlier", action="store_true", help="a deliberate re-run for an --as-of before the last published "
                                                          "run's: every decided flag is kept as it is")
    r.add_argument("--deployment", default=None, help="YAML file of this deployment's own sources and rules "
                                                      "(default: JINGZHUN_DEPLOYMENT)")
    r.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="where the quality gate and the rules run: in-process (duckdb, the default) or on Apache Spark")
    r.add_argument("--spark-master", default=None, help="with --engine spark: the master URL (default: "
                                                        "JINGZHUN_SPARK_MASTER, else the policy's spark.master, local[*])")
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("flags", help="flags in the warehouse")
    fsub = f.add_subparsers(dest="flags_command", required=True)
    fx = fsub.add_parser("export", help="write the current flags, one row per flag")
    fx.add_argument("--warehouse", default=None)
    fx.add_argument("--out", required=True, help="FILE.csv (UTF-8 with BOM) or FILE.xlsx")
    fx.add_argument("--status", choices=["open", "confirmed", "dismissed", "resolved", "all"], default="open")
    fx.set_defaults(func=cmd_flags_export)

    fp = fsub.add_parser("publicity", help="公示 list: every confirmed change not yet posted (纳入, 清退, 退出, 返贫), "
                                            "identity numbers masked")
    fp.add_argument("--warehouse", default=None)
    fp.add_argument("--out", required=True, help="FILE.xlsx")
    fp.add_argument("--config", default=None)
    fp.add_argument("--start", type=_date, default=None, help="first day of the 公示 period (default: today)")
    fp.add_argument("--reissue", action="store_true", help="print again the list posted for the period starting --start")
    fp.set_defaults(func=cmd_flags_publicity)

    rv = sub.add_parser("review", help="steward decisions")
    rvsub = rv.add_subparsers(dest="review_command", required=True)
    ri = rvsub.add_parser("import", help="read decisions back from a review workbook")
    ri.add_argument("file")
    ri.add_argument("--warehouse", default=None)
    ri.add_argument("--as", dest="actor", required=True, metavar="NAME",
                    help="the user (jingzhun users add) whose decisions these are: recorded as theirs")
    ri.set_defaults(func=cmd_review_import)
    re_ = rvsub.add_parser("export", help="write a fresh review workbook of the open flags (to replace a stale one)")
    re_.add_argument("--warehouse", default=None)
    re_.add_argument("--out", required=True, help="FILE.xlsx")
    re_.add_argument("--area", default=None, help="a village's (12 digits), township's (9) or county's (6) open steps "
                     "of the sign-off chain, for that level (import them with --as a user of that level)")
    re_.add_argument("--region", default=None, help="the steward's workbook: only the flags of villages whose code "
                     "starts with this prefix")
    re_.add_argument("--config", default=None)
    re_.add_argument("--as", dest="actor", default=None, metavar="NAME",
                     help="the user exporting (the area must lie in theirs): the audit log names them")
    re_.add_argument("--households", default=None, help="with --region: only these households (comma-separated ids)")
    re_.set_defaults(func=cmd_review_export)

    ru = sub.add_parser("rules", help="rules a deployment adds or changes")
    rusub = ru.add_subparsers(dest="rules_command", required=True)
    rp = rusub.add_parser("preview", help="run new or changed rules on the registers published last; publishes nothing")
    rp.add_argument("--rules", required=True, help="folder with rules.yaml and rules/*.sql (and deployment.yaml if "
                                                   "its rules read registers of their own)")
    rp.add_argument("--warehouse", default=None)
    rp.add_argument("--config", default=None)
    rp.add_argument("--as-of", type=_date, default=None, help="default: the as_of of the run that published last")
    rp.add_argument("--sample", type=int, default=5, help="flags shown with their evidence, per rule")
    rp.set_defaults(func=cmd_rules_preview)

    h = sub.add_parser("household", help="everything the departments sent about one family, for a home visit")
    h.add_argument("number", help="register household number, hukou household number or a member's identity number")
    h.add_argument("--warehouse", default=None)
    h.add_argument("--out", required=True, help="FILE.xlsx")
    h.set_defaults(func=cmd_household)

    ind = sub.add_parser("indicators", help="per township and village: incidence, exit threshold, flags, a chart")
    ind.add_argument("--warehouse", default=None)
    ind.add_argument("--out", required=True, help="FILE.xlsx")
    ind.add_argument("--config", default=None)
    ind.set_defaults(func=cmd_indicators)

    us = sub.add_parser("users", help="accounts of the workbench and the API (signoff.md): add, list, disable, "
                                      "password, token")
    ussub = us.add_subparsers(dest="users_command", required=True)
    stdin_rule = "password: one line on stdin when it is not a terminal, else a generated one printed once"
    ua = ussub.add_parser("add", help=f"a new account ({stdin_rule})")
    ua.add_argument("name", help="user name: letters, digits, Chinese characters, _ . - (at most 64)")
    ua.add_argument("--role", required=True, help="village | township | county | steward | auditor")
    ua.add_argument("--area", default="", help="division code prefix: village 12 digits, township 9, county 6, "
                                               "steward 2, 4 or 6; an auditor's may be left out (everywhere)")
    ua.set_defaults(func=cmd_users_add)
    ul = ussub.add_parser("list", help="every account (no password hashes)")
    ul.set_defaults(func=cmd_users_list)
    ud = ussub.add_parser("disable", help="the account signs in no more; its sessions and tokens end")
    ud.add_argument("name")
    ud.set_defaults(func=cmd_users_disable)
    up = ussub.add_parser("password", help=f"a new password; the account's sessions end ({stdin_rule})")
    up.add_argument("name")
    up.set_defaults(func=cmd_users_password)
    ut = ussub.add_parser("token", help="a new API token, printed as the last line; earlier ones are revoked")
    ut.add_argument("name")
    ut.set_defaults(func=cmd_users_token)
    for command in (ua, ul, ud, up, ut):
        command.add_argument("--warehouse", default=None)

    b = sub.add_parser("bench", help="time and measure the nightly flow on a synthetic county or province")
    b.add_argument("--residents", type=int, required=True, help="residents (per county with --counties)")
    b.add_argument("--counties", type=int, default=None, help="a synthetic province of this many counties")
    b.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="where the quality gate and the rules run")
    b.add_argument("--warehouse", dest="bench_warehouse", default=None, help="publish into this warehouse (default: a new SQLite file per run)")
    b.add_argument("--repeat", type=int, default=1)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--as-of", type=_date, default=clock.today())
    b.add_argument("--json", default=None, help="where to write the results (default: the work folder)")
    b.add_argument("--workbench", action="store_true", help="then load the workbench: --users people on the queue, "
                   "flag and household pages for --seconds while another nightly run publishes (p50/p95, errors)")
    b.add_argument("--users", type=int, default=20)
    b.add_argument("--seconds", type=float, default=60)
    b.add_argument("--think", type=float, default=0.0, help="mean seconds a person reads a page (0: ask again at once)")
    b.add_argument("--nightly-nice", type=int, default=0, choices=range(0, 20), metavar="0-19",
                   help="CPU niceness of the nightly run beside the workbench (nice -n N jingzhun run)")
    b.set_defaults(func=cmd_bench)

    sv = sub.add_parser("serve", help="the workbench: pages for every role and the JSON API (signoff.md)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--config", default=None, help="YAML or JSON file overriding policy parameters (signoff: …)")
    sv.add_argument("--warehouse", default=None)
    sv.add_argument("--workers", type=_workers, default=SERVE_WORKERS,
                    help=f"server processes (default {SERVE_WORKERS}: pages are Python, one process uses one core)")
    sv.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="generate a sample county and run the nightly flow on it")
    d.add_argument("--households", type=int, default=2000)
    d.add_argument("--out", default=str(WORK_DIR / "demo"))
    d.add_argument("--as-of", type=_date, default=clock.today())
    d.set_defaults(func=cmd_demo)
    return p


EXIT_BUSY = StorageBusy.exit_code  # another run or process holds the warehouse: run again later
TASK_LOGS = "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"


@contextmanager
def quiet_task_logs():
    """While a command runs, a person at the console reads one progress line per stage (the flow logs them), not
    one per task and source: Prefect's task-run logger at WARNING, set up so (the environment) or already set up
    (the logger). Both are restored afterwards: a worker or a flow started later keeps its per-task logs."""
    import logging

    logger = logging.getLogger("prefect.task_runs")
    before_env, before_level = os.environ.get(TASK_LOGS), logger.level
    os.environ[TASK_LOGS] = "WARNING"
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before_level)
        if before_env is None:
            os.environ.pop(TASK_LOGS, None)
        else:
            os.environ[TASK_LOGS] = before_env


# A URL with a password (scheme://user:password@…): the process list shows every argument to every user.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^@]*:[^@]*@")
STOP_SIGNALS = {signal.SIGTERM, signal.SIGHUP}
SAFE_PASSWORD_WAYS = ("the JINGZHUN_WAREHOUSE environment variable, a PostgreSQL password file (~/.pgpass or "
                      "PGPASSFILE) or a service file (PGSERVICEFILE, postgresql+psycopg:///?service=NAME)")


def secret_arguments(argv: list[str]) -> list[int]:
    """The places (1-based) of arguments holding a URL with a password (``--opt=URL`` too), as SQLAlchemy
    would read it (:func:`jingzhun.privacy.url_secret`), or anything shaped like ``scheme://user:secret@``."""
    from jingzhun.privacy import url_secret

    return [i for i, arg in enumerate(argv, 1)
            if _URL_WITH_PASSWORD.search(arg) or url_secret(arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg
                                                              else arg)[1] is not None]


def _watch_stop_signals() -> None:
    """SIGTERM and SIGHUP taken by a thread of their own (every other thread blocks them): it stops the model
    running now (a DuckDB or Spark call does not return to Python until it ends) and then raises the signal in
    the main thread, where :func:`_exit_on_signal` ends the command. Only for the process's own command line."""
    import _thread
    import threading

    from jingzhun.sandbox import interrupt_running

    def wait() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        _thread.interrupt_main(signum)
        interrupt_running()

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # threads started from here on inherit it
    threading.Thread(target=wait, name="stop-signals", daemon=True).start()


def _exit_on_signal(signum, frame) -> None:
    """SIGTERM and SIGHUP end the command as an error would: every ``with`` and ``finally`` runs (a preview's
    temporary folder is removed, a run's lock released and its record marked failed)."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import threading

    from jingzhun.privacy import install_log_masking, private_files

    private_files()  # before anything is written: everything a command writes is its owner's only
    install_log_masking()
    process, argv = argv is None, sys.argv[1:] if argv is None else argv
    secret = secret_arguments(argv)
    if secret:
        print(f"refused: argument {', '.join(map(str, secret))} holds a password in a URL, which every user of "
              f"this machine can read in the process list; give it through {SAFE_PASSWORD_WAYS}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {signum: signal.signal(signum, _exit_on_signal) for signum in STOP_SIGNALS}
        if process:
            _watch_stop_signals()
    try:
        return _command(args)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _command(args: argparse.Namespace) -> int:
    from jingzhun.privacy import SafeError

    try:
        if hasattr(args, "warehouse"):  # the warehouse meant, before any work (only run may create one)
            from jingzhun import warehouse
            from jingzhun.warehouse_check import check_warehouse, parse_url

            given = args.warehouse or os.environ.get("JINGZHUN_WAREHOUSE")
            if given:
                parse_url(given)
            args.warehouse = warehouse.resolve_url(args.warehouse, WORK_DIR)  # its password never goes further
            created = check_warehouse(args.warehouse, may_create=args.command == "run", default=given is None,
                                      unpublished=args.command == "users")
            if created:
                print(created)
        from jingzhun import deployment

        installed = deployment.install_file(getattr(args, "deployment", None))
        if hasattr(args, "deployment"):
            args.deployment = str(installed.path) if installed else None
        with quiet_task_logs():
            return args.func(args)
    except Exception as exc:  # noqa: BLE001 - ours said in one line; a full disk too; anything else as it is
        from jingzhun.privacy import Refused
        from jingzhun.storage import StorageFailed, storage_problem
        from jingzhun.warehouse import WarehouseBusy

        if not isinstance(exc, SafeError):
            exc = storage_problem(exc)
            if exc is None:
                raise
        if isinstance(exc, StorageFailed):
            print(f"failed: {exc}", file=sys.stderr)
            return exc.exit_code
        refused = isinstance(exc, (WarehouseBusy, Refused))
        print(f"refused: {exc}" if refused else f"failed: {exc}", file=sys.stderr)
        return EXIT_BUSY if isinstance(exc, WarehouseBusy) else 2 if refused else 1


if __name__ == "__main__":
    sys.exit(main())
