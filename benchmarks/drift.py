"""Benchmark: drift of a day against a stored reference profile vs Evidently's DataDriftPreset.

1,000,000 reference rows and 1,000,000 current rows of 20 columns (16 numeric of several shapes, two of
them discrete, 4 categorical), with known shifts in some columns (mean shifts, scale changes, a mixture
weight, value-share changes of a count and a flag, a category-share change, a new category) and none in
the others. In the same run:

- Evidently: ``Report([DataDriftPreset()])`` on the two frames (its own choice of test per column: the
  normed Wasserstein distance for numeric columns, Jensen-Shannon for categorical ones and for numeric
  ones with at most 5 distinct values, at this size, threshold 0.1), timed end to end;
- the platform: ``build_profile`` of the reference once (as at training time, timed apart), then
  ``compare(profile, current)``, the work a daily drift run does, timed.

Then: the per-column decisions of both (goal: the same), the speed ratio Evidently / compare (goal
>= 50x), false positives over no-shift replicates at n = 10,000 and 1,000,000 (goal: none), and the
size of the profile as JSON (goal <= 200 KB).

    python benchmarks/drift.py                       # the full run (minutes on 2 cores)
    python benchmarks/drift.py --smoke               # 20,000 rows, 5 replicates, seconds
    python benchmarks/drift.py --replicates-1m 20    # fewer no-shift replicates at 1,000,000 rows
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_platform.ml.drift import compare
from mlops_platform.ml.profile import Kind, build_profile

NUMERIC = [f"n{i:02d}" for i in range(16)]
CATEGORICAL = [f"c{i}" for i in range(4)]
KINDS: dict[str, Kind] = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
CITIES = np.array([f"city_{i:02d}" for i in range(12)])

# column -> (what changes in the current frame, whether a drift decision is expected at 0.1)
SHIFTS = {
    "n00": ("normal, mean +0.3 sd", True),
    "n01": ("normal, scale x1.5", True),
    "n02": ("normal, mean +0.05 sd (below the threshold)", False),
    "n03": ("exponential, scale x1.25", True),
    "n04": ("poisson(3) -> poisson(3.4)", True),
    "n05": ("lognormal, sigma 0.5 -> 0.6", True),
    "n06": ("bimodal, mixture weight 0.5 -> 0.6", True),
    # Discrete numeric columns (at most 5 values): Evidently compares them by Jensen-Shannon. W1 / std of a
    # 0/1 flag is twice its share change, so scoring them as continuous would call n13 drift.
    "n13": ("0/1 flag, share 0.50 -> 0.56 (below the threshold as values)", False),
    "n14": ("0..3 count, shares (0.4, 0.3, 0.2, 0.1) -> (0.2, 0.3, 0.3, 0.2)", True),
    "c0": ("shares (0.5, 0.3, 0.2) -> (0.3, 0.3, 0.4)", True),
    "c1": ("a new category takes 15%", True),
}


def make(n: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = shifted
    columns: dict[str, np.ndarray] = {
        "n00": rng.normal(0.3 if s else 0.0, 1.0, n),
        "n01": rng.normal(0.0, 1.5 if s else 1.0, n),
        "n02": rng.normal(0.05 if s else 0.0, 1.0, n),
        "n03": rng.exponential(1.25 if s else 1.0, n),
        "n04": rng.poisson(3.4 if s else 3.0, n).astype("float64"),
        "n05": rng.lognormal(0.0, 0.6 if s else 0.5, n),
        "n06": np.where(rng.random(n) < (0.6 if s else 0.5), rng.normal(-2, 0.5, n), rng.normal(2, 0.5, n)),
    }
    for i in (7, 8, 9, 10, 11, 12, 15):  # unshifted columns of assorted shapes
        shape = i % 3
        columns[f"n{i:02d}"] = (
            rng.normal(10 * i, i, n) if shape == 0 else rng.gamma(2.0, i, n) if shape == 1 else rng.uniform(0, i, n)
        )
    columns["n13"] = (rng.random(n) < (0.56 if s else 0.5)).astype("float64")
    columns["n14"] = rng.choice(4, n, p=[0.2, 0.3, 0.3, 0.2] if s else [0.4, 0.3, 0.2, 0.1]).astype("float64")
    columns = {f"n{i:02d}": columns[f"n{i:02d}"] for i in range(16)}
    c0 = rng.choice(["a", "b", "c"], n, p=[0.3, 0.3, 0.4] if s else [0.5, 0.3, 0.2])
    c1 = rng.choice(CITIES, n)
    if s:
        c1 = np.where(rng.random(n) < 0.15, "city_new", c1)
    columns["c0"], columns["c1"] = c0, c1
    columns["c2"] = rng.choice(["yes", "no"], n, p=[0.2, 0.8])
    columns["c3"] = rng.choice(["card", "debit", "invoice", "cash"], n, p=[0.4, 0.3, 0.2, 0.1])
    frame = pd.DataFrame(columns)
    for c in CATEGORICAL:
        frame[c] = frame[c].astype(object)
    return frame


def evidently_decisions(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[dict[str, tuple[float, bool]], float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    elapsed = time.perf_counter() - start
    found = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value = float(metric["value"])
            found[config["column"]] = (value, value >= float(config["threshold"]))
    return found, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20,000 rows, 5 replicates")
    parser.add_argument("--replicates", type=int, default=100, help="no-shift replicates at n = 10,000")
    parser.add_argument("--replicates-1m", type=int, default=100, help="no-shift replicates at n = 1,000,000")
    parser.add_argument("--repeat", type=int, default=5, help="timed compare() runs (the median is reported)")
    args = parser.parse_args()
    rows, reps, reps_1m = args.rows, args.replicates, args.replicates_1m
    if args.smoke:
        rows, reps, reps_1m = 20_000, 5, 2

    reference, current = make(rows, seed=1, shifted=False), make(rows, seed=2, shifted=True)
    compare(build_profile(reference.head(1_000), KINDS, noise_sizes=(100,), replicates=2), current.head(1_000))
    start = time.perf_counter()
    profile = build_profile(reference, KINDS)
    build_seconds = time.perf_counter() - start
    size = len(profile.to_json())

    times = []
    for _ in range(args.repeat):
        gc.collect()
        start = time.perf_counter()
        report = compare(profile, current)
        times.append(time.perf_counter() - start)
    ours_seconds = float(np.median(times))
    ours = {c.column: c for c in report.columns}

    gc.collect()
    evidently_decisions(reference.head(2_000), current.head(2_000))  # warm-up: Evidently's lazy imports
    theirs, evidently_seconds = evidently_decisions(reference, current)

    print(
        f"rows: reference {rows:,}, current {rows:,}; columns: {len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical"
    )
    print("\n| column | shift | expected | method | platform score | platform | evidently score | evidently |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | --- |")
    agree = 0
    for column in [*NUMERIC, *CATEGORICAL]:
        shift, expected = SHIFTS.get(column, ("none", False))
        mine = ours[column]
        value, flagged = theirs[column]
        agree += mine.drifted == flagged
        print(
            f"| {column} | {shift} | {'drift' if expected else '-'} | {mine.method} | {mine.score:.4f} | "
            f"{'drift' if mine.drifted else '-'} | {value:.4f} | {'drift' if flagged else '-'} |"
        )
    expected_ok = sum(ours[c].drifted == SHIFTS.get(c, ("", False))[1] for c in ours)
    print(f"\nsame decision as Evidently: {agree} of {len(ours)} columns; as expected: {expected_ok} of {len(ours)}")
    print(f"Evidently DataDriftPreset (1 run): {evidently_seconds:.2f} s")
    print(f"platform compare() vs stored profile (median of {args.repeat}): {ours_seconds:.3f} s")
    print(f"ratio Evidently / compare: {evidently_seconds / ours_seconds:.1f}x (goal >= 50x)")
    print(
        f"profile build (once per model version, at training time): {build_seconds:.2f} s; "
        f"ratio with the build included: {evidently_seconds / (ours_seconds + build_seconds):.1f}x"
    )
    print(f"profile size: {size:,} bytes as JSON (goal <= 200,000)")

    for n, count in ((10_000, reps), (1_000_000 if not args.smoke else rows, reps_1m)):
        false_positives, worst = 0, 0.0
        start = time.perf_counter()
        for replicate in range(count):
            sample = make(n, seed=1000 + replicate, shifted=False)
            result = compare(profile, sample)
            false_positives += bool(result.drifted)
            worst = max(worst, max(c.score / c.warn_at for c in result.columns if c.score is not None))
        print(
            f"no-shift replicates at n={n:,}: {count}, with any column flagged: {false_positives} "
            f"(largest score / threshold {worst:.2f}; {time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    main()
