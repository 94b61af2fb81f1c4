"""Landing sensor tick cost: a landing zone holding a year of days vs one holding a week.

    python benchmarks/landing_sensor.py [--files-per-day 4] [--repeat 300]

Both landing zones are built in the same run, with the same files per day. After a first tick has
handed every day to a run (the steady state of a running platform, where files stay in the landing
zone), the sensor's own work (``landing_tick``: list, lstat, compare, cursor) is timed over many
ticks, and one whole Dagster evaluation (``build_sensor_context`` + ``evaluate_tick``) is timed for
scale. The baseline row is the previous sensor's work on the year: a full walk and a stat of every
file, and a cursor holding every day. Printed: medians, cursor sizes, and the ratio year / week
(goal: about 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from mlops_platform.automation.sensors import build_landing_sensor, landing_tick
from mlops_platform.specs import get_spec
from mlops_platform.storage.landing import LandingZone

SILENT = logging.getLogger("landing-sensor-benchmark")
SILENT.disabled = True


def _land(root: Path, days: int, files_per_day: int, today: dt.date) -> None:
    for offset in range(1, days + 1):
        folder = root / (today - dt.timedelta(days=offset)).isoformat()
        folder.mkdir(parents=True)
        for index in range(files_per_day):
            stream = "events" if index % 2 == 0 else "labels"
            (folder / f"{stream}-{index}.parquet").write_bytes(b"x" * 64)


def _median_ms(fn, repeat: int) -> float:
    durations = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000


def measure(days: int, files_per_day: int, repeat: int) -> dict[str, float]:
    today = dt.datetime.now(dt.UTC).date()
    spec = get_spec("churn").model_copy(update={"start_date": today - dt.timedelta(days=400)})
    sensor = build_landing_sensor(spec, dg.define_asset_job(f"{spec.name}_ingest"))
    with tempfile.TemporaryDirectory() as home:
        landing = LandingZone(landing_root=f"{home}/landing", quarantine_root=f"{home}/quarantine")
        _land(Path(landing.landing_root) / spec.name, days, files_per_day, today)
        requests, cursor, _ = landing_tick(spec, landing, None, today, SILENT)
        assert requests, "the first tick must request the landed days"

        def steady_tick() -> None:
            again, _, _ = landing_tick(spec, landing, cursor, today, SILENT)
            assert not again

        def dagster_tick() -> None:
            context = dg.build_sensor_context(cursor=cursor, resources={"landing": landing})
            assert not sensor.evaluate_tick(context).run_requests

        def full_walk() -> None:  # the previous sensor: every file of every day, every tick
            state = {
                folder: {p.name: p.stat().st_mtime_ns for p in paths}
                for folder, paths in landing.scan(spec.name).items()
            }
            json.dumps(state, sort_keys=True)

        full_walk()
        previous_cursor = {
            folder: {p.name: p.stat().st_mtime_ns for p in paths} for folder, paths in landing.scan(spec.name).items()
        }
        return {
            "tick_ms": _median_ms(steady_tick, repeat),
            "dagster_tick_ms": _median_ms(dagster_tick, 5),
            "cursor_bytes": len(cursor),
            "full_walk_ms": _median_ms(full_walk, max(repeat // 10, 5)),
            "full_walk_cursor_bytes": len(json.dumps(previous_cursor, sort_keys=True)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files-per-day", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    week = measure(7, args.files_per_day, args.repeat)
    year = measure(365, args.files_per_day, args.repeat)
    print(f"{args.files_per_day} files per day; medians over {args.repeat} ticks")
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


if __name__ == "__main__":
    main()
