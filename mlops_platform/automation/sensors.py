"""The landing sensor and the automation condition sensor."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._time import get_current_datetime

from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.landing import LandingZone, RootEntry, parse_day, sanitize

CURSOR_VERSION = 2
# Days with more files than this are remembered by one digest of their stamps rather than file by file.
CROWDED_DAY = 64
NOT_IN_A_DAY = "files must sit in a YYYY-MM-DD folder"


@dataclass
class LandingCursor:
    """What the landing sensor remembers, bounded by the lookback rather than by the days ever landed.

    ``watermark``: the newest day handed to a run. ``days``: for each day that may still change (within
    ``lookback`` days of the watermark), every file name and its stamp (on disk mtime, size, inode; on a
    bucket the ETag or generation). ``settled``: the older days already handed to a run, as ranges of
    consecutive days (a handful of entries for years of daily folders); they are not listed again, so a
    file replaced there needs a backfill.
    """

    watermark: dt.date | None = None
    days: dict[str, dict[str, str | int] | str] = field(default_factory=dict)
    settled: list[tuple[dt.date, dt.date]] = field(default_factory=list)

    @classmethod
    def load(cls, raw: str | None) -> "LandingCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        if data.get("v") != CURSOR_VERSION:
            # The first format: {folder: {name: mtime_ns}} for every folder ever landed. Its mtimes still
            # count as seen (compared by mtime alone), so upgrading re-runs nothing.
            days: dict[str, dict[str, str | int] | str] = {
                k: v for k, v in data.items() if isinstance(v, dict) and _as_day(k) is not None
            }
            watermark = max((d for d in map(_as_day, days) if d is not None), default=None)
            return cls(watermark, days, [])
        return cls(
            _as_day(data["watermark"]) if data.get("watermark") else None,
            data.get("days", {}),
            [(dt.date.fromisoformat(a), dt.date.fromisoformat(b)) for a, b in data.get("settled", [])],
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "watermark": self.watermark.isoformat() if self.watermark else None,
                "days": self.days,
                "settled": [[a.isoformat(), b.isoformat()] for a, b in self.settled],
            },
            sort_keys=True,
        )

    def is_settled(self, day: dt.date) -> bool:
        return any(first <= day <= last for first, last in self.settled)

    def settle(self, days: list[dt.date]) -> None:
        ranges = _consecutive_ranges(sorted(set(days)))
        merged = sorted([*self.settled, *ranges])
        result: list[tuple[dt.date, dt.date]] = []
        for first, last in merged:
            if result and first <= result[-1][1] + dt.timedelta(days=1):
                result[-1] = (result[-1][0], max(result[-1][1], last))
            else:
                result.append((first, last))
        self.settled = result


def _as_day(name: str) -> dt.date | None:
    return parse_day(name)


def _digest(files: dict[str, str]) -> str:
    """A crowded day's {name: stamp} in the cursor as one digest: the cursor stays small (Dagster stores
    it with every tick) and any new, replaced or removed file still changes it."""
    text = json.dumps(files, sort_keys=True).encode()
    return f"sha256:{hashlib.sha256(text).hexdigest()}:{len(files)}"


def _unchanged(stored: str | int | None, stamp: str) -> bool:
    if isinstance(stored, int):  # the first cursor format: the mtime alone
        return stamp.split(":")[0] == str(stored)
    return stored == stamp


def _consecutive_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """[(first, last)] of each run of consecutive days in a sorted list."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def misplaced_reason(entry: RootEntry, spec: ModelSpec, today: dt.date, landing: LandingZone) -> str | None:
    """Why an entry of the model's folder is no day folder of its partitions, or None when it is one."""
    day, latest_allowed = entry.day, today + dt.timedelta(days=landing.max_future_days)
    if day is not None and (entry.is_dir or entry.is_link) and spec.start_date <= day <= latest_allowed:
        return None
    if entry.is_link:
        return f"{entry.name!r} is a symbolic link; links are never followed out of the landing root"
    if day is None or not entry.is_dir:
        return (
            f"folder {entry.name!r} is not a day (YYYY-MM-DD)"
            if entry.is_dir
            else "files must sit in a YYYY-MM-DD folder"
        )
    return (
        f"folder {entry.name!r} is not a day between {spec.start_date} and {latest_allowed} "
        f"(today, UTC, plus {landing.max_future_days} days)"
    )


