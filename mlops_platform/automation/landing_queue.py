"""The landing queue sensor: ingestion driven by the bucket's object-created notifications.

With MLOPS_LANDING_QUEUE set (aws: SQS; azure: a Storage Queue fed by Event Grid), one sensor,
``mlops_landing_queue``, replaces the per-model listing sensors: a team with millions of landed files
never lists them. Each tick:

1. deletes the messages the previous tick received: that tick's cursor was stored only after its run
   requests were recorded, so a message is never deleted before its file's run is requested;
2. receives up to ``max_messages_per_tick`` messages, each hidden from other readers meanwhile;
3. maps each created object to its model, day and name (``<landing>/<model>/<YYYY-MM-DD>/<name>``);
   one whose stamp (ETag) was already handed to a run is not requested again (a duplicate
   notification); a file of a day not over yet waits in the cursor; a file outside any day folder is
   quarantined as the listing sensor would;
4. requests one run per run of consecutive changed days per model, the stamps in the run key.

A crash anywhere re-delivers the messages after their visibility timeout; the same stamps give the same
run keys, which Dagster does not run twice. A message that is not a notification is logged and left to
the queue's dead-letter policy. The daily sweep schedule still catches what no notification announced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster._time import get_current_datetime

from mlops_platform.automation.sensors import day_requests, misplaced_reason, quarantine_misplaced
from mlops_platform.specs.base import ModelSpec
from mlops_platform.storage.landing import LandingZone, RootEntry, is_in_progress, parse_day, sanitize
from mlops_platform.storage.landing_objects import split_uri
from mlops_platform.storage.landing_queues import LandingQueue, MalformedMessage

QUEUE_SENSOR = "mlops_landing_queue"
SEEN_LIMIT = 2000  # files remembered per model (about 30 KB of cursor)
Files = dict[str, dict[str, str]]  # day -> name -> stamp


@dataclass
class QueueCursor:
    """``pending``: messages received by the last tick, deleted by the next. ``seen``: per model and day,
    a mark of each file and stamp handed to a run within the lookback of its newest day (bounded).
    ``waiting``: per model, files of days not over yet (bounded by the landing zone's ``max_future_days``)."""

    pending: list[list[str]] = field(default_factory=list)
    seen: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    waiting: dict[str, Files] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | None) -> QueueCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(data.get("pending", []), data.get("seen", {}), data.get("waiting", {}))

    def dump(self) -> str:
        return json.dumps({"pending": self.pending, "seen": self.seen, "waiting": self.waiting}, sort_keys=True)


@dataclass
class _Place:
    spec: str
    top: str  # the entry directly under the model's folder (a day folder, or a misplaced name)
    day: dt.date | None
    name: str


def _place(uri: str, landing_root: str) -> _Place | None:
    """Where a created object sits in the landing zone, or None when it is outside it."""
    _, bucket, key = split_uri(uri)
    _, root_bucket, root_key = split_uri(landing_root)
    prefix = f"{root_key}/" if root_key else ""
    if bucket != root_bucket or not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split("/")
    if len(parts) < 2 or any(is_in_progress(part) for part in parts[1:]):
        return None
    day = parse_day(parts[1]) if len(parts) >= 3 else None
    return _Place(parts[0], parts[1], day, "/".join(parts[2:]) or parts[1])


