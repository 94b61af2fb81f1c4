"""Landing sensor tick cost: 10,000 landed objects on local disk and on S3 (moto_server), and a year vs a week.

    python benchmarks/landing_sensor.py            # 10,000 objects per layout and store (a few minutes)
    python benchmarks/landing_sensor.py --smoke    # 1,000 objects, well under a minute
    python benchmarks/landing_sensor.py --store local --objects 20000 --steady 50

Part 1, the goal of issue 9 part 3 ("a tick over 10,000 landed objects at most 1 s on local disk and at
most 5 s against moto_server"). The same number of objects lands in two layouts on each store:

- ``year``: spread over the 365 days before today (about 27 a day): the usual shape, where all but the
  watched days are settled after the first tick and never listed again;
- ``window``: all of them within the watched window (``sensor_lookback_days`` 7, so 8 days of about 1,250):
  the worst case, nothing settled, every object listed on every tick.

Local disk is a temporary folder; S3 is a moto_server this script starts on loopback (and stops at the
end, whatever happens), filled by a thread pool of ``put_object``. Timed on each: the first tick (every
object new: it must hand every day to one range run), ``--steady`` ticks with nothing changed (each must
request nothing; median and max), and a tick after one object of a watched day was replaced (it must
request exactly that day). On S3 the store requests of a steady tick are counted (boto3 events). The
baseline, on the same store in the same run: a full listing of every object with its stamp (S3: every
key and ETag, no delimiter; disk: every file lstat'ed), no lookback, which is what a sensor without the
watermark and settled days would pay every tick before comparing anything.

Part 2, kept from the previous version: on local disk, the sensor's work per steady tick over 365 landed
days vs over 7 (goal: a ratio of about 1), with the previous sensor's full walk for reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/cloud/servers.py starts moto_server as the cloud tests do

import dagster as dg  # noqa: E402

from mlops_platform.automation.sensors import build_landing_sensor, landing_tick  # noqa: E402
from mlops_platform.specs import get_spec  # noqa: E402
from mlops_platform.specs.base import ModelSpec  # noqa: E402
from mlops_platform.storage.landing import LandingZone  # noqa: E402
from mlops_platform.storage.landing_local import LocalLandingZone  # noqa: E402

SILENT = logging.getLogger("landing-sensor-benchmark")
SILENT.disabled = True
STORES = ("local", "s3")
LAYOUTS = ("year", "window")
GOAL_SECONDS = {"local": 1.0, "s3": 5.0}
REPLACED_OFFSET = 3  # the replaced object sits in the day three days before today: always watched
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


class BenchmarkFailure(RuntimeError):
    """The sensor did not behave as it must (a request too many or too few): no figure is reported."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkFailure(message)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- what lands ----------------------------------------------------------------------------------
def plan(layout: str, objects: int, today: dt.date, lookback_days: int) -> dict[dt.date, int]:
    """{day: number of objects}: ``objects`` spread as evenly as possible over the layout's days."""
    days = 365 if layout == "year" else lookback_days + 1
    base, extra = divmod(objects, days)
    return {today - dt.timedelta(days=offset): base + (offset <= extra) for offset in range(1, days + 1)}


def object_names(count: int) -> list[str]:
    return [f"{'events' if index % 2 == 0 else 'labels'}-{index}.parquet" for index in range(count)]


def content(day: dt.date, name: str) -> bytes:
    return f"{day}/{name}\n".encode() * 4


# --- the stores ----------------------------------------------------------------------------------
@dataclass
class Store:
    """One store holding one layout: its landing zone, and how to land, replace and list objects raw."""

    name: str
    zone: LandingZone
    land_all: Callable[[dict[dt.date, int]], None]
    replace: Callable[[dt.date, str], None]
    full_listing: Callable[[], int]  # the baseline; returns how many objects it saw
    requests: Counter[str] | None = None  # store requests by operation (S3 only)
    server_pid: int | None = None  # the store's server process (moto_server), whose CPU time is counted too


