"""Writes synthetic daily files into the landing zone, as an upstream system would."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.landing import LandingZone

FORMATS = ("mixed", "parquet", "csv")


@dataclass(frozen=True)
class LandedDay:
    day: dt.date
    files: tuple[str, ...]  # where each file landed: paths, or object URIs
    rows: int


def _encode(frame: pd.DataFrame, suffix: str) -> bytes:
    buffer = io.BytesIO()
    if suffix == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        buffer.write(frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S").encode())
    return buffer.getvalue()


def simulate(
    spec: ModelSpec,
    landing: LandingZone | Path,
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
    ``landing``: the landing zone (local disk or a bucket), or a folder of this machine. Each file lands
    atomically (no listing sees half of it).
    """
    if isinstance(landing, Path):
        from mlops_platform.storage.landing_local import LocalLandingZone

        landing = LocalLandingZone(landing_root=str(landing), quarantine_root=str(landing.parent / "quarantine"))
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
        tag = f"{seed}-{drift:g}".replace(".", "_")
        events_suffix = "csv" if file_format == "csv" else "parquet"
        labels_suffix = "parquet" if file_format == "parquet" else "csv"
        files = [landing.land(spec.name, day, f"events-{tag}.{events_suffix}", _encode(events, events_suffix))]
        # The labels that land on the day belong to it, whatever day their events were (churn's are two
        # weeks older): landing day by day (--days 1) yields the same files as landing the range at once.
        if len(labels):
            files.append(landing.land(spec.name, day, f"labels-{tag}.{labels_suffix}", _encode(labels, labels_suffix)))
        landed.append(LandedDay(day, tuple(files), len(events) + len(labels)))
    return landed
