"""Ingestion from the landing zone: bad files go to quarantine with a reason, good ones still land."""

import datetime as dt

import dagster as dg
import pandas as pd

from mlops_platform.ml.features import compute_features
from mlops_platform.storage.delta import read_table
from mlops_platform.storage.landing import REASON_SUFFIX
from tests.conftest import START, day


def _all_files(root) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.endswith(REASON_SUFFIX)}


def test_bad_files_are_quarantined_with_reasons_and_good_files_ingested(platform, churn) -> None:
    platform.land(churn, days=1, rows=300)
    folder = platform.settings.landing_root / "churn" / day(0)
    good = pd.read_parquet(next(folder.glob("events-*.parquet")))
    good.drop(columns=["plan"]).to_parquet(folder / "events-wrong-columns.parquet")
    good.assign(tenure_months="long").to_csv(folder / "events-wrong-types.csv", index=False)
    (folder / "events-corrupt.parquet").write_bytes(b"PAR1 this is not parquet")
    good.iloc[0:0].to_csv(folder / "events-empty.csv", index=False)
    (folder / "notes.txt").write_text("hello")
    (folder / ".events-uploading.parquet").write_bytes(b"partial")
    before = _all_files(platform.settings.landing_root)

    result = platform.run(churn, ["raw", "labels"], partition_key=day(0))

    assert result.success
    raw = platform.latest_metadata(churn, "raw", day(0))
    assert raw["dagster/row_count"] == 300
    assert set(raw["files_quarantined_this_run"]) == {
        "events-wrong-columns.parquet",
        "events-wrong-types.csv",
        "events-corrupt.parquet",
        "events-empty.csv",
        "notes.txt",
    }
    quarantine = platform.settings.quarantine_root / "churn" / day(0)
    reasons = {p.name[: -len(REASON_SUFFIX)]: p.read_text() for p in quarantine.glob(f"*{REASON_SUFFIX}")}
    assert "missing columns ['plan']" in reasons["events-wrong-columns.parquet"]
    assert "'tenure_months' is not int64" in reasons["events-wrong-types.csv"]
    assert "unreadable parquet file" in reasons["events-corrupt.parquet"]
    assert "no rows" in reasons["events-empty.csv"]
    assert "must start with 'events-' or 'labels-'" in reasons["notes.txt"]
    # Nothing is lost: every file is still either in the landing zone or in quarantine.
    after = _all_files(platform.settings.landing_root) | _all_files(platform.settings.quarantine_root)
    assert after == before
    assert (folder / ".events-uploading.parquet").exists()  # in-progress upload left alone
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "files_valid" and not check.passed
    assert len(check.metadata["quarantined"].value) == 5


def test_reingesting_a_day_leaves_no_duplicate_rows(platform, churn) -> None:
    platform.land(churn, days=1, rows=200)
    platform.run(churn, ["raw", "labels"], partition_key=day(0))
    folder = platform.settings.landing_root / "churn" / day(0)
    # The same file landed a second time under another name: still one row per event.
    events_file = next(folder.glob("events-*.parquet"))
    (folder / "events-copy.parquet").write_bytes(events_file.read_bytes())
    platform.run(churn, ["raw", "labels"], partition_key=day(0))
    platform.run(churn, ["raw", "labels"], partition_key=day(0))
    meta = platform.latest_metadata(churn, "raw", day(0))
    table = read_table(str(meta["delta_uri"]), int(meta["delta_version"]))
    assert len(table) == 200
    assert meta["delta_version"] == 2
    assert meta["duplicate_rows_dropped"] == 200
    check_passed = platform.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["churn", "raw"]), "files_valid")]
    )
    assert all(record.status.value == "SUCCEEDED" for record in check_passed.values())


def test_a_day_without_files_records_zero_rows(platform, churn) -> None:
    result = platform.run(churn, ["raw", "labels"], partition_key=day(3))
    assert result.success
    assert platform.latest_metadata(churn, "raw", day(3))["dagster/row_count"] == 0


def test_features_asset_invoked_directly(platform, churn) -> None:
    features_asset = next(a for a in platform.assets if dg.AssetKey(["churn", "features"]) in a.keys)
    raw, _ = churn.source.generator(START, 3, 0.0, 40)
    raw["day"] = raw["event_ts"].dt.date
    context = dg.build_asset_context(partition_key=START.isoformat())
    result = features_asset(context=context, raw=raw)
    pd.testing.assert_frame_equal(result, compute_features(raw, churn))
    assert (result["day"] == dt.date.fromisoformat(day(0))).all()


def test_a_range_of_days_is_ingested_in_one_run_and_one_commit(platform, churn) -> None:
    platform.land(churn, days=3, rows=100)
    result = dg.materialize(
        platform.assets,
        selection=dg.AssetSelection.assets(*[dg.AssetKey(["churn", n]) for n in ("raw", "labels", "features")]),
        resources=platform.resources,
        instance=platform.instance,
        tags={"dagster/asset_partition_range_start": day(0), "dagster/asset_partition_range_end": day(2)},
    )
    assert result.success
    meta = platform.latest_metadata(churn, "features", day(1))
    assert meta["dagster/row_count"] == 300
    assert meta["delta_version"] == 0
    table = read_table(str(meta["delta_uri"]), 0)
    assert table.groupby("day").size().to_dict() == {START + dt.timedelta(days=i): 100 for i in range(3)}
    raw = platform.latest_metadata(churn, "raw", day(2))
    assert sorted(raw["files_ingested"]) == [day(0), day(1), day(2)]
