"""The landing zone contract: where daily files arrive, and the quarantine where bad ones are kept.

Layout, the same on every storage: ``<landing>/<spec>/<YYYY-MM-DD>/{events,labels}-*.{parquet,csv}``.
A bad file moves to ``<quarantine>/<spec>/<YYYY-MM-DD>/`` with ``<file>.reason.txt`` beside it. Nothing
is deleted that is not kept in quarantine first. Names starting with "." or "_" are uploads in progress
and are left alone until renamed (or, on an object store, until an object of a complete name lands).

One implementation per storage, chosen by the profile (``Profile.landing_zone``):

- ``landing_local.LocalLandingZone``: a folder on disk (any profile may keep it on a mounted volume).
- ``landing_objects.ObjectLandingZone`` and its clouds (``landing_s3``, ``landing_azure``,
  ``landing_gcs``): a prefix of a bucket or container, beside the lake.

Every entry point names what it lists or moves by its location (a path or a URI), so every message
and every quarantine reason names the file the producer landed.
"""

from __future__ import annotations

import abc
import datetime as dt
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

STREAMS = ("events", "labels")
REASON_SUFFIX = ".reason.txt"
REASON_LIMIT = 500
UNASSIGNED = "_unassigned"  # the quarantine folder of files that sat in no day folder
LINK_REASON = "is a symbolic link; links are never followed out of the landing root (land the file itself)"
CONTROL_NAME_REASON = "file name contains control characters (newline, tab, ...); rename it and land it again"
NESTED_REASON = "folders inside a day folder are not read; land the files directly in the day folder"
NOT_REGULAR_REASON = "is not a regular file (a device, socket or pipe)"


def stream_of(name: str) -> str | None:
    """ "events" or "labels" from the file name, or None when the name says neither."""
    for stream in STREAMS:
        if name.startswith(f"{stream}-") or name.startswith(f"{stream}."):
            return stream
    return None


def is_in_progress(name: str) -> bool:
    return name.startswith((".", "_"))


def parse_day(name: str) -> dt.date | None:
    """The day a folder name gives in exactly the YYYY-MM-DD form, else None (not "20261001", "2026-W40-4")."""
    try:
        day = dt.date.fromisoformat(name) if len(name) == 10 else None
    except ValueError:
        return None
    return day if day is not None and day.isoformat() == name else None


def _is_control(char: str) -> bool:
    # Cc/Cf/Cs/Co/Cn and the line and paragraph separators that str.splitlines() also splits on.
    return unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")


def has_control_chars(text: str) -> bool:
    return any(_is_control(char) for char in text)


def sanitize(text: object, limit: int = REASON_LIMIT) -> str:
    """One printable line of at most ``limit`` characters: control characters escaped, the rest cut."""
    raw = str(text)
    out: list[str] = []
    size = 0
    for index, char in enumerate(raw):
        piece = char.encode("unicode_escape").decode("ascii") if _is_control(char) else char
        if size + len(piece) > limit:
            rest = len(raw) - index
            return "".join(out) + f"... ({rest} more characters)"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def safe_name(name: str) -> str:
    """A file name without control characters or separators (each becomes "_"): what quarantine stores it as."""
    cleaned = "".join("_" if _is_control(char) or char == "/" else char for char in name)
    return cleaned[:200] or "_"


def reason_text(source: str, reason: str, **fields: str) -> str:
    """The reason file's content: one sanitized, bounded line per field, so none can forge another."""
    lines = [f"source: {sanitize(source)}", f"quarantined_at: {dt.datetime.now(dt.UTC).isoformat()}"]
    lines += [f"{key}: {sanitize(value)}" for key, value in fields.items()]
    lines.append(f"reason: {sanitize(reason)}")
    return "\n".join(lines) + "\n"


def reason_of(text: str) -> str:
    """The ``reason:`` line of a reason file's content."""
    for line in text.split("\n"):
        if line.startswith("reason: "):
            return sanitize(line[len("reason: ") :])
    return "unknown"


def secret_value(value: str | None) -> str | None:
    """A secret field's value: a ``dagster.EnvVar`` is resolved from the environment. Dagster resolves it
    when it initialises the resource for a run or a tick; a tool using the resource directly (the CLI's
    simulate, a test landing files) gets the variable's name otherwise."""
    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


@dataclass(frozen=True)
class LandedFile:
    """One landed entry, as one listing saw it. Refused entries (links, odd names, sub-folders) are
    kept with ``refused`` set: they are quarantined, never read.

    ``stamp`` changes whenever the entry is replaced or rewritten under the same name (on disk its
    mtime, size and inode; on an object store its ETag or generation); ``modified_ns`` orders files
    in landing order (then the name)."""

    name: str
    location: str  # a path on disk or an object URI
    stamp: str
    size: int
    modified_ns: int
    refused: str | None = None

    @property
    def path(self) -> Path:
        """The file on disk (the local landing zone's entries only)."""
        return Path(self.location)


@dataclass(frozen=True)
class RootEntry:
    """An entry directly under the spec's landing folder (a year of them is listed every tick: kept light)."""

    name: str
    location: str  # the entry's path or URI prefix
    day: dt.date | None  # the day its name gives, or None
    is_dir: bool  # a folder (a real directory, or an object-store prefix); never a link
    is_link: bool

    @property
    def path(self) -> Path:
        return Path(self.location)


