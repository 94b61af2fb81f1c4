"""Drift of a day's data against a stored reference profile, as effect sizes (never raw p-values).

Numeric columns: the Wasserstein distance between the day's and the reference's quantile functions,
divided by the reference standard deviation. Categorical columns: the Jensen-Shannon distance (natural
log) between category shares. These are what Evidently's DataDriftPreset uses on large data, with 0.1
as its threshold. A column is flagged only above ``max(threshold, noise(n))``: what a no-shift sample
of today's size scores, bootstrapped when the profile was built. Pure: no Dagster, no MLflow.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mlops_platform.ml.profile import (
    DISCRETE_VALUES,
    OTHER,
    PREDICTION,
    WASSERSTEIN_NOISE,
    ColumnProfile,
    ReferenceProfile,
    categorical_values,
    numeric_values,
    quantiles,
    value_key,
)

Decision = Literal["ok", "warn", "error", "no_data"]
ORDER: dict[str, int] = {"ok": 0, "no_data": 1, "warn": 2, "error": 3}


@dataclass(frozen=True)
class Thresholds:
    """Scores at or above ``warn`` (and ``error``) are drift; ``error >= warn``."""

    warn: float = 0.1
    error: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.warn <= self.error):
            raise ValueError(
                f"drift thresholds must satisfy 0 < warn <= error; got warn={self.warn}, error={self.error}"
            )


def numeric_score(reference: ColumnProfile, values: np.ndarray) -> float:
    """W1(reference, values) / max(reference std, 0.001), from the quantile grid."""
    return float(numeric_scores(reference, values[np.newaxis])[0])


def numeric_scores(reference: ColumnProfile, samples: np.ndarray) -> np.ndarray:
    """``numeric_score`` of each row of ``samples`` (one sample per row)."""
    current = quantiles(samples)
    return np.mean(np.abs(current - np.asarray(reference.quantiles)), axis=1) / reference.norm


def discrete_score(reference: ColumnProfile, values: np.ndarray) -> float | None:
    """Jensen-Shannon distance over the values of a discrete numeric column; None when the reference is not
    discrete or the day brings it past DISCRETE_VALUES distinct values (then it is scored as continuous)."""
    if not reference.discrete:
        return None
    distinct, counts = np.unique(values, return_counts=True)
    current = {value_key(v): c / len(values) for v, c in zip(distinct, counts, strict=True)}
    keys = list(dict.fromkeys([*reference.frequencies, *current]))
    if len(keys) > DISCRETE_VALUES:
        return None
    return jensen_shannon(
        np.array([reference.frequencies.get(k, 0.0) for k in keys]), np.array([current.get(k, 0.0) for k in keys])
    )


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log (scipy.spatial.distance.jensenshannon without its import cost)."""
    return float(jensen_shannon_rows(p, np.asarray(q, dtype=float)[np.newaxis])[0])


def jensen_shannon_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``jensen_shannon(p, row)`` of each row of ``q``."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    p, q = p / p.sum(), q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))