def quarantine_misplaced(landing: LandingZone, spec: ModelSpec, entry: RootEntry, why: str, log: Any) -> None:
    for folder, file in landing.misplaced(spec.name, entry):
        try:
            landing.quarantine(file, spec.name, folder, why)
        except FileNotFoundError:
            continue  # moved meanwhile (by a run): nothing left here to quarantine
        log.warning(f"quarantined {sanitize(file.location)}: {sanitize(why)}")


def day_requests(changed: dict[dt.date, dict[str, str]], job_name: str | None = None) -> list[dg.RunRequest]:
    """One run request per run of consecutive changed days ({day: {name: stamp}}). The stamps are in
    the run key: a file replaced under the same name gives a new key, an unchanged one the same key."""
    requests = []
    for first, last in _consecutive_ranges(sorted(changed)):
        in_range = [d for d in sorted(changed) if first <= d <= last]
        digest = hashlib.sha256(
            json.dumps({d.isoformat(): changed[d] for d in in_range}, sort_keys=True).encode()
        ).hexdigest()[:16]
        names = ",".join(sanitize(name, 100) for d in in_range for name in sorted(changed[d]))
        tags = {"mlops/trigger": "landing", "mlops/new_files": names[:200]}
        if first == last:
            key = f"{first}:{digest}"
            requests.append(dg.RunRequest(run_key=key, partition_key=first.isoformat(), tags=tags, job_name=job_name))
        else:
            # A run of consecutive days is one run (the assets backfill ranges in a single run).
            tags |= {
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            }
            requests.append(dg.RunRequest(run_key=f"{first}..{last}:{digest}", tags=tags, job_name=job_name))
    return requests


def landing_tick(
    spec: ModelSpec, landing: LandingZone, raw_cursor: str | None, today: dt.date, log: Any
) -> tuple[list[dg.RunRequest], str, str]:
    """One tick of the landing sensor: (run requests, new cursor, summary). Dagster-free to benchmark.

    Lists the spec's folder once (names only), then lists and lstats only the days that may still
    change: those within the lookback of the watermark, those newer, and days never seen before.
    """
    state = LandingCursor.load(raw_cursor)
    window_start = state.watermark - dt.timedelta(days=landing.sensor_lookback_days) if state.watermark else None
    changed: dict[dt.date, dict[str, str]] = {}
    days: dict[str, dict[str, str | int] | str] = {}
    scanned_old: list[dt.date] = []
    waiting = 0
    settled_from = max(window_start, spec.start_date) if window_start else None

    def settled(day: dt.date) -> bool:  # handed to a run and past the lookback: not listed again
        return settled_from is not None and spec.start_date <= day < settled_from and state.is_settled(day)

    to_list = []
    for entry in landing.root_entries(spec.name, skip_day=settled):
        day = entry.day
        why = misplaced_reason(entry, spec, today, landing)
        if why is not None or day is None:
            quarantine_misplaced(landing, spec, entry, why or "", log)
        elif day >= today:
            # The day's partition does not exist until the day is over (UTC); a producer whose clock
            # runs ahead lands early. These files stay out of the cursor and are requested after midnight.
            waiting += 1
        else:
            to_list.append(entry)
    listed = landing.entries_stamps(spec.name, to_list)
    for entry in to_list:
        day, folder = entry.day, entry.name
        assert day is not None
        old = window_start is not None and day < window_start
        files = listed.get(folder, {})
        if entry.is_link and not files:
            continue  # the link vanished meanwhile
        seen = state.days.get(folder, {})
        if isinstance(seen, str):  # a crowded day, remembered by its digest
            new = dict(files) if seen != _digest(files) else {}
        else:
            new = {name: stamp for name, stamp in files.items() if not _unchanged(seen.get(name), stamp)}
        if new:
            changed[day] = new
        if old:
            if files:
                scanned_old.append(day)
        else:
            days[folder] = dict(files) if len(files) <= CROWDED_DAY else _digest(files)
    requests = day_requests(changed)
    watermark = max([d for d in [state.watermark, *changed] if d is not None], default=None)
    if watermark is not None:
        new_start = watermark - dt.timedelta(days=landing.sensor_lookback_days)
        aged = [dt.date.fromisoformat(f) for f, files in days.items() if dt.date.fromisoformat(f) < new_start]
        state.settle([d for d in aged if days[d.isoformat()]] + scanned_old)
        days = {f: files for f, files in days.items() if dt.date.fromisoformat(f) >= new_start}
    state.watermark, state.days = watermark, days
    summary = f"{len(changed)} day(s) changed, {len(days)} watched, {waiting} waiting for their day"
    return requests, state.dump(), summary


