"""Benchmark: how long the code location takes to import, against importing dagster alone.

Each command runs in a fresh interpreter, alternating, and the median of the runs is compared.
Goal: `import mlops_platform.definitions` at most 1.5x `import dagster`. The full load (building the
Definitions, as a run, step or sensor tick does) is reported too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "import dagster (baseline)": "import dagster",
    "import mlops_platform.definitions": "import mlops_platform.definitions",
    "import + build Definitions": "import mlops_platform.definitions as d; d.defs()",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, code in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            timings[name].append(time.perf_counter() - started)
    baseline = statistics.median(timings["import dagster (baseline)"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:38s} median {median:5.2f} s   ratio {median / baseline:4.2f}")
    print("goal: import mlops_platform.definitions <= 1.50x import dagster")


if __name__ == "__main__":
    main()
