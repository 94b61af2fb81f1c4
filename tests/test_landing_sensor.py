"""The landing sensor against careless producers: replaced files, early clocks, years of folders, races."""

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from mlops_platform.automation.sensors import CROWDED_DAY
from mlops_platform.storage import landing_local as landing_module
from mlops_platform.storage.landing import REASON_SUFFIX, LandedFile
from tests.conftest import day
from tests.test_sensors import _tick


def _land_dummy(root: Path, first: dt.date, days: int, files_per_day: int = 2) -> None:
    """Day folders with small files: the sensor only lists and stats them."""
    for offset in range(days):
        folder = root / (first + dt.timedelta(days=offset)).isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(files_per_day):
            (folder / f"events-{index}.parquet").write_bytes(b"x")


def test_a_file_replaced_under_its_name_reruns_its_day(platform, churn) -> None:
    platform.land(churn, days=1, rows=20)
    first, cursor = _tick(platform, churn, None)
    assert [r.partition_key for r in first.run_requests] == [day(0)]

    # The corrected file is landed again under the same name (new contents, a later mtime).
    folder = platform.settings.landing_root / "churn" / day(0)
    events = next(folder.glob("events-*.parquet"))
    original = events.stat()
    events.write_bytes(events.read_bytes())
    os.utime(events, ns=(original.st_atime_ns, original.st_mtime_ns + 10**9))
    replaced, cursor = _tick(platform, churn, cursor)

    assert [r.partition_key for r in replaced.run_requests] == [day(0)]
    # Dagster skips a request whose run key it has seen: the key must differ from the first run's.
    assert replaced.run_requests[0].run_key != first.run_requests[0].run_key
    assert events.name in replaced.run_requests[0].tags["mlops/new_files"]
    quiet, _ = _tick(platform, churn, cursor)
    assert quiet.run_requests == []


def test_a_folder_of_a_future_day_waits_and_one_far_ahead_is_quarantined(platform, churn) -> None:
    root = platform.settings.landing_root / "churn"
    today = dt.datetime.now(dt.UTC).date()
    tomorrow, soon, far = (today + dt.timedelta(days=n) for n in (1, 7, 8))
    for folder in (tomorrow, soon, far):
        _land_dummy(root, folder, 1, files_per_day=1)

    result, cursor = _tick(platform, churn, None)

    assert result.run_requests == []
    # A producer whose clock runs ahead: its files wait for their day, unrecorded, never quarantined.
    assert (root / tomorrow.isoformat() / "events-0.parquet").exists()
    assert (root / soon.isoformat() / "events-0.parquet").exists()
    assert tomorrow.isoformat() not in cursor and soon.isoformat() not in cursor
    quarantine = platform.settings.quarantine_root / "churn" / far.isoformat()
    reason = (quarantine / f"events-0.parquet{REASON_SUFFIX}").read_text()
    assert f"not a day between {churn.start_date} and {soon}" in reason


def test_the_cursor_and_the_scan_stay_bounded_over_a_year_of_days(platform, churn, monkeypatch) -> None:
    root = platform.settings.landing_root / "churn"
    first_day = churn.start_date
    _land_dummy(root, first_day, 60)
    listed: list[str] = []
    real_list = landing_module.LocalLandingZone.list_folder

    def counting(self, folder):
        listed.append(Path(folder).name)
        return real_list(self, folder)

    monkeypatch.setattr(landing_module.LocalLandingZone, "list_folder", counting)

    first, cursor = _tick(platform, churn, None)
    assert len(first.run_requests) == 1  # 60 consecutive days: one range run
    state = json.loads(cursor)
    lookback = platform.resources["landing"].sensor_lookback_days
    assert len(state["days"]) == lookback + 1  # the watermark day and the lookback before it
    assert state["settled"] == [[first_day.isoformat(), (first_day + dt.timedelta(days=59 - lookback - 1)).isoformat()]]
    assert len(cursor) < 2500

    listed.clear()
    again, cursor = _tick(platform, churn, cursor)
    assert again.run_requests == []
    assert len(listed) == lookback + 1  # settled days are not listed again

    # Days 61..70 land (day 60 is missing); then day 60 lands late, behind the lookback of the new
    # watermark (day 70): a day never seen before is still found and requested.
    _land_dummy(root, first_day + dt.timedelta(days=61), 10)
    _, cursor = _tick(platform, churn, cursor)
    newest = first_day + dt.timedelta(days=70)
    assert json.loads(cursor)["watermark"] == newest.isoformat()
    missing = first_day + dt.timedelta(days=60)
    _land_dummy(root, missing, 1)
    found, cursor = _tick(platform, churn, cursor)
    assert [r.partition_key for r in found.run_requests] == [missing.isoformat()]
    assert len(json.loads(cursor)["settled"]) <= 2

    # A file replaced within the lookback still re-runs its day.
    recent = root / (newest - dt.timedelta(days=2)).isoformat() / "events-0.parquet"
    stamp = recent.stat()
    os.utime(recent, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    rerun, _ = _tick(platform, churn, cursor)
    assert [r.partition_key for r in rerun.run_requests] == [(newest - dt.timedelta(days=2)).isoformat()]


def test_the_first_cursor_format_is_read_without_rerunning_days(platform, churn) -> None:
    platform.land(churn, days=2, rows=20)
    root = platform.settings.landing_root / "churn"
    old_cursor = json.dumps(
        {day(n): {p.name: p.stat().st_mtime_ns for p in (root / day(n)).iterdir()} for n in range(2)}
    )
    result, cursor = _tick(platform, churn, old_cursor)
    assert result.run_requests == []
    assert json.loads(cursor)["watermark"] == day(1)


def test_a_file_moved_by_an_ingest_run_during_the_scan_is_not_an_error(platform, churn, monkeypatch) -> None:
    platform.land(churn, days=2, rows=20)
    folder = platform.settings.landing_root / "churn" / day(1)
    moved = next(folder.glob("events-*.parquet"))
    real_scandir = os.scandir

    def scandir_then_move(path):
        entries = list(real_scandir(path))
        if Path(path) == folder and moved.exists():
            # An ingest run quarantines the file between the listing and the stat.
            moved.rename(platform.settings.home / moved.name)
        return iter(entries)

    monkeypatch.setattr(landing_module.os, "scandir", scandir_then_move)
    result, cursor = _tick(platform, churn, None)
    assert result.run_requests and moved.name not in json.loads(cursor)["days"][day(1)]


@pytest.mark.parametrize("target_kind", ["day folder", "file"])
def test_links_are_never_followed_by_the_sensor(platform, churn, tmp_path, target_kind) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "events-secret.parquet").write_text("password=hunter2\n")
    root = platform.settings.landing_root / "churn"
    root.mkdir(parents=True)
    if target_kind == "day folder":
        (root / day(0)).symlink_to(outside, target_is_directory=True)
    else:
        (root / day(0)).mkdir()
        (root / day(0) / "events-link.parquet").symlink_to(outside / "events-secret.parquet")

    result, cursor = _tick(platform, churn, None)

    # The day is requested so the ingest refuses the link (files_valid fails), but nothing is read or moved.
    assert [r.partition_key for r in result.run_requests] == [day(0)]
    assert (outside / "events-secret.parquet").read_text() == "password=hunter2\n"
    assert "hunter2" not in cursor