def landing_order(files: list[LandedFile]) -> list[LandedFile]:
    return sorted(files, key=lambda f: (f.modified_ns, f.name))


class LandingZone(dg.ConfigurableResource, abc.ABC):
    """Files waiting to be ingested, and the quarantine for files that cannot be (resource ``landing``).

    What every implementation guarantees:
    - Listings never follow links and never open a file; in-progress names are left out.
    - ``quarantine`` loses nothing: the file is in the quarantine with its reason before it leaves the
      landing zone, a name already in quarantine is never overwritten, and a move interrupted at any
      point is completed (not duplicated) by the next call for the same file.
    - Every store error names the store and the URI (``storage.errors``): an outage is retryable, a
      refusal is not.
    """

    landing_root: str
    quarantine_root: str
    max_file_bytes: int = Field(
        default=512 * 1024**2, gt=0, description="Largest landed file accepted, in bytes on disk."
    )
    max_rows: int = Field(default=20_000_000, gt=0, description="Most rows a landed file may hold.")
    max_uncompressed_bytes: int = Field(
        default=2 * 1024**3,
        gt=0,
        description="Largest decoded size of a Parquet file (from its metadata, before reading it).",
    )
    max_future_days: int = Field(
        default=7,
        ge=0,
        description="Folders up to this many days after today (UTC) wait for their day; later ones are refused.",
    )
    sensor_lookback_days: int = Field(
        default=7,
        ge=1,
        description="Days before the newest landed day that the landing sensor still watches for changes.",
    )

    def spec_root(self, spec_name: str) -> str:
        """The spec's landing folder, as messages name it."""
        return f"{self.landing_root.rstrip('/')}/{spec_name}"

    def quarantine_folder(self, spec_name: str) -> str:
        return f"{self.quarantine_root.rstrip('/')}/{spec_name}"

    @abc.abstractmethod
    def root_entries(self, spec_name: str, skip_day: Callable[[dt.date], bool] | None = None) -> list[RootEntry]:
        """Entries directly under the spec's landing folder, by name, from one listing (no per-entry call).

        ``skip_day``: day folders the caller does not need (the sensor's settled days), left out as early
        as possible because a year of them is listed every tick."""

    @abc.abstractmethod
    def day_listing(self, spec_name: str, day: dt.date) -> tuple[list[LandedFile], str | None]:
        """The day's entries in landing order, and None; or, when the day folder itself is refused (a
        link), ([the folder as one refused entry], reason)."""

    @abc.abstractmethod
    def entry_stamps(self, entry: RootEntry) -> dict[str, str]:
        """{name: stamp} of a day entry of ``root_entries`` (a link day: the link's own stamp)."""

    def entries_stamps(self, spec_name: str, entries: list[RootEntry]) -> dict[str, dict[str, str]]:
        """``entry_stamps`` of several day entries of the spec, by entry name. An object store answers
        many days with one paginated listing instead of one listing per day."""
        return {entry.name: self.entry_stamps(entry) for entry in entries}

    @abc.abstractmethod
    def misplaced(self, spec_name: str, entry: RootEntry) -> list[tuple[str, LandedFile]]:
        """Every file to quarantine under an entry that is not a day, with the quarantine folder it
        belongs in (its parent folder's path below the spec, or ``UNASSIGNED``); never followed."""

    @abc.abstractmethod
    def local_copy(self, file: LandedFile) -> AbstractContextManager[Path]:
        """A path on this machine holding the file's bytes, for as long as the context lasts (the
        file itself on disk; a temporary download on an object store). Raises FileNotFoundError
        when the file is gone (moved by another run)."""

    @abc.abstractmethod
    def exists(self, file: LandedFile) -> bool:
        """Whether the entry is still in the landing zone (a link counts as itself)."""

    @abc.abstractmethod
    def quarantine(self, file: LandedFile, spec_name: str, folder: str, reason: str) -> str:
        """Move ``file`` into ``<quarantine>/<spec>/<folder>/`` with its reason beside it; return where it
        went. FileNotFoundError when it is no longer in the landing zone (another run moved it)."""

    @abc.abstractmethod
    def quarantined(self, spec_name: str, folder: str) -> dict[str, str]:
        """Quarantined files of one folder (day) and their reasons, by location."""

    @abc.abstractmethod
    def land(self, spec_name: str, day: dt.date, name: str, data: bytes) -> str:
        """Land a file as a producer does (atomically: no listing sees half of it); returns its location."""

    def files_for(self, spec_name: str, day: dt.date) -> list[LandedFile]:
        """Complete regular files of one day, in landing order: modification time, then name."""
        files, refused_day = self.day_listing(spec_name, day)
        return [] if refused_day else [f for f in files if f.refused is None]

    def scan(self, spec_name: str) -> dict[str, list[LandedFile]]:
        """Every complete file under the spec's landing folder, by folder (normally one day).

        A full listing, kept for tools and tests; the landing sensor lists only the days it watches."""
        found: dict[str, list[LandedFile]] = {}
        for entry in self.root_entries(spec_name):
            if entry.day is not None and entry.is_dir:
                files, _ = self.day_listing(spec_name, entry.day)
                found.setdefault(entry.name, []).extend(files)
                continue
            for folder, file in self.misplaced(spec_name, entry):
                found.setdefault("" if folder == UNASSIGNED else folder, []).append(file)
        return found
