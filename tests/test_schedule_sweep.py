"""The daily ingest schedule sweeps only what the landing sensor missed, never what was ingested."""

import contextvars
import datetime as dt
import os

import dagster as dg

from tests.conftest import START, day


def _tick(platform, spec, when: dt.datetime):
    schedule = platform.defs.resolve_schedule_def(f"{spec.name}_daily_ingest")
    context = dg.build_schedule_context(
        instance=platform.instance,
        scheduled_execution_time=when,
        resources={"landing": platform.resources["landing"]},
        repository_def=platform.defs.get_repository_def(),
    )
    # Evaluating a schedule with resources leaves another instance set as Dagster's current one.
    return contextvars.copy_context().run(schedule.evaluate_tick, context)


def _after(offset: int) -> dt.datetime:
    """00:30 UTC of the day after ``day(offset)``."""
    return dt.datetime.combine(START + dt.timedelta(days=offset + 1), dt.time(0, 30), tzinfo=dt.UTC)


def test_sweep_requests_a_day_the_sensor_missed_and_skips_an_ingested_one(platform, delivery) -> None:
    platform.land(delivery, days=1, rows=30)
    missed = _tick(platform, delivery, _after(0))
    assert [r.partition_key for r in missed.run_requests] == [day(0)]
    assert missed.run_requests[0].tags["mlops/trigger"] == "daily_sweep"

    platform.run(delivery, ["raw", "labels"], partition_key=day(0))
    again = _tick(platform, delivery, _after(0))
    assert again.run_requests == []
    assert f"delivery_eta {day(0)}: nothing to sweep (2 file(s) landed, 2 ingested)" in again.skip_message


def test_sweep_picks_up_a_file_landed_or_replaced_after_the_ingestion(platform, delivery) -> None:
    platform.land(delivery, days=1, rows=30)
    platform.run(delivery, ["raw", "labels"], partition_key=day(0))
    folder = platform.settings.landing_root / delivery.name / day(0)
    late = folder / "events-late.parquet"
    late.write_bytes(next(folder.glob("events-*.parquet")).read_bytes())
    result = _tick(platform, delivery, _after(0))
    assert [r.partition_key for r in result.run_requests] == [day(0)]
    assert "events-late.parquet" in result.run_requests[0].tags["mlops/new_files"]

    platform.run(delivery, ["raw", "labels"], partition_key=day(0))
    assert _tick(platform, delivery, _after(0)).run_requests == []
    # The same name rewritten after that run: its content may have changed, so the day is swept again.
    future = dt.datetime.now().timestamp() + 3600
    os.utime(late, (future, future))
    assert [r.partition_key for r in _tick(platform, delivery, _after(0)).run_requests] == [day(0)]


def test_sweep_skips_a_day_a_run_is_already_ingesting(platform, delivery) -> None:
    platform.land(delivery, days=2, rows=30)
    platform.instance.add_run(
        dg.DagsterRun(
            job_name="delivery_eta_ingest",
            run_id="0123456789abcdef0123456789abcdef",
            status=dg.DagsterRunStatus.STARTED,
            tags={
                "dagster/asset_partition_range_start": day(0),
                "dagster/asset_partition_range_end": day(1),
            },
        )
    )
    result = _tick(platform, delivery, _after(1))
    assert result.run_requests == []
    assert "0123456789abcdef0123456789abcdef is already ingesting it" in result.skip_message


def test_sweep_skips_days_with_nothing_landed(platform, delivery) -> None:
    result = _tick(platform, delivery, _after(0))
    assert result.run_requests == []
    assert "nothing to sweep (0 file(s) landed, 0 ingested)" in result.skip_message
