"""``jingzhun bench``: how fast and how big, stage by stage.

Generates (or reuses) a synthetic landing folder of N residents (or a province of K counties of N residents each),
runs the nightly flow on it (rules in-process or on Spark) with a thread sampling the resident memory of this
process and, apart, of the Java processes it started (Spark's driver, which in local mode is its executor too),
and reports per stage wall time, rows per second and peak memory, next to two floors: the time to merely read the same files with the fastest readers
(python-calamine for xlsx, pyarrow for CSV), and the time for SQLite alone to take the normalised registers the
run loads from Arrow (ADBC bulk ingest: what keeping them in the embedded warehouse costs at the least).
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from datetime import date
from functools import partial
from pathlib import Path

import pyarrow.csv as pacsv
import python_calamine

from jingzhun import clock
from jingzhun.contract import SOURCES
from jingzhun.readers import arrow_encoding, csv_header, sheet_header

STAGES = ("read", "normalise", "validate", "match", "load", "report")
RESIDENTS_PER_HOUSEHOLD = 3.45


class MemorySampler(threading.Thread):
    """Samples VmRSS of this process, and the summed VmRSS of the Java processes it started (Spark's JVM; not the
    temporary Prefect server), every ``interval`` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval, self.samples, self.children, self._done = interval, [], [], threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            now = time.time()
            self.samples.append((now, rss_bytes()))
            self.children.append((now, sum(rss_bytes(pid) for pid in descendants() if command(pid) == "java")))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float, end: float, of: str = "self") -> int:
        samples = self.samples if of == "self" else self.children
        inside = [rss for t, rss in samples if start <= t <= end]
        return max(inside) if inside else 0


