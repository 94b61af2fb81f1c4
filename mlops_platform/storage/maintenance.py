"""Compaction and vacuum of lake tables without losing a version anything still points at.

Tables grow a few files with every partition write or append. ``maintain_table`` compacts them
(``DeltaTable.optimize.compact``) and vacuums the files no version needs any more, with a retention
computed by ``retention_hours``: long enough that every *protected* version (one a registered model
trained on, or the one the newest materialization of a partition recorded) stays readable, never
shorter than a floor. No Dagster here; automation/maintenance.py collects the protected versions.

Why the retention is enough: a data file of version v is removed (tombstoned) only by a later commit,
so no earlier than the commit of version v + 1. Vacuum deletes tombstoned files whose removal is
older than the retention. A retention of at least ``now - time(v + 1)`` therefore keeps every file
of v, and of every version after it. Log files are kept too: the table's log retention is raised
when the oldest protected version is older than it, so time travel to it keeps working.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlops_platform.storage.errors import storage_errors

DEFAULT_MIN_RETENTION_HOURS = 168  # Delta's own default (delta.deletedFileRetentionDuration, 7 days)
SAFETY_HOURS = 1  # clock skew between writers and this job, and the hour granularity of vacuum
DEFAULT_LOG_RETENTION = dt.timedelta(days=30)  # Delta's default delta.logRetentionDuration
LOG_RETENTION_KEY = "delta.logRetentionDuration"


@dataclass(frozen=True)
class TableMaintenance:
    """What one maintenance pass did to one table."""

    uri: str
    version_before: int
    version_after: int
    protected_versions: tuple[int, ...]
    retention_hours: int
    files_compacted: int
    files_written: int
    files_vacuumed: int
    log_retention: str | None  # the new delta.logRetentionDuration, when it had to be raised
    # Protected versions whose commit is no longer in the log (cleaned up before they were
    # protected): not readable by time travel any more, whatever this pass does.
    unreadable_versions: tuple[int, ...] = ()


def retention_hours(
    commit_times: Mapping[int, dt.datetime],
    protected: Iterable[int],
    latest: int,
    now: dt.datetime,
    minimum_hours: int = DEFAULT_MIN_RETENTION_HOURS,
) -> int:
    """Vacuum retention (whole hours) that keeps every file of every ``protected`` version.

    ``commit_times`` maps versions to their commit time, as the log lists them; a version whose log
    is gone is not in it. The latest version needs no retention: its files are not tombstoned.
    """
    older = [v for v in set(protected) if 0 <= v < latest]
    if not older:
        return minimum_hours
    # Files of v are tombstoned no earlier than the first commit after v that the log still holds.
    later = [version for version in commit_times if version > min(older)]
    if not later:
        return minimum_hours
    first_removal = commit_times[min(later)]
    needed = (now - first_removal).total_seconds() / 3600
    return max(minimum_hours, math.ceil(max(needed, 0.0)) + SAFETY_HOURS)


def log_retention_needed(
    commit_times: Mapping[int, dt.datetime], protected: Iterable[int], now: dt.datetime, current: dt.timedelta
) -> dt.timedelta | None:
    """A log retention long enough for the oldest protected version, or None if ``current`` is.

    Protected versions whose commit is no longer in ``commit_times`` (their log was cleaned up) are
    past saving and left out; ``maintain_table`` reports them.
    """
    known = [v for v in protected if v in commit_times]
    if not known:
        return None
    oldest = commit_times[min(known)]
    age = now - oldest
    if age + dt.timedelta(days=7) <= current:
        return None
    # Raise it with a week of headroom, so that the next runs need not raise it again at once.
    return dt.timedelta(days=math.ceil(age.total_seconds() / 86400) + 14)


def parse_interval(value: str | None) -> dt.timedelta:
    """A Delta interval property ("interval 30 days") as a timedelta; Delta's default when unset."""
    if not value:
        return DEFAULT_LOG_RETENTION
    parts = value.lower().replace("interval", "").split()
    amount, unit = float(parts[0]), parts[1].rstrip("s")
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit]
    return dt.timedelta(seconds=amount * seconds)


def commit_times(history: Iterable[Mapping]) -> dict[int, dt.datetime]:
    """Commit time of each version in a ``DeltaTable.history()`` listing (epoch milliseconds)."""
    return {int(e["version"]): dt.datetime.fromtimestamp(int(e["timestamp"]) / 1000, dt.UTC) for e in history}


def maintain_table(
    uri: str,
    protected: Iterable[int],
    *,
    storage_options: Mapping[str, str] | None = None,
    minimum_retention_hours: int = DEFAULT_MIN_RETENTION_HOURS,
    now: dt.datetime | None = None,
) -> TableMaintenance:
    """Compact the table, then vacuum it without touching any file of a ``protected`` version.

    Run it when the table's writers are idle (a schedule at night): a compaction that races a
    partition overwrite loses with CommitFailedError and changes nothing; the next run compacts.
    """
    from deltalake import DeltaTable

    options = dict(storage_options or {})
    keep = sorted(set(protected))
    with storage_errors(uri, "maintaining"):
        table = DeltaTable(uri, storage_options=options)
        before = table.version()
        keep = [v for v in keep if 0 <= v <= before]
        # Read while nothing else commits (see history() in delta.py): versions as listed now.
        times = commit_times(table.history())
        # A protected version whose commit the log cleanup removed is past saving; one whose commit is
        # left but whose earlier commits and checkpoint are gone cannot be loaded either. Both are
        # reported; the rest are kept. (Retention still counts from every commit time listed.)
        keep = [v for v in keep if v in times]
        loadable = keep if not times or min(times) == 0 else [v for v in keep if _loads(uri, v, before, options)]
        unreadable = tuple(v for v in sorted(set(protected)) if 0 <= v <= before and v not in loadable)
        now = now or dt.datetime.now(dt.UTC)
        raised = log_retention_needed(
            times, keep, now, parse_interval(table.metadata().configuration.get(LOG_RETENTION_KEY))
        )
        if raised is not None:
            table.alter.set_table_properties({LOG_RETENTION_KEY: f"interval {raised.days} days"})
        metrics = table.optimize.compact()
        # Compaction tombstones the files of the version that was latest: retention covers it too.
        table = DeltaTable(uri, storage_options=options)
        times = commit_times(table.history())
        hours = retention_hours(times, keep, table.version(), now, minimum_retention_hours)
        removed = table.vacuum(
            retention_hours=hours,
            dry_run=False,
            enforce_retention_duration=False,
            # Belt and braces: delta-rs also skips the files of these versions by itself.
            keep_versions=loadable or None,
        )
        return TableMaintenance(
            uri=uri,
            version_before=before,
            version_after=DeltaTable(uri, storage_options=options).version(),
            protected_versions=tuple(loadable),
            retention_hours=hours,
            files_compacted=int(metrics.get("numFilesRemoved", 0)),
            files_written=int(metrics.get("numFilesAdded", 0)),
            files_vacuumed=len(removed),
            log_retention=f"interval {raised.days} days" if raised is not None else None,
            unreadable_versions=unreadable,
        )


def _loads(uri: str, version: int, latest: int, options: Mapping[str, str]) -> bool:
    """Whether ``version`` can still be loaded from the log (the latest always can)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    if version == latest:
        return True
    try:
        DeltaTable(uri, version=version, storage_options=dict(options))
    except DeltaError:
        return False
    return True