def build_landing_sensor(spec: ModelSpec, ingest_job: Any) -> dg.SensorDefinition:
    """Request the day's ingestion when a file lands (or changes) in the spec's landing folder.

    The cursor holds a watermark (the newest day handed to a run) and, per day within the lookback
    (``LandingZone.sensor_lookback_days``) of it, each file name and stamp (mtime, size and inode on disk;
    ETag or generation on a bucket) already handed to a run: each file is processed once, and a new or
    replaced file of such a day re-runs that day. Older days are remembered as ranges and not listed
    again, so a tick costs the same after a year of days as after a week. New files of consecutive days
    are ingested in one run. Folders of today or of a future day (up to ``max_future_days``) wait for the
    day to end; other folders that are not a day of this spec's partitions, and links, are quarantined
    with the reason.
    """

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=ingest_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Ingests {spec.name} files as they land.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone):
        # Dagster's clock (UTC; the one its test utilities freeze), not this machine's: a day's
        # partition exists once the day is over, and a simulated day is the sensor's today.
        today = get_current_datetime().astimezone(dt.UTC).date()
        requests, cursor, summary = landing_tick(spec, landing, context.cursor, today, context.log)
        context.update_cursor(cursor)
        if not requests:
            return dg.SkipReason(f"no new files for {spec.name} ({summary})")
        context.log.info(summary)
        return requests

    return landing_sensor


def build_automation_sensors() -> list[dg.AutomationConditionSensorDefinition]:
    """Dagster's automation condition sensors, running from the start (Dagster's default one is stopped).

    Two, with disjoint targets: ``mlops_training`` evaluates the training stages (the assets tagged
    ``mlops-platform/stage=training``) and tags its runs the same way, so the run coordinator's limit on
    training runs applies to them; ``mlops_automation`` evaluates every other asset. Both run in the code
    location (``use_user_code_server``): the custom conditions of automation/conditions.py read the instance.
    """
    from mlops_platform.assets.common import STAGE_TAG, TRAINING_TAGS, chosen_beta_features

    training = dg.AssetSelection.tag(STAGE_TAG, TRAINING_TAGS[STAGE_TAG])
    with chosen_beta_features():  # use_user_code_server is beta
        return [
            dg.AutomationConditionSensorDefinition(
                "mlops_automation",
                target=dg.AssetSelection.all() - training,
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=30,
                use_user_code_server=True,
                description="Keeps features, predictions, endpoints and monitoring following their upstreams.",
            ),
            dg.AutomationConditionSensorDefinition(
                "mlops_training",
                target=training,
                run_tags=TRAINING_TAGS,
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=30,
                use_user_code_server=True,
                description="Trains, evaluates and promotes at each spec's retrain hour (runs tagged as training).",
            ),
        ]
