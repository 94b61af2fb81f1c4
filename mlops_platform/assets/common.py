"""What every stage of a family shares: asset keys, partitions, freshness, retries and metadata helpers."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import dagster as dg

from mlops_platform.specs.base import ModelSpec, spec_code_version

DELTA = "delta_io_manager"
# Marks the stages that train (training set, model, evaluation, champion): their runs carry it as a run
# tag (the train job's, the training automation sensor's), which the Kubernetes run coordinator limits.
STAGE_TAG = "mlops-platform/stage"
TRAINING_TAGS = {STAGE_TAG: "training"}
FILES_VALID_CHECK = "files_valid"
THRESHOLD_CHECK = "meets_threshold"
REGRESSION_CHECK = "no_regression_vs_champion"
SOURCE_FILE_COLUMN = "source_file"

# A pandas DataFrame. Typed as Any because Dagster evaluates asset annotations when the code location
# loads, and importing pandas there would cost every run, step and sensor tick ~0.4 s.
Frame: TypeAlias = Any

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@dataclass(frozen=True)
class Stage:
    """What a stage builder needs to know about its family: the spec, its keys and partitions."""

    spec: ModelSpec

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, name])

    @property
    def group(self) -> str:
        return self.spec.name

    @functools.cached_property
    def partitions(self) -> dg.DailyPartitionsDefinition:
        return daily_partitions(self.spec)

    @functools.cached_property
    def code_version(self) -> str:
        return spec_code_version(self.spec)

    @functools.cached_property
    def freshness(self) -> dg.FreshnessPolicy:
        return daily_freshness(self.spec)


def daily_partitions(spec: ModelSpec) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=spec.start_date.isoformat())


def daily_freshness(spec: ModelSpec) -> dg.FreshnessPolicy:
    """A daily asset is late once its day plus ``freshness_hours`` has passed without an update.

    Both windows are longer than a day (the cadence): a healthy platform updates every daily asset
    once a day, so the asset is a full 24 h old at the moment of each refresh, and a window of 24 h or
    less would warn every day in normal operation. The failure comes at ``freshness_hours`` (at least
    25 h), the warning halfway between the cadence and the failure (30 h for a 36 h margin).
    """
    margin = dt.timedelta(hours=spec.freshness_hours)
    day = dt.timedelta(hours=24)
    fail = max(margin, day + dt.timedelta(hours=1))
    warn = day + (fail - day) / 2
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)


@contextlib.contextmanager
def chosen_beta_features() -> Iterator[None]:
    """Silence Dagster's beta warnings for the features the platform uses on purpose
    (``backfill_policy``, freshness policies): the user did not choose them and cannot act on them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        yield


def present(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata without the entries that do not apply (shown as "null" in the UI otherwise)."""
    return {key: value for key, value in metadata.items() if value is not None}


def is_transient(exc: BaseException) -> bool:
    """A hiccup a later attempt can get past: an unreachable or overloaded store, a locked database.

    Decided by the exception's type and status code, never by substrings of its message (a customer id
    containing 429 or a sample count of 1503 is not an outage): ``storage.errors.is_unavailable``
    recognises the storage and HTTP clients' connection, timeout and 5xx/429 errors, also wrapped.
    A store that answered and refused (StorageError: 403, 404, a bad request) is not transient, nor is
    a PermissionError or any other OSError that is not a connection or timeout error.
    """
    from mlops_platform.storage.errors import StorageError, is_unavailable

    if isinstance(exc, StorageError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if _is_sqlite_lock(exc):
        return True
    return is_unavailable(exc)


def _is_sqlite_lock(exc: BaseException) -> bool:
    """SQLite's "database is locked" (the local MLflow store under concurrent writers), also wrapped."""
    import sqlite3

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.OperationalError) and "database is locked" in str(current):
            return True
        # SQLAlchemy's OperationalError wraps the driver's error as ``orig``.
        orig = getattr(current, "orig", None)
        if isinstance(orig, sqlite3.OperationalError) and "database is locked" in str(orig):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_only_transient(fn):
    """Let the RetryPolicy retry storage and network hiccups, but fail at once on everything else.

    A deterministic error (bad data, an untrusted type, a failed fit) would fail the same way on
    every retry; it becomes a Failure that names the asset and is not retried.
    """

    def convert(exc: Exception) -> Exception:
        if isinstance(exc, dg.Failure) or is_transient(exc):
            return exc
        return dg.Failure(description=f"{fn.__name__}: {type(exc).__name__}: {exc}", allow_retries=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise convert(exc) from exc

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise convert(exc) from exc

    return wrapper
