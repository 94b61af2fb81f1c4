"""The landing sensor: each file once, a new file re-runs its day, misplaced files are quarantined."""

import datetime as dt

import dagster as dg

from mlops_platform.storage.landing import REASON_SUFFIX
from tests.conftest import START, day


def _tick(platform, spec, cursor):
    sensor = platform.defs.resolve_sensor_def(f"{spec.name}_landing_sensor")
    context = dg.build_sensor_context(
        instance=platform.instance,
        cursor=cursor,
        definitions=platform.defs,
        resources={"landing": platform.resources["landing"]},
    )
    result = sensor.evaluate_tick(context)
    return result, result.cursor


def test_each_file_is_handled_once_and_new_files_rerun_their_day(platform, churn) -> None:
    platform.land(churn, days=2, rows=50)
    platform.land(churn, days=1, rows=50, start=START + dt.timedelta(days=5))
    first, cursor = _tick(platform, churn, None)
    # Consecutive new days become one range run; a separate day gets its own run.
    assert [
        (
            r.partition_key,
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
        )
        for r in first.run_requests
    ] == [
        (None, day(0), day(1)),
        (day(5), None, None),
    ]
    assert platform.defs.resolve_sensor_def("churn_landing_sensor").job_name == "churn_ingest"

    again, cursor = _tick(platform, churn, cursor)
    assert again.run_requests == [] and "no new files" in again.skip_message

    folder = platform.settings.landing_root / "churn" / day(1)
    (folder / "events-late.parquet").write_bytes(next(folder.glob("events-*.parquet")).read_bytes())
    (folder / ".events-still-uploading.parquet").write_bytes(b"...")
    late, cursor = _tick(platform, churn, cursor)
    assert [r.partition_key for r in late.run_requests] == [day(1)]
    assert late.run_requests[0].run_key not in {r.run_key for r in first.run_requests}
    assert "events-late.parquet" in late.run_requests[0].tags["mlops/new_files"]

    quiet, cursor = _tick(platform, churn, cursor)
    assert quiet.run_requests == []

    # Files of today wait, unrecorded, until today's partition exists; they are not quarantined.
    today = dt.datetime.now(dt.UTC).date()
    platform.land(churn, days=1, rows=10, start=today)
    waiting, cursor = _tick(platform, churn, cursor)
    assert waiting.run_requests == []
    assert today.isoformat() not in cursor
    assert any((platform.settings.landing_root / "churn" / today.isoformat()).iterdir())


def test_files_outside_a_partition_day_are_quarantined_with_the_reason(platform, churn) -> None:
    root = platform.settings.landing_root / "churn"
    for folder in ("not-a-day", "2099-01-01", "2020-01-01"):
        (root / folder).mkdir(parents=True)
        (root / folder / "events-x.parquet").write_bytes(b"data")
    (root / "loose.csv").write_text("a,b\n")
    result, _ = _tick(platform, churn, None)
    assert result.run_requests == []
    quarantine = platform.settings.quarantine_root / "churn"
    reasons = sorted(p.relative_to(quarantine).as_posix() for p in quarantine.rglob(f"*{REASON_SUFFIX}"))
    assert reasons == [
        f"2020-01-01/events-x.parquet{REASON_SUFFIX}",
        f"2099-01-01/events-x.parquet{REASON_SUFFIX}",
        f"_unassigned/loose.csv{REASON_SUFFIX}",
        f"not-a-day/events-x.parquet{REASON_SUFFIX}",
    ]
    assert "YYYY-MM-DD folder" in (quarantine / "_unassigned" / f"loose.csv{REASON_SUFFIX}").read_text()
    assert not any(p.is_file() for p in root.rglob("*"))  # moved, none deleted
    assert (quarantine / "not-a-day" / "events-x.parquet").read_bytes() == b"data"