def queue_tick(
    specs: dict[str, ModelSpec],
    jobs: dict[str, str],
    landing: LandingZone,
    queue: LandingQueue,
    raw_cursor: str | None,
    today: dt.date,
    log: Any,
) -> tuple[list[dg.RunRequest], str, str]:
    """One tick: (run requests for the models' ingest jobs, new cursor, summary). Dagster-free."""
    state = QueueCursor.load(raw_cursor)
    if state.pending:
        queue.delete([(m[0], m[1]) for m in state.pending])
    state.pending = []
    messages = queue.receive(queue.max_messages_per_tick)
    changed: dict[str, dict[dt.date, dict[str, str]]] = {}
    misplaced: dict[str, set[str]] = {}
    ignored = 0
    for message in messages:
        try:
            events = queue.events(message)
        except MalformedMessage as exc:
            log.warning(f"queue message {sanitize(message.id, 80)} is not a notification ({exc}); left for the queue")
            continue
        state.pending.append([message.id, message.receipt])
        for event in events:
            place = _place(event.uri, landing.landing_root)
            if place is None or place.spec not in specs:
                ignored += 1
                continue
            spec = specs[place.spec]
            if place.day is None or misplaced_reason(_entry(place), spec, today, landing) is not None:
                misplaced.setdefault(place.spec, set()).add(place.top)
                continue
            stamp = f"etag:{event.etag.strip(chr(34))}" if event.etag else f"message:{message.id}"
            if place.day >= today:  # its partition does not exist until the day is over
                state.waiting.setdefault(place.spec, {}).setdefault(place.day.isoformat(), {})[place.name] = stamp
            else:
                changed.setdefault(place.spec, {}).setdefault(place.day, {})[place.name] = stamp
    for spec_name, early in list(state.waiting.items()):  # days that are over now
        for day_name in [d for d in early if dt.date.fromisoformat(d) < today]:
            over = dt.date.fromisoformat(day_name)
            changed.setdefault(spec_name, {}).setdefault(over, {}).update(early.pop(day_name))
        if not early:
            del state.waiting[spec_name]
    for spec_name, tops in misplaced.items():
        _quarantine_tops(specs[spec_name], tops, landing, today, log)
    requests = []
    for spec_name, days in changed.items():
        seen = state.seen.setdefault(spec_name, {})
        new = {
            day: fresh
            for day, files in days.items()
            if (fresh := {n: s for n, s in files.items() if _mark(n, s) not in seen.get(day.isoformat(), [])})
        }
        requests += day_requests(new, job_name=jobs[spec_name])
        for day, files in new.items():
            seen.setdefault(day.isoformat(), []).extend(_mark(n, s) for n, s in files.items())
        state.seen[spec_name] = _bounded(seen, landing.sensor_lookback_days)
    waiting = sum(len(early) for early in state.waiting.values())
    summary = (
        f"{len(messages)} message(s), {len(requests)} run request(s), {waiting} day(s) waiting, "
        f"{ignored} object(s) outside the models' folders"
    )
    return requests, state.dump(), summary


def _mark(name: str, stamp: str) -> str:
    """What the cursor remembers of a file handed to a run: 12 hex digits of its name and stamp."""
    return hashlib.sha256(f"{name}\0{stamp}".encode()).hexdigest()[:12]


def _bounded(seen: dict[str, list[str]], lookback_days: int) -> dict[str, list[str]]:
    """The marks of the days within the lookback of the newest, at most SEEN_LIMIT of them (the newest
    days and, within a day, the latest files kept). Dagster stores the cursor with every tick, so it
    must not grow with the files landed: a duplicate notification of a file forgotten here only
    re-ingests its day, which is idempotent."""
    if not seen:
        return seen
    start = max(dt.date.fromisoformat(d) for d in seen) - dt.timedelta(days=lookback_days)
    kept: dict[str, list[str]] = {}
    room = SEEN_LIMIT
    for day in sorted((d for d in seen if dt.date.fromisoformat(d) >= start), reverse=True):
        if room <= 0:
            break
        kept[day] = seen[day][-room:]
        room -= len(kept[day])
    return kept


def _entry(place: _Place) -> RootEntry:
    return RootEntry(place.top, "", place.day, place.day is not None, False)


def _quarantine_tops(spec: ModelSpec, tops: set[str], landing: LandingZone, today: dt.date, log: Any) -> None:
    """Quarantine what was announced outside any day folder, from one listing of the model's folder."""
    for entry in landing.root_entries(spec.name):
        if entry.name in tops:
            why = misplaced_reason(entry, spec, today, landing)
            if why is not None:
                quarantine_misplaced(landing, spec, entry, why, log)


def build_landing_queue_sensor(specs: list[ModelSpec], ingest_jobs: dict[str, Any]) -> dg.SensorDefinition:
    """One sensor for every model: ingestion from the landing zone's notification queue."""
    by_name = {spec.name: spec for spec in specs}
    job_names = {name: job.name for name, job in ingest_jobs.items()}

    @dg.sensor(
        name=QUEUE_SENSOR,
        jobs=list(ingest_jobs.values()),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Ingests files as the bucket's notifications announce them (MLOPS_LANDING_QUEUE).",
    )
    def landing_queue_sensor(context: dg.SensorEvaluationContext, landing: LandingZone, landing_queue: LandingQueue):
        today = get_current_datetime().astimezone(dt.UTC).date()
        requests, cursor, summary = queue_tick(
            by_name, job_names, landing, landing_queue, context.cursor, today, context.log
        )
        context.update_cursor(cursor)
        if not requests:
            return dg.SkipReason(f"no new files ({summary})")
        context.log.info(summary)
        return requests

    return landing_queue_sensor