def rss_bytes(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # it ended between the listing and the reading
        pass
    return 0


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(pid: int | str = "self") -> list[int]:
    """The processes started by ``pid``, and theirs (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:  # a process (or one of its threads) may end while it is listed: the listing itself then fails
        tasks = [t.name for t in os.scandir(f"/proc/{pid}/task")]
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def landing_for(residents: int, work_dir: Path, seed: int, as_of: date, counties: int | None = None
                ) -> tuple[Path, dict]:
    """A landing folder of about ``residents`` people (per county, ``counties`` of them: a province), generated once
    and reused."""
    from jingzhun.synth import generate
    from jingzhun.synth.province import generate_province

    households = max(50, round(residents / RESIDENTS_PER_HOUSEHOLD))
    if counties is None:
        out = work_dir / "bench" / f"residents-{residents}-seed-{seed}-{as_of:%Y%m%d}"
        make = partial(generate, out, households=households, seed=seed, as_of=as_of)
    else:
        out = work_dir / "bench" / f"province-{counties}x{residents}-seed-{seed}-{as_of:%Y%m%d}"
        make = partial(generate_province, out, counties=counties, households=households, seed=seed, as_of=as_of)
    summary_file = out / "ground_truth" / "summary.json"
    if summary_file.exists():
        return out / "landing", json.loads(summary_file.read_text(encoding="utf-8"))
    return out / "landing", make()


def read_floor(landing: Path) -> tuple[float, int]:
    """Seconds and data rows to read every file with the fastest reader available, doing nothing else
    (the header row is found as the readers find it; rows of another width, such as totals, are counted)."""
    started, rows = time.perf_counter(), 0
    for path in sorted(landing.rglob("*")):
        source = SOURCES.get(path.parent.name)
        if source is None:
            continue
        if path.suffix == ".csv":
            encoding, _, header_at, _ = csv_header(path, source, path.name)
            odd = []
            table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(
                encoding=arrow_encoding(encoding), skip_rows=header_at),
                parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: odd.append(row) or "skip"))
            rows += table.num_rows + len(odd)
        elif path.suffix == ".xlsx":
            book = python_calamine.CalamineWorkbook.from_path(str(path))
            found = []
            for name in book.sheet_names:
                rows_of_sheet = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
                _, at, score = sheet_header(rows_of_sheet, source)
                found.append((score, len(rows_of_sheet) - 1 - at))
            rows += max(found)[1]
    return time.perf_counter() - started, rows


def write_floor(registers: dict[str, Path], work_dir: Path) -> tuple[float, int]:
    """Seconds and rows for SQLite alone to take ``registers`` (source -> the Parquet file of its normalised rows)
    from Arrow, by ADBC bulk ingest into a new, empty file, in one transaction: the fastest way in, reading the
    Parquet files not timed."""
    import adbc_driver_sqlite.dbapi
    import pyarrow.parquet as pq

    path = work_dir / "write-floor.sqlite"
    path.unlink(missing_ok=True)
    tables = {source: pq.read_table(parquet) for source, parquet in registers.items()}
    try:
        started = time.perf_counter()
        with adbc_driver_sqlite.dbapi.connect(str(path)) as con:
            cur = con.cursor()
            rows = sum(cur.adbc_ingest(f"floor_{source}", table, mode="create") for source, table in tables.items())
            con.commit()
        seconds = time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)
    return seconds, rows


def bench(residents: int, repeat: int, work_dir: Path, seed: int = 1, as_of: date | None = None,
          counties: int | None = None, engine: str = "duckdb", warehouse_url: str | None = None) -> dict:
    """Run and measure; ``counties``: a province of that many counties of ``residents`` each; ``engine``: where the
    rules run; ``warehouse_url``: publish there (default: a new SQLite file per run)."""
    from jingzhun.nightly import nightly

    as_of = as_of or clock.today()
    generated = time.perf_counter()
    landing, summary = landing_for(residents, work_dir, seed, as_of, counties)
    generate_seconds = time.perf_counter() - generated
    floor_seconds, floor_rows = read_floor(landing)
    runs, written = [], None
    for i in range(repeat):
        url = warehouse_url or f"sqlite:///{(work_dir / 'bench' / f'warehouse-{residents}-{i}.sqlite').resolve()}"
        if warehouse_url is None:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        sampler = MemorySampler()
        sampler.start()
        result = nightly(landing=str(landing), warehouse_url=url, as_of=as_of, today=as_of, work_dir=str(work_dir / "bench"),
                         engine=engine)
        sampler.stop()
        rows = sum(s["rows_read"] for s in result["sources"].values())
        stages = {}
        for stage in STAGES:
            window = result["phases"].get(stage)
            if window is None:
                stages[stage] = {"seconds": None, "note": "not part of this run"}
                continue
            seconds = window[1] - window[0]
            stages[stage] = {"seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds else None,
                             "peak_rss_mib": round(sampler.peak(*window) / 2**20, 1),
                             "peak_jvm_rss_mib": round(sampler.peak(*window, of="children") / 2**20, 1),
                             "task_seconds": round(result["task_seconds"].get(stage, seconds), 3)}
        total = max(e for _, e in result["phases"].values()) - min(s for s, _ in result["phases"].values())
        runs.append({"stages": stages, "total_seconds": round(total, 3), "rows": rows,
                     "peak_rss_mib": round(max((r for _, r in sampler.samples), default=0) / 2**20, 1),
                     "peak_jvm_rss_mib": round(max((r for _, r in sampler.children), default=0) / 2**20, 1),
                     "flags_raised": result["flags_raised"]})
        if written is None:  # the same registers every repeat: measured once
            written = write_floor({name: Path(result["run_dir"]) / "validated" / f"{name}.parquet"
                                   for name, s in result["sources"].items() if s["status"] == "loaded"},
                                  work_dir / "bench")
    best = min(runs, key=lambda r: r["total_seconds"])
    return {
        "date": clock.today().isoformat(), "machine": {"cpus": _cpus(), "memory_gib": _memory_gib(),
                                                       "python": platform.python_version()},
        "residents": summary["residents"], "rows": best["rows"], "as_of": as_of.isoformat(),
        "counties": len(summary["counties"]) if "counties" in summary else None, "engine": engine,
        "warehouse": "sqlite (one new file per run)" if warehouse_url is None else warehouse_url.split("://")[0],
        "spark": _spark_settings() if engine == "spark" else None,
        "generate_seconds": round(generate_seconds, 3), "landing": str(landing),
        "floor": {"seconds": round(floor_seconds, 3), "rows": floor_rows, "readers": "python-calamine (xlsx), pyarrow (csv)"},
        "write_floor": {"seconds": round(written[0], 3), "rows": written[1],
                        "what": "ADBC bulk ingest of the normalised registers the run loads into an empty SQLite file, one transaction"},
        "best": best, "ratio_to_floor": round(best["total_seconds"] / floor_seconds, 2) if floor_seconds else None,
        "runs": runs,
    }


def _spark_settings() -> dict:
    from jingzhun.policy import Policy
    from jingzhun.spark import master_of

    settings = Policy().spark
    return {"master": master_of(settings), "driver_memory": settings.driver_memory,
            "executor_memory": settings.executor_memory, "shuffle_partitions": settings.shuffle_partitions}


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _memory_gib() -> float:
    with open("/proc/meminfo") as f:
        return round(int(f.readline().split()[1]) / 2**20, 1)


def print_table(report: dict) -> None:
    where = f"{report['counties']} counties, " if report.get("counties") else ""
    print(f"residents {report['residents']:,} ({where}rules on {report.get('engine', 'duckdb')})  rows {report['rows']:,}"
          f"  (best of {len(report['runs'])})")
    print(f"{'stage':<11}{'seconds':>10}{'rows/s':>12}{'peak MiB':>10}{'JVM MiB':>10}")
    for stage, s in report["best"]["stages"].items():
        if s["seconds"] is None:
            print(f"{stage:<11}{'—':>10}  {s['note']}")
        else:
            print(f"{stage:<11}{s['seconds']:>10.2f}{s['rows_per_second'] or 0:>12,}{s['peak_rss_mib']:>10.0f}"
                  f"{s.get('peak_jvm_rss_mib', 0):>10.0f}")
    print(f"{'total':<11}{report['best']['total_seconds']:>10.2f}{'':>12}{report['best']['peak_rss_mib']:>10.0f}"
          f"{report['best'].get('peak_jvm_rss_mib', 0):>10.0f}")
    print(f"read-only floor: {report['floor']['seconds']:.2f} s ({report['floor']['readers']}); "
          f"run / floor = {report['ratio_to_floor']}")
    print(f"write floor: {report['write_floor']['seconds']:.2f} s for {report['write_floor']['rows']:,} normalised rows "
          f"(SQLite alone, from Arrow by ADBC bulk ingest); read floor + write floor = "
          f"{report['floor']['seconds'] + report['write_floor']['seconds']:.2f} s")
