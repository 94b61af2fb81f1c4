"""Hostile and careless landed files: each is refused with a bounded reason, the day's good files land."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_platform.ml import validation
from mlops_platform.storage.delta import read_table
from mlops_platform.storage.landing import REASON_SUFFIX
from mlops_platform.storage.landing_local import LocalLandingZone

DST_DAY = dt.date(2026, 10, 25)  # Europe/Berlin leaves summer time at 03:00 local (01:00 UTC)
SECRET = "aws_secret_access_key=AKIAEXAMPLESECRET"


def _folder(platform, spec, day: dt.date) -> Path:
    folder = platform.settings.landing_root / spec.name / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _events(spec, day: dt.date, rows: int = 20) -> pd.DataFrame:
    events, _ = spec.source.generator(day, 7, 0.0, rows)
    return events


def _labels(spec, day: dt.date, rows: int = 20) -> pd.DataFrame:
    _, labels = spec.source.generator(day, 7, 0.0, rows)
    return labels[labels[spec.label_timestamp].dt.date == day]


def _run(platform, spec, day: dt.date) -> dg.ExecuteInProcessResult:
    return platform.run(spec, ["raw", "labels"], partition_key=day.isoformat())


def _reasons(platform, spec, day: dt.date) -> dict[str, str]:
    folder = platform.settings.quarantine_root / spec.name / day.isoformat()
    return {p.name[: -len(REASON_SUFFIX)]: p.read_text() for p in folder.glob(f"*{REASON_SUFFIX}")}


def _table(platform, spec, name: str, day: dt.date) -> pd.DataFrame:
    meta = platform.latest_metadata(spec, name, day.isoformat())
    return read_table(str(meta["delta_uri"]), int(meta["delta_version"]))


def _event_log_text(platform, result) -> str:
    records = platform.instance.all_logs(result.run_id)
    return "\n".join(str(record.dagster_event or "") + " " + (record.user_message or "") for record in records)


def _with_limits(platform, **limits) -> None:
    landing = platform.resources["landing"]
    platform.resources = {
        **platform.resources,
        "landing": LocalLandingZone(
            landing_root=landing.landing_root, quarantine_root=landing.quarantine_root, **limits
        ),
    }


def test_a_berlin_time_csv_crossing_the_dst_change_is_read_as_utc(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    events = _events(delivery, DST_DAY, rows=6)
    utc = pd.Series(pd.date_range("2026-10-25T00:30:00", periods=6, freq="4h"))  # 00:30 .. 20:30 UTC
    local = utc.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    berlin = events.assign(event_ts=local.map(lambda t: t.isoformat()))
    assert berlin["event_ts"].str[-6:].nunique() == 2  # +02:00 before the change, +01:00 after
    berlin.to_csv(folder / "events-berlin.csv", index=False)
    mixed = berlin.assign(event_ts=[*berlin["event_ts"][:3], *utc[3:].dt.strftime("%Y-%m-%dT%H:%M:%S")])
    mixed.to_csv(folder / "events-mixed.csv", index=False)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    raw = _table(platform, delivery, "raw", DST_DAY)
    assert sorted(raw["event_ts"]) == list(utc)
    reasons = _reasons(platform, delivery, DST_DAY)
    assert set(reasons) == {"events-mixed.csv"}
    assert "3 values have no UTC offset while 3 have one" in reasons["events-mixed.csv"]


def test_any_error_reading_one_file_quarantines_that_file_only(platform, delivery, monkeypatch) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    _events(delivery, DST_DAY).to_parquet(folder / "events-good.parquet")
    _events(delivery, DST_DAY).to_parquet(folder / "events-odd.parquet")
    real_conform = validation.conform

    def conform_failing_on_one_file(frame, schema, **kwargs):
        if len(frame) and frame.attrs.get("poison"):
            raise KeyError("connection_type")
        return real_conform(frame, schema, **kwargs)

    real_read = validation.read_landed_file

    def read_marking(path, *args, **kwargs):
        frame = real_read(path, *args, **kwargs)
        frame.attrs["poison"] = path.name == "events-odd.parquet"
        return frame

    monkeypatch.setattr(validation, "conform", conform_failing_on_one_file)
    monkeypatch.setattr(validation, "read_landed_file", read_marking)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    raw = platform.latest_metadata(delivery, "raw", DST_DAY.isoformat())
    assert raw["files_ingested"] == {DST_DAY.isoformat(): ["events-good.parquet"]}
    assert "could not be read or validated: KeyError" in _reasons(platform, delivery, DST_DAY)["events-odd.parquet"]


def test_labels_without_an_event_time_are_refused(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    labels = _labels(delivery, DST_DAY)
    labels.to_csv(folder / "labels-good.csv", index=False)
    labels.assign(event_ts=[None, *labels["event_ts"][1:]]).to_csv(folder / "labels-no-event.csv", index=False)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    assert "1 rows have no 'event_ts'" in _reasons(platform, delivery, DST_DAY)["labels-no-event.csv"]
    assert _table(platform, delivery, "labels", DST_DAY)["event_ts"].notna().all()


def test_the_last_landed_file_wins_not_the_last_by_name(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    events = _events(delivery, DST_DAY, rows=5)
    events.to_csv(folder / "events-9.csv", index=False)
    events.assign(city="corrected").to_csv(folder / "events-10.csv", index=False)
    # events-10 is the correction, landed after events-9 (but "10" sorts before "9").
    landed = (folder / "events-9.csv").stat().st_mtime_ns
    os.utime(folder / "events-10.csv", ns=(landed + 10**9, landed + 10**9))

    _run(platform, delivery, DST_DAY)

    raw = _table(platform, delivery, "raw", DST_DAY)
    assert len(raw) == 5 and (raw["city"] == "corrected").all()


@pytest.mark.parametrize("link", ["file", "day folder"])
def test_a_link_is_quarantined_itself_and_never_read(platform, delivery, tmp_path, link) -> None:
    outside = tmp_path / "secrets"
    outside.mkdir()
    secret_file = outside / "events-credentials.csv"
    secret_file.write_text(f"{SECRET}\n1,2\n")
    if link == "file":
        folder = _folder(platform, delivery, DST_DAY)
        _events(delivery, DST_DAY).to_parquet(folder / "events-good.parquet")
        (folder / "events-link.csv").symlink_to(secret_file)
    else:
        (platform.settings.landing_root / delivery.name).mkdir(parents=True)
        platform.settings.landing_root.joinpath(delivery.name, DST_DAY.isoformat()).symlink_to(outside)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    assert secret_file.read_text().startswith(SECRET)  # the target is neither moved nor changed
    quarantine = platform.settings.quarantine_root / delivery.name / DST_DAY.isoformat()
    name = "events-link.csv" if link == "file" else DST_DAY.isoformat()
    assert (quarantine / name).is_symlink()  # the link itself was moved
    assert "symbolic link" in (quarantine / f"{name}{REASON_SUFFIX}").read_text()
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    everything = _event_log_text(platform, result) + "".join(_reasons(platform, delivery, DST_DAY).values())
    assert "AKIAEXAMPLESECRET" not in everything
    if link == "file":
        assert platform.latest_metadata(delivery, "raw", DST_DAY.isoformat())["dagster/row_count"] == 20


def test_a_text_column_holding_lists_is_refused_naming_the_column(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    events = _events(delivery, DST_DAY)
    events.to_parquet(folder / "events-good.parquet")
    events.assign(city=[["madrid", "paris"]] * len(events)).to_parquet(folder / "events-lists.parquet")

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    assert "column 'city' is not string" in _reasons(platform, delivery, DST_DAY)["events-lists.parquet"]
    assert platform.latest_metadata(delivery, "raw", DST_DAY.isoformat())["dagster/row_count"] == 20


def test_arrow_types_are_proven_per_column() -> None:
    frame = pd.DataFrame({"a": pd.Series([b"\xff\xfe"], dtype=object), "n": [1]})
    problems = validation.prove_arrow_types(frame, {"a": "string", "n": "int64"})
    assert len(problems) == 1 and problems[0].startswith("column 'a'")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (["x", None, float("nan")], None),  # text and missing values: string
        ([None, None], None),  # all missing: null, written as string
        (["x", b"y"], "column 'a' is written as binary"),  # bytes beside text: not text
        (["x", 3], "column 'a' does not convert to string"),  # a number beside text
        ([b"\xff"], "column 'a' does not convert to string"),  # bytes that are not UTF-8
    ],
)
def test_text_columns_are_proven_in_one_conversion(values, problem) -> None:
    """Text is converted once (its inference must give string or null); every other kind of value
    beside the text is still refused, naming the column."""
    problems = validation.prove_arrow_types(pd.DataFrame({"a": pd.Series(values, dtype=object)}), {"a": "string"})
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_files_beyond_the_limits_are_refused_before_they_are_read(platform, delivery, monkeypatch) -> None:
    _with_limits(platform, max_file_bytes=200_000, max_rows=1_000, max_uncompressed_bytes=4 * 1024**2)
    folder = _folder(platform, delivery, DST_DAY)
    _events(delivery, DST_DAY).to_parquet(folder / "events-good.parquet")
    pq.write_table(pa.table({"n": pa.array(range(5_000), pa.int64())}), folder / "events-rows.parquet")
    (folder / "events-big.csv").write_bytes(b"a" * 300_000)
    (folder / "events-many.csv").write_text("a\n" + "1\n" * 5_000)
    reads: list[str] = []
    real_read = pq.ParquetFile.read

    def recording_read(self, *args, **kwargs):
        reads.append("read")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", recording_read)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    reasons = _reasons(platform, delivery, DST_DAY)
    assert "5000 rows; the limit is 1000" in reasons["events-rows.parquet"]
    assert "300000 bytes on disk; the limit is 200000" in reasons["events-big.csv"]
    assert "more than 1000 rows" in reasons["events-many.csv"]
    assert reads == ["read"]  # only the good file's data was read

    # 1 M zeros compress to a few KB on disk but decode to 8 MB: refused from the footer alone.
    _with_limits(platform, max_uncompressed_bytes=4 * 1024**2)
    next_day = DST_DAY + dt.timedelta(days=1)
    zeros = _folder(platform, delivery, next_day) / "events-zeros.parquet"
    pq.write_table(pa.table({"zeros": pa.array([0] * 1_000_000, pa.int64())}), zeros)
    assert zeros.stat().st_size < 100_000
    reads.clear()
    assert _run(platform, delivery, next_day).success
    assert "decodes to about 8000000 bytes" in _reasons(platform, delivery, next_day)["events-zeros.parquet"]
    assert reads == []


def test_a_huge_header_gives_a_bounded_reason_and_log(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    (folder / "events-wide.csv").write_text(",".join(f"{SECRET}{i}" for i in range(20_000)) + "\n")

    result = _run(platform, delivery, DST_DAY)

    reason_file = (platform.settings.quarantine_root / delivery.name / DST_DAY.isoformat()) / (
        "events-wide.csv" + REASON_SUFFIX
    )
    assert reason_file.stat().st_size < 1_000
    assert "unexpected columns" in reason_file.read_text()
    assert len(_event_log_text(platform, result)) < 200_000  # a 900 KB header is never copied whole


def test_a_name_with_a_newline_cannot_forge_the_reason(platform, delivery) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    labels = _labels(delivery, DST_DAY)
    labels.to_csv(folder / "labels-odd\nreason: approved by ops.csv", index=False)

    result = _run(platform, delivery, DST_DAY)

    quarantine = platform.settings.quarantine_root / delivery.name / DST_DAY.isoformat()
    assert (quarantine / "labels-odd_reason: approved by ops.csv").exists()
    reason_file = quarantine / f"labels-odd_reason: approved by ops.csv{REASON_SUFFIX}"
    lines = reason_file.read_text().splitlines()
    assert len(lines) == 3 and [line.split(":")[0] for line in lines] == ["source", "quarantined_at", "reason"]
    assert "control characters" in lines[2]
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    assert all("approved by ops" not in reason for reason in check.metadata["quarantined"].value.values())


def test_a_file_moved_away_while_the_ingest_reads_it_does_not_fail_the_run(platform, delivery, monkeypatch) -> None:
    folder = _folder(platform, delivery, DST_DAY)
    _events(delivery, DST_DAY).to_parquet(folder / "events-good.parquet")
    _events(delivery, DST_DAY).to_parquet(folder / "events-moved.parquet")
    elsewhere = platform.settings.home / "moved-by-another-run.parquet"
    real_read = validation.read_landed_file

    def read_after_a_move(path, *args, **kwargs):
        if path.name == "events-moved.parquet":
            path.rename(elsewhere)  # another run quarantined it just now
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(validation, "read_landed_file", read_after_a_move)

    result = _run(platform, delivery, DST_DAY)

    assert result.success
    raw = platform.latest_metadata(delivery, "raw", DST_DAY.isoformat())
    assert raw["files_ingested"] == {DST_DAY.isoformat(): ["events-good.parquet"]}
    assert elsewhere.exists() and _reasons(platform, delivery, DST_DAY) == {}
