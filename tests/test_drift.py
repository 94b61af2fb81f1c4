"""Reference profiles, drift scores and performance estimation: the pure functions of ml/."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_platform.ml.drift import Thresholds, compare
from mlops_platform.ml.performance import (
    calibration_curve,
    estimate_metric,
    match_labels,
    realised_metric,
)
from mlops_platform.ml.profile import OTHER, ProfileError, ReferenceProfile, build_profile

KINDS = {"x": "numeric", "k": "numeric", "c": "categorical", "const": "numeric"}


@pytest.fixture(scope="module")
def reference() -> tuple[pd.DataFrame, ReferenceProfile]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, 20_000),
            "k": rng.poisson(3.0, 20_000).astype("int64"),
            "c": rng.choice(["a", "b", "c"], 20_000, p=[0.5, 0.3, 0.2]),
            "const": np.full(20_000, 5.0),
        }
    )
    return frame, build_profile(frame, KINDS, pd.Series(rng.random(20_000)), metric="roc_auc", validation_metric=0.8)


def _day(rng: np.random.Generator, n: int, shift: float = 0.0, p=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "k": rng.poisson(3.0, n).astype("int64"),
            "c": rng.choice(["a", "b", "c"], n, p=list(p)),
            "const": np.full(n, 5.0),
        }
    )


def test_profile_is_compact_canonical_json_with_a_stable_hash(reference) -> None:
    frame, profile = reference
    data = profile.to_json()
    assert len(data) <= 200_000
    again = ReferenceProfile.from_json(data)
    assert again.sha256() == profile.sha256() and again.to_json() == data
    x = profile.columns["x"]
    assert len(x.quantiles) == 1000 and abs(x.mean) < 0.05 and abs(x.std - 1) < 0.05
    assert profile.columns["c"].frequencies == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2}, abs=0.01)
    # The bootstrap noise shrinks with the sample size and is stored per size.
    noise = profile.noise["x"]
    assert noise[100] > noise[10_000] > 0
    rebuilt = build_profile(frame, KINDS, None)
    assert rebuilt.sha256() != profile.sha256()  # different content, different hash


def test_scores_match_scipy_wasserstein_and_jensen_shannon(reference) -> None:
    frame, profile = reference
    rng = np.random.default_rng(2)
    day = _day(rng, 20_000, shift=0.3, p=(0.3, 0.3, 0.4))
    report = {c.column: c for c in compare(profile, day).columns}
    exact = stats.wasserstein_distance(frame["x"], day["x"]) / np.std(frame["x"])
    assert report["x"].score == pytest.approx(exact, rel=0.02)
    shares = day["c"].value_counts(normalize=True)
    exact_js = distance.jensenshannon([0.5, 0.3, 0.2, 0.0], [shares["a"], shares["b"], shares["c"], 0.0])
    assert report["c"].score == pytest.approx(exact_js, abs=0.01)
    assert report["x"].decision == "error" and report["c"].decision == "warn"
    assert report["k"].decision == "ok"


def test_no_shift_does_not_alarm_at_small_or_large_n(reference) -> None:
    _, profile = reference
    rng = np.random.default_rng(3)
    for n in (50, 300, 5_000, 100_000):
        report = compare(profile, _day(rng, n), pd.Series(rng.random(n)))
        assert report.decision == "ok", (n, report.summary())


def test_small_day_threshold_rises_to_the_noise_level(reference) -> None:
    _, profile = reference
    rng = np.random.default_rng(4)
    small = {c.column: c for c in compare(profile, _day(rng, 60)).columns}
    # The bootstrap noise at 60 rows, widened for the reference's own sampling error (20,000 rows: a little).
    widened = profile.noise_at("x", 60) * np.sqrt(1 + 60 / 20_000)
    assert small["x"].warn_at > 0.1 and small["x"].warn_at == pytest.approx(widened)
    large = {c.column: c for c in compare(profile, _day(rng, 20_000)).columns}
    assert large["x"].warn_at == 0.1 and large["x"].error_at == 0.2


def test_warn_and_error_severities_follow_the_thresholds(reference) -> None:
    _, profile = reference
    rng = np.random.default_rng(5)
    decisions = {}
    for shift in (0.0, 0.14, 0.5):
        decisions[shift] = {c.column: c for c in compare(profile, _day(rng, 50_000, shift)).columns}["x"].decision
    assert decisions == {0.0: "ok", 0.14: "warn", 0.5: "error"}
    stricter = compare(profile, _day(rng, 50_000, 0.14), thresholds=Thresholds(warn=0.2, error=0.3))
    assert {c.column: c for c in stricter.columns}["x"].decision == "ok"
    with pytest.raises(ValueError, match="warn <= error"):
        Thresholds(warn=0.3, error=0.2)


def test_empty_day_is_no_data_not_a_pass(reference) -> None:
    _, profile = reference
    report = compare(profile, _day(np.random.default_rng(0), 0))
    assert report.decision == "no_data"
    assert "not assessed" in report.summary()


def test_all_null_column_is_an_error_that_says_so(reference) -> None:
    _, profile = reference
    day = _day(np.random.default_rng(6), 1_000)
    day["x"] = np.nan
    day["c"] = None
    report = {c.column: c for c in compare(profile, day).columns}
    for column in ("x", "c"):
        assert report[column].decision == "error" and report[column].score is None
        assert "all 1000 values are null" in report[column].note


def test_unseen_category_is_named_and_counts_as_drift(reference) -> None:
    _, profile = reference
    rng = np.random.default_rng(7)
    day = _day(rng, 10_000)
    day.loc[:2_999, "c"] = "brand_new"
    result = {c.column: c for c in compare(profile, day).columns}["c"]
    assert result.unseen_categories == {"brand_new": pytest.approx(0.3)}
    assert "'brand_new' 30.0%" in result.note and result.decision == "error"
    # A handful of unseen values is named, but is not drift.
    few = _day(rng, 10_000)
    few.loc[:4, "c"] = "rare"
    result = {c.column: c for c in compare(profile, few).columns}["c"]
    assert result.unseen_categories and result.decision == "ok"


def test_constant_reference_column(reference) -> None:
    _, profile = reference
    rng = np.random.default_rng(8)
    same = {c.column: c for c in compare(profile, _day(rng, 1_000)).columns}["const"]
    assert same.score == 0.0 and same.decision == "ok" and "constant in the reference" in same.note
    day = _day(rng, 1_000)
    day["const"] = 6.0
    moved = {c.column: c for c in compare(profile, day).columns}["const"]
    assert np.isfinite(moved.score) and moved.decision == "error"


def test_null_rate_change_alone_is_flagged(reference) -> None:
    _, profile = reference
    day = _day(np.random.default_rng(9), 10_000)
    day.loc[:3_999, "k"] = np.nan
    result = {c.column: c for c in compare(profile, day).columns}["k"]
    assert result.decision != "ok" and "null rate 40.0%" in result.note


def test_profile_refuses_empty_reference_and_bad_json() -> None:
    with pytest.raises(ProfileError, match="no rows"):
        build_profile(pd.DataFrame({"x": []}), {"x": "numeric"})
    with pytest.raises(ProfileError, match="lacks column"):
        build_profile(pd.DataFrame({"x": [1.0]}), {"y": "numeric"})
    with pytest.raises(ProfileError, match="schema_version"):
        ReferenceProfile.from_json(b'{"schema_version": 99}')


def test_top_k_keeps_the_rest_as_other() -> None:
    frame = pd.DataFrame({"c": [f"v{i % 80}" for i in range(8_000)]})
    profile = build_profile(frame, {"c": "categorical"}, top_k=10, noise_sizes=(100,), replicates=3)
    freq = profile.columns["c"].frequencies
    assert len(freq) == 11 and freq[OTHER] == pytest.approx(0.875)


def test_cbpe_estimates_roc_auc_and_accuracy_of_calibrated_probabilities() -> None:
    rng = np.random.default_rng(10)
    p = rng.beta(2, 5, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    assert estimate_metric(p, "roc_auc") == pytest.approx(realised_metric("roc_auc", y, p >= 0.5, p), abs=0.01)
    assert estimate_metric(p, "accuracy") == pytest.approx(realised_metric("accuracy", y, p >= 0.5, p), abs=0.01)
    assert estimate_metric(p, "f1") == pytest.approx(realised_metric("f1", y, (p >= 0.5).astype(int), p), abs=0.02)
    assert estimate_metric(p, "mae") is None  # no estimate for a regression metric


def test_calibration_corrects_overconfident_probabilities() -> None:
    rng = np.random.default_rng(11)
    true_p = rng.beta(2, 5, 100_000)
    y = (rng.random(len(true_p)) < true_p).astype(int)
    overconfident = np.clip(true_p * 1.8, 0, 1)
    curve = calibration_curve(overconfident[:50_000], y[:50_000])
    realised = realised_metric("accuracy", y[50_000:], overconfident[50_000:] >= 0.5, overconfident[50_000:])
    raw = estimate_metric(overconfident[50_000:], "accuracy")
    calibrated = estimate_metric(overconfident[50_000:], "accuracy", curve)
    assert abs(calibrated - realised) < abs(raw - realised)
    assert calibrated == pytest.approx(realised, abs=0.01)


def test_labels_without_a_prediction_are_counted_not_dropped() -> None:
    ts = pd.Timestamp("2026-10-01 10:00")
    predictions = pd.DataFrame({"id": ["a", "b"], "ts": [ts, ts], "prediction": [1, 0], "probability": [0.9, 0.2]})
    labels = pd.DataFrame(
        {"id": ["a", "b", "zz"], "ts": [ts, ts, ts], "y": [1, 0, 1], "lts": [ts + pd.Timedelta(days=14)] * 3}
    )
    matched = match_labels(predictions, labels, "id", "ts", "y", "lts")
    assert len(matched.frame) == 2 and matched.labels_without_prediction == 1
    assert matched.label_days == ("2026-10-15",)
    with pytest.raises(ValueError, match="both classes"):
        realised_metric("roc_auc", np.array([1, 1]), np.array([1, 1]), np.array([0.9, 0.8]))
    with pytest.raises(ValueError, match="no labelled prediction"):
        realised_metric("mae", np.array([]), np.array([]), None)


def test_a_discrete_numeric_column_is_compared_by_its_values_as_evidently_does() -> None:
    rng = np.random.default_rng(12)
    n = 50_000
    frame = pd.DataFrame({"flag": (rng.random(n) < 0.5).astype("int64"), "x": rng.normal(0, 1, n)})
    profile = build_profile(frame, {"flag": "numeric", "x": "numeric"}, noise_sizes=(100, 1_000, 10_000))
    assert profile.columns["flag"].frequencies == pytest.approx({"0.0": 0.5, "1.0": 0.5}, abs=0.01)
    assert not profile.columns["x"].frequencies

    def flag(share: float, values=(0, 1)) -> dict:
        day = pd.DataFrame({"flag": np.where(rng.random(n) < share, values[1], values[0]), "x": rng.normal(0, 1, n)})
        return {c.column: c for c in compare(profile, day).columns}["flag"]

    # W1 / std of a 0/1 flag is twice its share change: 0.12 here, drift as continuous; 0.042 as values.
    small = flag(0.56)
    assert small.method == "jensen_shannon" and small.decision == "ok"
    assert small.score == pytest.approx(distance.jensenshannon([0.5, 0.5], [0.44, 0.56]), abs=0.01)
    assert flag(0.85).decision == "error"
    # A day that brings the column past five distinct values is scored as continuous, as Evidently does.
    spread = pd.DataFrame({"flag": rng.integers(0, 8, n), "x": rng.normal(0, 1, n)})
    wide = {c.column: c for c in compare(profile, spread).columns}["flag"]
    assert wide.method == "wasserstein_norm" and wide.decision == "error"
    # No false alarm at small n: the noise level of the value comparison is stored too.
    calm = pd.DataFrame({"flag": (rng.random(150) < 0.5).astype("int64"), "x": rng.normal(0, 1, 150)})
    assert compare(profile, calm).decision == "ok"


def test_prediction_drift_uses_the_profile_of_the_version_that_scored_the_day(reference) -> None:
    frame, profile = reference
    rng = np.random.default_rng(13)
    shifted = build_profile(frame, KINDS, pd.Series(rng.random(len(frame)) * 0.2))
    day, prediction = _day(rng, 5_000), pd.Series(rng.random(5_000) * 0.2)
    against_champion = {c.column: c for c in compare(profile, day, prediction).columns}["prediction"]
    against_scorer = {c.column: c for c in compare(profile, day, prediction, prediction_profile=shifted).columns}
    assert against_champion.decision == "error" and against_scorer["prediction"].decision == "ok"
    assert against_scorer["x"].decision == "ok"  # features still against the champion's profile


def test_chart_reads_at_a_glance_for_every_kind_of_column(reference) -> None:
    from mlops_platform.ml.drift import chart

    _, profile = reference
    rng = np.random.default_rng(14)
    moved = chart(profile.columns["x"], pd.Series(rng.normal(3, 1, 1_000)))
    lines = moved.splitlines()
    assert lines[0] == "**x**" and lines[2] == "| bin | reference | current |"
    assert len(lines) == 4 + 11 and lines[-1].startswith("| >= ")  # ten deciles and above the reference's maximum
    constant = chart(profile.columns["const"], pd.Series(np.full(100, 6.0)))
    assert "| = 5 |" in constant and "other values" in constant and "100.0% |" in constant.splitlines()[-1]
    piped = build_profile(pd.DataFrame({"c": ["a|b"] * 10 + ["c"] * 10}), {"c": "categorical"}, None)
    assert "| a\\|b |" in chart(piped.columns["c"], pd.Series(["a|b", "new|one"]))
    assert chart(profile.columns["__prediction__"], pd.Series(rng.random(100))).startswith("**prediction**")


def test_excluded_features_are_not_scored_and_a_spec_names_only_its_features() -> None:
    """A weekend flag is one value all day: against a reference of many days it always drifts."""
    import datetime as dt

    import pydantic

    from mlops_platform.ml.features import compute_features
    from mlops_platform.specs import get_spec
    from mlops_platform.specs.base import ModelSpec, MonitoringPolicy

    spec = get_spec("delivery_eta")
    week = [spec.source.generator(dt.date(2026, 10, 1) + dt.timedelta(days=i), 1, 0.0, 300)[0] for i in range(7)]
    reference = compute_features(pd.concat(week, ignore_index=True), spec)
    profile = build_profile(reference, {f.name: f.kind for f in spec.features})
    saturday = compute_features(spec.source.generator(dt.date(2026, 10, 10), 1, 0.0, 300)[0], spec)
    scored = compare(profile, saturday)
    assert {c.column: c.decision for c in scored.columns}["is_weekend"] == "error"
    excluded = compare(profile, saturday, exclude=spec.monitoring.drift_exclude)
    assert "is_weekend" not in {c.column for c in excluded.columns}
    assert {c.column for c in excluded.columns} == {f.name for f in spec.features} - {"is_weekend"}
    with pytest.raises(pydantic.ValidationError, match=r"drift_exclude names no feature: \['weekend'\]"):
        ModelSpec.model_validate({**dict(spec), "monitoring": MonitoringPolicy(drift_exclude=("weekend",))})


def test_the_performance_check_allows_for_sampling_noise_but_not_for_real_decay() -> None:
    """150 labels cannot tell an MAE of 4.0 from one of 3.4; 2,000 labels of a model twice as wrong can."""
    from mlops_platform.ml.performance import metric_noise, realised_metric, within_tolerance, worse_by

    rng = np.random.default_rng(7)

    def day(rows: int, error_sd: float) -> tuple[float, float | None]:
        label = rng.normal(30, 8, rows)
        prediction = label + rng.normal(0, error_sd, rows)
        return realised_metric("mae", label, prediction, None), metric_noise("mae", label, prediction, None)

    validation, validation_se = day(200, 4.0)
    small, small_se = day(150, 4.6)  # 15% worse: the delivery model's second day in the simulation
    passed, noise = within_tolerance(worse_by(small, validation, False), 0.5, small_se, validation_se)
    assert passed and noise > 0.5, (small, validation, noise)
    decayed, decayed_se = day(2_000, 8.0)
    passed, noise = within_tolerance(worse_by(decayed, validation, False), 0.5, decayed_se, validation_se)
    assert not passed, (decayed, validation, noise)
    # Without noise on either side the tolerance alone decides, as before.
    assert within_tolerance(0.4, 0.5, None, None) == (True, 0.0)
    assert within_tolerance(0.6, 0.5, None, None) == (False, 0.0)


def test_metric_noise_is_the_standard_error_of_the_metric() -> None:
    from mlops_platform.ml.performance import metric_noise

    rng = np.random.default_rng(3)
    label = (rng.random(4_000) < 0.5).astype(int)
    prediction = np.where(rng.random(4_000) < 0.8, label, 1 - label)  # 80% accurate
    se = metric_noise("accuracy", label, prediction, None)
    assert se is not None and abs(se - np.sqrt(0.8 * 0.2 / 4_000)) < 0.002
    small = metric_noise("accuracy", label[:400], prediction[:400], None)
    assert small is not None and 2.5 < small / se < 4.0  # about sqrt(10) times larger with a tenth of the rows
    one_class = np.ones(50, dtype=int)
    assert metric_noise("roc_auc", one_class, one_class, np.full(50, 0.7)) is None


def test_a_small_reference_does_not_make_undrifted_days_drift() -> None:
    """A reference of 100 rows is off by its own sampling error: days of 150 rows from the same
    distribution must not fail for it (4% of such days did before the two-sample noise)."""
    rng = np.random.default_rng(5)

    def distances(n: int) -> pd.DataFrame:  # skewed and rounded, like delivery_eta's distance_km
        return pd.DataFrame({"x": np.clip(rng.gamma(2.0, 1.6, n), 0.2, 25).round(2)})

    decisions = []
    for _ in range(150):
        profile = build_profile(distances(100), {"x": "numeric"}, seed=int(rng.integers(1 << 30)))
        decisions.append(compare(profile, distances(150)).columns[0].decision)
    assert decisions.count("error") == 0, decisions.count("error")
    moved = distances(150) + 2.0  # a real shift is still an error
    assert compare(build_profile(distances(100), {"x": "numeric"}), moved).columns[0].decision == "error"


def test_the_roc_auc_standard_error_agrees_with_a_bootstrap() -> None:
    from sklearn.metrics import roc_auc_score

    from mlops_platform.ml.performance import metric_noise

    rng = np.random.default_rng(8)
    label = (rng.random(1_000) < 0.3).astype(int)
    probability = np.clip(0.3 + 0.25 * (label - 0.3) + rng.normal(0, 0.2, 1_000), 0, 1)
    closed = metric_noise("roc_auc", label, (probability > 0.5).astype(int), probability)
    picks = [rng.integers(0, 1_000, 1_000) for _ in range(300)]
    boot = np.std([roc_auc_score(label[p], probability[p]) for p in picks], ddof=1)
    assert closed is not None and abs(closed - boot) / boot < 0.2, (closed, boot)


def _trained_split(spec, rows: int):
    """A training set of ``rows`` generated rows with its split, and a pipeline trained on it."""
    import datetime as dt

    from mlops_platform.ml.dataset import assign_split
    from mlops_platform.ml.features import compute_features
    from mlops_platform.ml.training import train

    start = dt.date(2026, 9, 1)
    events, _ = spec.source.generator(start, 7, 0.0, rows)
    # The labels of a day's events land label_delay_days later.
    _, labels = spec.source.generator(start + dt.timedelta(days=spec.source.label_delay_days), 7, 0.0, rows)
    frame = compute_features(events, spec).drop_duplicates(subset=[spec.entity_key, spec.event_timestamp])
    keys = [spec.entity_key, spec.event_timestamp]
    frame = frame.merge(labels[[*keys, spec.label]], on=keys)
    frame["split"] = assign_split(frame[spec.entity_key])
    return frame, train(frame, spec)


@pytest.mark.parametrize("rows", [30_000, 3_000])
def test_the_prediction_reference_is_the_held_out_split_when_it_is_large_enough(churn, rows) -> None:
    from mlops_platform.assets.training import MIN_PREDICTION_REFERENCE, reference_profile
    from mlops_platform.ml.profile import PREDICTION, quantiles
    from mlops_platform.ml.training import predict

    frame, pipeline = _trained_split(churn, rows)
    train_rows, validation = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    validation_predicted = predict(pipeline, validation, churn)
    profile = reference_profile(pipeline, train_rows, validation, validation_predicted, churn, 0.8)
    # Live predictions are made on rows the model never saw: so is the reference, when there are enough
    # (a model is more confident on the rows it was fitted on).
    held_out = len(validation) >= MIN_PREDICTION_REFERENCE
    assert held_out == (rows == 30_000)
    expected = validation_predicted if held_out else predict(pipeline, train_rows, churn)
    column = profile.columns[PREDICTION]
    assert column.rows == len(expected)
    assert np.allclose(column.quantiles, quantiles(expected["probability"].to_numpy()), atol=1e-6)
