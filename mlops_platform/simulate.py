"""Writes synthetic daily files into the landing zone, as an upstream system would."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_platform.specs.base import ModelSpec

FORMATS = ("mixed", "parquet", "csv")


@dataclass(frozen=True)
class LandedDay:
    day: dt.date
    files: tuple[Path, ...]
    rows: int


def _write_atomically(frame: pd.DataFrame, target: Path) -> None:
    """Write under a hidden name and rename: the landing sensor never sees half a file."""
    temporary = target.with_name(f".{target.name}.partial")
    if target.suffix == ".parquet":
        frame.to_parquet(temporary, index=False)
    else:
        frame.to_csv(temporary, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    os.replace(temporary, target)


def simulate(
    spec: ModelSpec,
    landing_root: Path,
    *,
    start: dt.date,
    days: int,
    drift: float = 0.0,
    rows: int = 2000,
    seed: int = 7,
    file_format: str = "mixed",
) -> list[LandedDay]:
    """Land ``days`` days of events and labels from ``start``; events as Parquet, labels as CSV when mixed.

    Each day gets its events and every label that lands on it, also labels of events before ``start``.
    """
    if spec.source.generator is None:
        raise ValueError(f"spec {spec.name!r} has no synthetic generator to simulate")
    if file_format not in FORMATS:
        raise ValueError(f"format {file_format!r} is not one of {FORMATS}")
    if days < 1 or rows < 1:
        raise ValueError("days and rows must be at least 1")
    if start < spec.start_date:
        raise ValueError(f"{spec.name} partitions start on {spec.start_date}; --start {start} is before that")
    landed = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        events, labels = spec.source.generator(day, seed, drift, rows)
        folder = landing_root / spec.name / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        tag = f"{seed}-{drift:g}".replace(".", "_")
        events_suffix = "csv" if file_format == "csv" else "parquet"
        labels_suffix = "parquet" if file_format == "parquet" else "csv"
        files = [folder / f"events-{tag}.{events_suffix}"]
        _write_atomically(events, files[0])
        # The labels that land on the day belong to it, whatever day their events were (churn's are two
        # weeks older): landing day by day (--days 1) yields the same files as landing the range at once.
        if len(labels):
            files.append(folder / f"labels-{tag}.{labels_suffix}")
            _write_atomically(labels, files[1])
        landed.append(LandedDay(day, tuple(files), len(events) + len(labels)))
    return landed