def local_store(work: Path, spec: ModelSpec, layout: str) -> Store:
    zone = LocalLandingZone(landing_root=str(work / layout / "landing"), quarantine_root=str(work / layout / "q"))
    root = Path(zone.landing_root) / spec.name

    def land_all(counts: dict[dt.date, int]) -> None:
        for day, count in counts.items():
            folder = root / day.isoformat()
            folder.mkdir(parents=True)
            for name in object_names(count):
                (folder / name).write_bytes(content(day, name))

    def replace(day: dt.date, name: str) -> None:  # as a producer does: write aside, rename over
        folder = root / day.isoformat()
        (folder / "_replacement").write_bytes(b"a replaced file\n")
        os.replace(folder / "_replacement", folder / name)

    def full_listing() -> int:
        stamps = {}
        with os.scandir(root) as days:
            for day in days:
                with os.scandir(day.path) as files:
                    for file in files:
                        info = file.stat(follow_symlinks=False)
                        stamps[file.path] = (info.st_mtime_ns, info.st_size, info.st_ino)
        return len(stamps)

    return Store("local", zone, land_all, replace, full_listing)


def s3_store(server: Any, spec: ModelSpec, layout: str) -> Store:
    import boto3
    from botocore.config import Config

    from mlops_platform.storage.landing_s3 import S3LandingZone

    endpoint = server.url
    bucket = f"landing-{layout}-{uuid.uuid4().hex[:8]}"  # one bucket per layout: moto scans a whole bucket
    uploader = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(max_pool_connections=32)
    )
    uploader.create_bucket(Bucket=bucket)
    zone = S3LandingZone(
        landing_root=f"s3://{bucket}/landing",
        quarantine_root=f"s3://{bucket}/quarantine",
        endpoint_url=endpoint,
        region_name="us-east-1",
    )
    prefix = f"landing/{spec.name}"
    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    zone.client().meta.events.register("before-call.s3", count)

    def put(key: str, data: bytes) -> None:
        uploader.put_object(Bucket=bucket, Key=key, Body=data)

    def land_all(counts: dict[dt.date, int]) -> None:
        keys = [(day, name) for day, n in counts.items() for name in object_names(n)]
        with ThreadPoolExecutor(max_workers=24) as pool:
            # list() re-raises the first failed put here: a partial landing zone is never measured.
            list(pool.map(lambda item: put(f"{prefix}/{item[0]}/{item[1]}", content(*item)), keys))

    def replace(day: dt.date, name: str) -> None:
        put(f"{prefix}/{day}/{name}", b"a replaced object\n")

    def full_listing() -> int:
        etags = {}
        for page in zone.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            etags.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
        return len(etags)

    return Store("s3", zone, land_all, replace, full_listing, requests, server.process.pid)


@contextmanager
def moto(work: Path) -> Iterator[Any]:
    """A moto_server on a free loopback port (tests/cloud/servers.py), stopped whatever happens."""
    from tests.cloud import servers

    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
    os.environ.update(credentials, AWS_EC2_METADATA_DISABLED="true")
    server = servers.moto_server(work)
    try:
        yield server
    finally:
        server.stop()