def categorical_score(reference: ColumnProfile, values: pd.Series) -> tuple[float, dict[str, float]]:
    """(Jensen-Shannon distance, shares of the categories outside the reference's list)."""
    shares = values.value_counts(normalize=True)
    known = dict(reference.frequencies)
    unseen = {str(k): float(v) for k, v in shares.items() if str(k) not in known}
    keys = [*known, *([OTHER] if OTHER not in known else [])]
    ref = np.array([known.get(k, 0.0) for k in keys])
    cur_known = {str(k): float(v) for k, v in shares.items() if str(k) in known}
    cur = np.array([cur_known.get(k, 0.0) for k in keys])
    cur[keys.index(OTHER)] += sum(unseen.values())
    return jensen_shannon(ref, cur), unseen


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    method: str
    rows: int
    score: float | None
    warn_at: float
    error_at: float
    noise: float
    null_rate_reference: float
    null_rate_current: float
    decision: Decision
    note: str = ""
    unseen_categories: Mapping[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.decision in ("warn", "error")


@dataclass(frozen=True)
class DriftReport:
    rows: int
    columns: tuple[ColumnDrift, ...]
    thresholds: Thresholds

    @property
    def decision(self) -> Decision:
        if self.rows == 0:
            return "no_data"
        decisions: list[Decision] = [c.decision for c in self.columns]
        worst: Decision = max(decisions, key=ORDER.__getitem__, default="ok")
        return worst if worst != "no_data" else "ok"

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    def summary(self) -> str:
        if self.rows == 0:
            return "no rows for the day: drift was not assessed"
        drifted = self.drifted
        if not drifted:
            return f"no drift in {len(self.columns)} column(s) over {self.rows} rows"
        parts = [f"{c.column} {c.decision} ({_describe(c)})" for c in sorted(drifted, key=lambda c: -ORDER[c.decision])]
        return f"{len(drifted)} of {len(self.columns)} column(s) drifted over {self.rows} rows: " + "; ".join(parts)


def _describe(c: ColumnDrift) -> str:
    if c.score is None:
        return c.note
    return f"{c.method} {c.score:.3f} >= {c.error_at if c.decision == 'error' else c.warn_at:.3f}"


def _null_limit(reference_rate: float, n: int, threshold: float) -> float:
    """The null-rate change that counts as drift: the threshold, or 4 binomial sigmas at n if larger."""
    p = min(max(reference_rate, 1.0 / max(n, 1)), 1.0)
    return max(threshold, 4 * math.sqrt(p * (1 - p) / max(n, 1)))


def _two_sample(reference: ColumnProfile, n: int) -> float:
    """How much more noise a day of ``n`` values scores against a reference that is itself a sample.

    The bootstrap noise resamples the reference, so it treats the reference as the truth; but a reference
    of a few hundred values is off by its own sampling error too, and the variance of a difference of two
    samples is the sum of both: sqrt(1 + n / reference values). About 1 for a reference of many days.
    """
    values = reference.rows * (1 - reference.null_rate)
    return math.sqrt(1 + n / values) if values >= 1 else 1.0


def column_drift(
    reference: ColumnProfile, series: pd.Series, profile: ReferenceProfile, thresholds: Thresholds
) -> ColumnDrift:
    rows = len(series)
    method = "wasserstein_norm" if reference.kind == "numeric" else "jensen_shannon"
    discrete: float | None = None
    noise_key = reference.name
    if reference.kind == "numeric":
        values = numeric_values(series)
        n = len(values)
        discrete = discrete_score(reference, values) if n else None
        if discrete is not None:
            method = "jensen_shannon"
        elif reference.discrete and profile.noise.get(reference.name + WASSERSTEIN_NOISE):
            noise_key = reference.name + WASSERSTEIN_NOISE
    else:
        cats = categorical_values(series)
        n = len(cats)
    null_current = 1 - n / rows if rows else 0.0
    noise = profile.noise_at(noise_key, n) * _two_sample(reference, n) if n else math.inf
    warn_at, error_at = max(thresholds.warn, noise), max(thresholds.error, noise)
    base = dict(
        column=reference.name,
        kind=reference.kind,
        method=method,
        rows=rows,
        noise=noise if math.isfinite(noise) else -1.0,
        null_rate_reference=reference.null_rate,
        null_rate_current=null_current,
        warn_at=warn_at if math.isfinite(warn_at) else thresholds.warn,
        error_at=error_at if math.isfinite(error_at) else thresholds.error,
    )
    if rows == 0:
        return ColumnDrift(**base, score=None, decision="no_data", note="no rows")  # type: ignore[arg-type]
    null_change = null_current - reference.null_rate
    null_drift = abs(null_change) >= _null_limit(reference.null_rate, rows, thresholds.warn)
    null_note = f"null rate {null_current:.1%} vs {reference.null_rate:.1%} in the reference" if null_drift else ""
    if n == 0:
        # Every value of the day is null: the distance is undefined, the null rate says it all.
        decision: Decision = "error" if null_drift else "no_data"
        note = f"all {rows} values are null" + (f" ({null_note})" if null_drift else " (as in the reference)")
        return ColumnDrift(**base, score=None, decision=decision, note=note)  # type: ignore[arg-type]
    if reference.kind == "numeric" and not reference.quantiles:
        note = "the reference holds no non-null value; today has " + f"{n}"
        return ColumnDrift(**base, score=None, decision="error", note=note)  # type: ignore[arg-type]
    unseen: dict[str, float] = {}
    notes = []
    if reference.kind == "numeric":
        score = discrete if discrete is not None else numeric_score(reference, values)
        if reference.constant:
            how = "compared as values" if discrete is not None else f"distance normalised by {reference.norm}"
            notes.append(f"constant in the reference ({reference.mean}); {how}")
    else:
        if not reference.frequencies:
            return ColumnDrift(**base, score=None, decision="error", note="the reference holds no category")  # type: ignore[arg-type]
        score, unseen = categorical_score(reference, cats)
        if unseen:
            shown = ", ".join(f"{k!r} {v:.1%}" for k, v in sorted(unseen.items(), key=lambda kv: -kv[1])[:5])
            notes.append(f"{len(unseen)} categor{'y' if len(unseen) == 1 else 'ies'} not in the reference: {shown}")
    decision = "error" if score >= error_at else "warn" if score >= warn_at else "ok"
    if null_drift:
        notes.append(null_note)
        if decision == "ok":
            decision = "warn"
    if n < rows and not null_drift:
        notes.append(f"{rows - n} null value(s) ignored")
    return ColumnDrift(**base, score=score, decision=decision, note="; ".join(notes), unseen_categories=unseen)  # type: ignore[arg-type]


def compare(
    profile: ReferenceProfile,
    features: pd.DataFrame,
    prediction: pd.Series | None = None,
    thresholds: Thresholds | None = None,
    prediction_profile: ReferenceProfile | None = None,
    exclude: Iterable[str] = (),
) -> DriftReport:
    """Drift of every profiled feature but those in ``exclude`` (and of the prediction when given) of one
    day's rows.

    ``prediction_profile`` is the profile of the model version that made the predictions when it is
    not ``profile``'s (a prediction is compared with what its own model predicted on held-out rows).
    """
    thresholds = thresholds or Thresholds()
    excluded = set(exclude)
    scored = [name for name in profile.features if name not in excluded]
    missing = [name for name in scored if name not in features.columns]
    if missing:
        raise ValueError(f"the day's features lack profiled column(s) {missing}")
    results = [column_drift(profile.columns[name], features[name], profile, thresholds) for name in scored]
    scored_by = prediction_profile or profile
    if prediction is not None and PREDICTION in scored_by.columns:
        result = column_drift(scored_by.columns[PREDICTION], prediction, scored_by, thresholds)
        results.append(ColumnDrift(**{**result.__dict__, "column": "prediction"}))
    return DriftReport(rows=len(features), columns=tuple(results), thresholds=thresholds)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (category names come from the data)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")[:60]


def chart(reference: ColumnProfile, series: pd.Series, width: int = 20) -> str:
    """A markdown table of reference vs current shares: deciles of the reference, or categories."""
    rows = []
    pairs: list[tuple[str, float, float]]
    if reference.kind == "numeric":
        q = np.asarray(reference.quantiles)
        values = numeric_values(series)
        if not len(q):
            return ""
        edges = np.unique(q[[int(i * (len(q) - 1) / 10) for i in range(11)]])
        if len(edges) == 1:  # a constant reference: its value, and everything else
            same = float(np.mean(values == edges[0])) if len(values) else 0.0
            pairs = [(f"= {edges[0]:.4g}", 1.0, same), ("other values", 0.0, 1.0 - same if len(values) else 0.0)]
        else:
            # Bins between the reference's deciles; the last holds values at or above the reference's maximum.
            inner = edges[1:]
            ref_bins = np.bincount(np.searchsorted(inner, q, side="right"), minlength=len(inner) + 1) / len(q)
            cur_bins = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1) / max(
                len(values), 1
            )
            labels = [f"< {inner[0]:.4g}", *(f"{a:.4g} .. {b:.4g}" for a, b in itertools.pairwise(inner))]
            labels.append(f">= {inner[-1]:.4g}")
            pairs = [(label, float(r), float(c)) for label, r, c in zip(labels, ref_bins, cur_bins, strict=True)]
    else:
        cur = categorical_values(series).value_counts(normalize=True)
        keys = list(dict.fromkeys([*reference.frequencies, *(str(k) for k in cur.index)]))[:15]
        pairs = [(k, reference.frequencies.get(k, 0.0), float(cur.get(k, 0.0))) for k in keys]
    for label, ref_share, cur_share in pairs:
        rows.append(
            f"| {_cell(label)} | {'█' * round(ref_share * width):<{width}} {ref_share:.1%} "
            f"| {'█' * round(cur_share * width):<{width}} {cur_share:.1%} |"
        )
    title = "prediction" if reference.name == PREDICTION else reference.name
    return "\n".join([f"**{_cell(title)}**", "", "| bin | reference | current |", "| --- | --- | --- |", *rows])