def test_odd_folder_names_and_nested_folders_are_quarantined_not_lost(platform, churn) -> None:
    root = platform.settings.landing_root / "churn"
    # Python reads "2026-W40-4" and "20261001" as dates; they are not day folders of the layout.
    for folder in ("2026-W40-4", "20261001"):
        (root / folder).mkdir(parents=True)
        (root / folder / "events-x.parquet").write_bytes(b"data")
    nested = root / day(0) / "sub"
    nested.mkdir(parents=True)
    (nested / "events-y.parquet").write_bytes(b"nested")

    result, _ = _tick(platform, churn, None)

    quarantine = platform.settings.quarantine_root / "churn"
    assert (quarantine / "2026-W40-4" / "events-x.parquet").exists()
    assert (quarantine / "20261001" / "events-x.parquet").exists()
    # The nested folder belongs to its day: the day's ingest refuses it (the sensor requests the day).
    assert [r.partition_key for r in result.run_requests] == [day(0)]
    platform.run(churn, ["raw", "labels"], partition_key=day(0))
    assert (quarantine / day(0) / "sub" / "events-y.parquet").read_bytes() == b"nested"
    assert "folders inside a day folder" in (quarantine / day(0) / f"sub{REASON_SUFFIX}").read_text()


def test_quarantining_a_file_that_is_gone_leaves_no_reason_behind(platform, churn) -> None:
    landing = platform.resources["landing"]
    gone = platform.settings.landing_root / "churn" / day(0) / "events-gone.parquet"
    with pytest.raises(FileNotFoundError):
        landing.quarantine(LandedFile(gone.name, str(gone), "0:0:0", 0, 0), "churn", day(0), "bad")
    assert landing.quarantined("churn", day(0)) == {}


def test_a_crowded_day_is_remembered_by_a_digest_and_still_notices_a_replaced_file(platform, churn) -> None:
    """Dagster stores the cursor with every tick: a day of hundreds of files is one digest in it, not
    hundreds of stamps, and a file replaced there re-runs the day all the same."""
    folder = platform.settings.landing_root / "churn" / day(1)
    folder.mkdir(parents=True)
    for index in range(CROWDED_DAY + 36):
        (folder / f"events-{index}.csv").write_text("x\n")
    first, cursor = _tick(platform, churn, None)
    assert [r.partition_key for r in first.run_requests] == [day(1)]
    stored = json.loads(cursor)["days"][day(1)]
    assert isinstance(stored, str) and stored.endswith(f":{CROWDED_DAY + 36}") and len(cursor) < 1000
    unchanged, cursor = _tick(platform, churn, cursor)
    assert not unchanged.run_requests
    replaced = folder / "events-7.csv"
    replaced.write_text("x\ny\n")
    os.utime(replaced, ns=(replaced.stat().st_mtime_ns + 10**9,) * 2)
    again, cursor = _tick(platform, churn, cursor)
    assert [r.partition_key for r in again.run_requests] == [day(1)]