# --- one store, one layout -----------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of this process (the sensor) and of the store's server process (moto_server): what
    a tick costs whatever else shares the cores (the two take turns, so their sum is the idle wall time)."""

    sensor: float
    store: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.sensor - other.sensor, self.store - other.store)

    def __truediv__(self, count: int) -> Cpu:
        return Cpu(self.sensor / count, self.store / count)

    @property
    def total(self) -> float:
        return self.sensor + self.store

    def __str__(self) -> str:
        return f"{self.total:.3f} = {self.sensor:.3f} + {self.store:.3f}"


def cpu_now(store: Store) -> Cpu:
    server = 0.0
    if store.server_pid is not None:
        fields = Path(f"/proc/{store.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return Cpu(time.process_time(), server)


def measured(store: Store, fn: Callable[[], Any]) -> tuple[float, Cpu, Any]:
    """(wall seconds, CPU seconds, result)."""
    before = cpu_now(store)
    seconds, result = timed(fn)
    return seconds, cpu_now(store) - before, result


@dataclass
class Result:
    store: str
    layout: str
    objects: int
    days: int
    land_s: float
    first_s: float
    first_cpu: Cpu
    steady: list[float]
    steady_cpu: Cpu  # mean per steady tick
    replaced_s: float
    dagster_s: float
    full_s: float
    full_cpu: Cpu  # mean per listing
    cursor_bytes: int
    steady_requests: str  # store requests of one steady tick ("-" on disk)
    full_requests: str

    @property
    def steady_median(self) -> float:
        return statistics.median(self.steady)

    @property
    def worst(self) -> float:
        return max(self.first_s, max(self.steady), self.replaced_s)


def bench_case(store: Store, spec: ModelSpec, layout: str, objects: int, steady: int, today: dt.date) -> Result:
    where = f"{store.name}/{layout}"
    zone = store.zone
    counts = plan(layout, objects, today, zone.sensor_lookback_days)
    land_s, _ = timed(lambda: store.land_all(counts))
    check(store.full_listing() == objects, f"{where}: {store.full_listing()} objects landed, expected {objects}")

    def tick(cursor: str | None) -> tuple[list[dg.RunRequest], str]:
        requests, new_cursor, _ = landing_tick(spec, zone, cursor, today, SILENT)
        return requests, new_cursor

    # First tick: every object is new; consecutive days are one range run.
    first_s, first_cpu, (requests, cursor) = measured(store, lambda: tick(None))
    first, last = min(counts).isoformat(), max(counts).isoformat()
    check(len(requests) == 1, f"{where}: the first tick made {len(requests)} run requests, expected one range run")
    got = (requests[0].tags.get(RANGE_START), requests[0].tags.get(RANGE_END))
    check(got == (first, last), f"{where}: the first tick requested {got}, expected the range {first}..{last}")

    # Steady state: nothing changed, so nothing is requested; the cursor stays as it is.
    steady_s = []
    steady_requests = "-"
    cpu_before = cpu_now(store)
    for index in range(steady):
        if store.requests is not None and index == 0:
            store.requests.clear()
        seconds, (requests, again) = timed(lambda: tick(cursor))
        if store.requests is not None and index == 0:
            steady_requests = ", ".join(f"{n} {op}" for op, n in sorted(store.requests.items())) or "none"
        check(not requests, f"{where}: steady tick {index} requested {[r.run_key for r in requests]}")
        check(again == cursor, f"{where}: steady tick {index} changed the cursor")
        steady_s.append(seconds)
    steady_cpu = (cpu_now(store) - cpu_before) / steady

    # One whole Dagster evaluation (context, resource, the sensor function), for scale.
    sensor = build_landing_sensor(spec, dg.define_asset_job(f"{spec.name}_ingest"))

    def dagster_tick() -> None:
        context = dg.build_sensor_context(cursor=cursor, resources={"landing": zone})
        check(not sensor.evaluate_tick(context).run_requests, f"{where}: a whole Dagster tick requested runs")

    dagster_tick()  # the first one builds what later ones reuse
    dagster_s = statistics.median(timed(dagster_tick)[0] for _ in range(3))

    # One object of a watched day replaced under its name: exactly that day re-runs.
    day = today - dt.timedelta(days=REPLACED_OFFSET)
    store.replace(day, object_names(1)[0])
    replaced_s, (requests, cursor) = timed(lambda: tick(cursor))
    keys = [(r.partition_key, r.tags.get(RANGE_START)) for r in requests]
    check(keys == [(day.isoformat(), None)], f"{where}: after replacing one object of {day} the tick requested {keys}")
    requests, _ = tick(cursor)
    check(not requests, f"{where}: the tick after the replacement's run requested it again")

    # Baseline: every object with its stamp, no delimiter, no lookback.
    if store.requests is not None:
        store.requests.clear()
    full = [measured(store, store.full_listing) for _ in range(3)]
    check(all(n == objects for *_, n in full), f"{where}: the full listing saw {[n for *_, n in full]} objects")
    full_requests = "-"
    if store.requests is not None:
        full_requests = ", ".join(f"{n // 3} {op}" for op, n in sorted(store.requests.items()))
    return Result(
        store.name,
        layout,
        objects,
        len(counts),
        land_s,
        first_s,
        first_cpu,
        steady_s,
        steady_cpu,
        replaced_s,
        dagster_s,
        statistics.median(s for s, _, _ in full),
        Cpu(statistics.mean(c.sensor for _, c, _ in full), statistics.mean(c.store for _, c, _ in full)),
        len(cursor),
        steady_requests,
        full_requests,
    )


def report(results: list[Result], steady: int) -> bool:
    print(f"\n== a tick over landed objects (seconds; steady: median and max of {steady} ticks) ==")
    header = (
        f"{'store':5} {'layout':6} {'objects':>7} {'days':>4} {'first':>7} {'steady':>7} {'max':>7} "
        f"{'replaced':>8} {'full list':>9} {'full/steady':>11} {'cursor KB':>9} {'Dagster':>7}  store requests per tick"
    )
    print(header)
    for r in results:
        print(
            f"{r.store:5} {r.layout:6} {r.objects:>7,} {r.days:>4} {r.first_s:>7.3f} {r.steady_median:>7.3f} "
            f"{max(r.steady):>7.3f} {r.replaced_s:>8.3f} {r.full_s:>9.3f} {r.full_s / r.steady_median:>11.1f} "
            f"{r.cursor_bytes / 1024:>9.1f} {r.dagster_s:>7.3f}  steady: {r.steady_requests}; full: {r.full_requests}"
        )
    print("(first: every object new, one range run; replaced: one object replaced, exactly its day requested;")
    print(" full list: the baseline, every object with its stamp; Dagster: one whole evaluate_tick, steady)")
    print("\nCPU seconds per tick = sensor process + store server (moto_server), whatever the load:")
    print(f"{'store':5} {'layout':6} {'first':>23} {'steady (mean)':>23} {'full list':>23} {'full/steady':>11}")
    for r in results:
        ratio = f"{r.full_cpu.total / r.steady_cpu.total:>11.1f}" if r.steady_cpu.total > 0 else f"{'-':>11}"
        print(f"{r.store:5} {r.layout:6} {r.first_cpu!s:>23} {r.steady_cpu!s:>23} {r.full_cpu!s:>23} {ratio}")
    print(f"landing took: {', '.join(f'{r.store}/{r.layout} {r.land_s:.1f} s' for r in results)}")
    all_met = True
    for store in dict.fromkeys(r.store for r in results):
        mine = [r for r in results if r.store == store]
        goal = GOAL_SECONDS[store]
        steady_worst = max(max(r.steady) for r in mine)
        worst = max(mine, key=lambda r: r.worst)
        met = worst.worst <= goal
        all_met &= met
        print(
            f"goal {store}: a tick at most {goal:.0f} s over {mine[0].objects:,} objects: "
            f"{'met' if met else 'NOT MET'} (slowest tick {worst.worst:.3f} s, {worst.layout}; "
            f"slowest steady tick {steady_worst:.3f} s)"
        )
    return all_met


# --- part 2: a year vs a week on local disk (kept from the previous version) ----------------------
def _land_days(root: Path, days: int, files_per_day: int, today: dt.date) -> None:
    for offset in range(1, days + 1):
        folder = root / (today - dt.timedelta(days=offset)).isoformat()
        folder.mkdir(parents=True)
        for index in range(files_per_day):
            stream = "events" if index % 2 == 0 else "labels"
            (folder / f"{stream}-{index}.parquet").write_bytes(b"x" * 64)


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeat)) * 1000


def measure_days(days: int, files_per_day: int, repeat: int) -> dict[str, float]:
    today = dt.datetime.now(dt.UTC).date()
    spec = get_spec("churn").model_copy(update={"start_date": today - dt.timedelta(days=400)})
    sensor = build_landing_sensor(spec, dg.define_asset_job(f"{spec.name}_ingest"))
    with tempfile.TemporaryDirectory() as home:
        landing = LocalLandingZone(landing_root=f"{home}/landing", quarantine_root=f"{home}/quarantine")
        _land_days(Path(landing.landing_root) / spec.name, days, files_per_day, today)
        requests, cursor, _ = landing_tick(spec, landing, None, today, SILENT)
        check(bool(requests), "the first tick must request the landed days")

        def steady_tick() -> None:
            again, _, _ = landing_tick(spec, landing, cursor, today, SILENT)
            check(not again, "a steady tick requested runs")

        def dagster_tick() -> None:
            context = dg.build_sensor_context(cursor=cursor, resources={"landing": landing})
            check(not sensor.evaluate_tick(context).run_requests, "a whole Dagster tick requested runs")

        def previous_cursor() -> dict[str, dict[str, int]]:  # the previous sensor: every file of every day
            return {
                folder: {p.name: p.path.stat().st_mtime_ns for p in paths}
                for folder, paths in landing.scan(spec.name).items()
            }

        def full_walk() -> None:
            json.dumps(previous_cursor(), sort_keys=True)

        full_walk()
        return {
            "tick_ms": _median_ms(steady_tick, repeat),
            "dagster_tick_ms": _median_ms(dagster_tick, 5),
            "cursor_bytes": len(cursor),
            "full_walk_ms": _median_ms(full_walk, max(repeat // 10, 5)),
            "full_walk_cursor_bytes": len(json.dumps(previous_cursor(), sort_keys=True)),
        }


def year_vs_week(files_per_day: int, repeat: int) -> None:
    week = measure_days(7, files_per_day, repeat)
    year = measure_days(365, files_per_day, repeat)
    print(f"\n== local disk, a year of days vs a week: {files_per_day} files per day; medians over {repeat} ticks ==")
    print(f"{'':32} {'7 days':>10} {'365 days':>10} {'ratio':>7}")
    rows = (
        ("sensor work per tick (ms)", "tick_ms"),
        ("cursor (bytes)", "cursor_bytes"),
        ("whole Dagster tick (ms)", "dagster_tick_ms"),
        ("previous sensor: walk (ms)", "full_walk_ms"),
        ("previous sensor: cursor (bytes)", "full_walk_cursor_bytes"),
    )
    for label, key in rows:
        print(f"{label:32} {week[key]:>10.2f} {year[key]:>10.2f} {year[key] / week[key]:>7.2f}")
    print(f"ratio year / week of the sensor's work per tick: {year['tick_ms'] / week['tick_ms']:.2f} (goal: about 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000, help="landed objects per layout and store")
    parser.add_argument("--steady", type=int, default=20, help="steady ticks timed per layout and store")
    parser.add_argument("--store", action="append", choices=STORES, help="repeatable; default both")
    parser.add_argument("--smoke", action="store_true", help="1,000 objects, 5 steady ticks, 30 year/week ticks")
    parser.add_argument("--files-per-day", type=int, default=4, help="part 2: files per day")
    parser.add_argument("--repeat", type=int, default=300, help="part 2: steady ticks timed")
    args = parser.parse_args()
    objects, steady, repeat = (1_000, 5, 30) if args.smoke else (args.objects, args.steady, args.repeat)
    if objects < 365 or steady < 1:
        parser.error("--objects must be at least 365 (one a day over a year) and --steady at least 1")
    # A terminated run still stops moto_server (it runs in its own session, so no signal reaches it).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    before = load_average()
    print(f"load average (1, 5, 15 min) before: {before}")
    today = dt.datetime.now(dt.UTC).date()
    spec = get_spec("churn").model_copy(update={"start_date": today - dt.timedelta(days=400)})
    results = []
    with tempfile.TemporaryDirectory(prefix="landing-sensor-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        for name in args.store or STORES:
            server = stack.enter_context(moto(work)) if name == "s3" else None
            for layout in LAYOUTS:
                store = local_store(work, spec, layout) if server is None else s3_store(server, spec, layout)
                results.append(bench_case(store, spec, layout, objects, steady, today))
    all_met = report(results, steady)
    if args.smoke:
        print(f"(smoke run: {objects:,} objects; the goals are stated for 10,000)")
    year_vs_week(args.files_per_day, repeat)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"\nload average (1, 5, 15 min) before: {before}; after: {load_average()} ({uptime})")
    print(f"every tick within its goal: {'yes' if all_met else 'no'} (2 cores shared: compare load averages)")


if __name__ == "__main__":
    main()
