"""Benchmark: time and peak memory of each stage as the number of days grows (issue 13).

For each number of days, lands that many days of ``churn`` at ``--rows`` events a day, then runs each
stage in its own process (so each peak RSS is that stage's alone), through Dagster as the platform
runs it, on one persistent instance:

    ingest+features   one range run over every day (raw, labels, features)
    training_set      the out-of-core point-in-time join of the whole window
    model             model, evaluation, champion (``--max-training-rows`` caps the train sample)
    predictions       one range run scoring every day
    in-memory join    today's in-memory way for comparison: every partition read as pandas, then
                      ``build_training_set`` (only with ``--baseline``, where it fits in memory)

    python benchmarks/scale.py --smoke                        # small numbers, a minute
    python benchmarks/scale.py --rows 1000000 --days 10 30 60 # the issue's sizes (hours, many GB of disk)

Peak RSS is the child's ``ru_maxrss`` (``os.wait4``). Not a timed test: run it by hand on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.date(2026, 9, 1)
STAGES = ("ingest+features", "training_set", "model", "predictions")


def _definitions(home: Path, max_training_rows: int | None):
    from mlops_platform.definitions import build_definitions
    from mlops_platform.settings import Settings
    from mlops_platform.specs import get_spec

    spec = get_spec(os.environ.get("MLOPS_BENCH_SPEC", "churn"))
    spec = spec.model_copy(update={"max_training_rows": max_training_rows, "training_window_days": 10_000})
    return spec, build_definitions(Settings(home=home / "home"), [spec])


def run_stage(stage: str, home: Path, days: int, max_training_rows: int | None) -> dict:
    """One stage in this process (the child); returns what it measured besides time and memory."""
    import dagster as dg

    spec, defs = _definitions(home, max_training_rows)
    first, last = START.isoformat(), (START + dt.timedelta(days=days - 1)).isoformat()
    span = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    names = {
        "ingest+features": (["raw", "labels", "features"], span),
        "training_set": (["training_set"], None),
        "model": (["model", "evaluation", "champion"], None),
        "predictions": (["predictions"], span),
    }
    (home / "dagster").mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(tempdir=str(home / "dagster"))
    if stage == "in-memory join":
        from mlops_platform.ml.dataset import build_training_set
        from mlops_platform.storage.delta import read_days_at_versions
        from mlops_platform.storage.io_manager import recorded_versions

        lake = defs.resources["delta_io_manager"].lake
        frames = {}
        for name in ("features", "labels"):
            key = dg.AssetKey([spec.name, name])
            versions = recorded_versions(instance, key, _keys(days))
            frames[name] = read_days_at_versions(
                lake.uri(key), {dt.date.fromisoformat(k): v for k, v in versions.items() if k}
            )
        built = build_training_set(frames["features"], frames["labels"], spec)
        return {"rows": len(built.frame)}
    selected, tags = names[stage]
    if stage == "model":  # the model's alias store and schema exist before timing in a running platform
        defs.resources["registry"].client()
    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.assets(*[dg.AssetKey([spec.name, n]) for n in selected]),
        resources=defs.resources,
        instance=instance,
        tags=tags,
    )
    if not result.success:
        raise SystemExit(f"stage {stage} failed")
    rows = {}
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        name = event.asset_key.path[-1]
        if "dagster/row_count" in meta and name not in rows:
            rows[name] = meta["dagster/row_count"].value
        if "rows_trained_on" in meta:
            rows["trained_on"] = meta["rows_trained_on"].value
    return rows


def _keys(days: int) -> list[str]:
    return [(START + dt.timedelta(days=i)).isoformat() for i in range(days)]


def measure(stage: str, home: Path, days: int, max_training_rows: int | None) -> dict:
    """Run ``stage`` in a child process; its wall time, peak RSS and what it reported."""
    out = home / "stage.json"
    command = [sys.executable, __file__, "--child", stage, "--home", str(home), "--days", str(days)]
    if max_training_rows:
        command += ["--max-training-rows", str(max_training_rows)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "MLOPS_BENCH_OUT": str(out)})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {stage} at {days} days failed (status {status})")
    return {"stage": stage, "seconds": seconds, "peak_gb": usage.ru_maxrss / 1024**2, **json.loads(out.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="events a day")
    parser.add_argument(
        "--spec", default="churn", help="churn (labels 14 days after their events) or delivery_eta (the same day)"
    )
    parser.add_argument("--days", type=int, nargs="+", default=[10, 30, 60])
    parser.add_argument("--max-training-rows", type=int, default=500_000)
    parser.add_argument("--baseline", action="store_true", help="also time today's in-memory join")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="the stages to run, in order")
    parser.add_argument("--smoke", action="store_true", help="5,000 rows a day over 16 and 20 days")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_stage(args.child, Path(args.home), args.days[0], args.max_training_rows)
        Path(os.environ["MLOPS_BENCH_OUT"]).write_text(json.dumps(result))
        return
    if args.smoke:
        args.rows, args.days, args.baseline = 5_000, [16, 20], True
    os.environ["MLOPS_BENCH_SPEC"] = args.spec
    from mlops_platform.settings import Settings
    from mlops_platform.simulate import simulate
    from mlops_platform.specs import get_spec

    results = []
    for days in args.days:
        with tempfile.TemporaryDirectory(prefix="mlops-scale-") as tmp:
            home = Path(tmp)
            started = time.perf_counter()
            landing = Settings(home=home / "home").landing_root
            simulate(get_spec(args.spec), landing, start=START, days=days, rows=args.rows)
            landed = time.perf_counter() - started
            print(f"{args.spec}: {days} days x {args.rows:,} rows landed in {landed:.0f} s", flush=True)
            stages = [*args.stages, *(["in-memory join"] if args.baseline else [])]
            for stage in stages:
                result = {"days": days, **measure(stage, home, days, args.max_training_rows)}
                results.append(result)
                print(json.dumps(result), flush=True)
    print(f"\n{args.spec}, {args.rows:,} rows a day: seconds and peak RSS (GB) per stage")
    print(f"{'stage':<18}" + "".join(f"{f'{d} d s':>12}{f'{d} d GB':>12}" for d in args.days))
    for stage in [*STAGES, "in-memory join"]:
        row = {r["days"]: r for r in results if r["stage"] == stage}
        if row:
            cells = "".join(f"{row[d]['seconds']:>12.1f}{row[d]['peak_gb']:>12.2f}" for d in args.days if d in row)
            print(f"{stage:<18}{cells}")


if __name__ == "__main__":
    main()
