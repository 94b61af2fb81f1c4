"""The landing zone: where daily files arrive, and the quarantine where bad ones are kept.

Layout: ``<landing>/<spec>/<YYYY-MM-DD>/{events,labels}-*.{parquet,csv}``. A bad file moves to
``<quarantine>/<spec>/<YYYY-MM-DD>/`` with ``<file>.reason.txt`` beside it. Nothing is deleted.
Names starting with "." or "_" are uploads in progress and are left alone until renamed.

Hostile or careless entries are refused, never followed: a symbolic link (a day folder or a file) is
quarantined as the link itself, so nothing outside the landing root is ever read or moved; a name with
control characters is quarantined under a sanitized name; every reason is sanitized and bounded, so a
name or an error message can neither forge lines of a reason file nor grow the event log.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

STREAMS = ("events", "labels")
REASON_SUFFIX = ".reason.txt"
REASON_LIMIT = 500
LINK_REASON = "is a symbolic link; links are never followed out of the landing root (land the file itself)"
CONTROL_NAME_REASON = "file name contains control characters (newline, tab, ...); rename it and land it again"
NESTED_REASON = "folders inside a day folder are not read; land the files directly in the day folder"
NOT_REGULAR_REASON = "is not a regular file (a device, socket or pipe)"


def stream_of(path: Path) -> str | None:
    """ "events" or "labels" from the file name, or None when the name says neither."""
    for stream in STREAMS:
        if path.name.startswith(f"{stream}-") or path.name.startswith(f"{stream}."):
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
    """A file name without control characters (each becomes "_"): what quarantine stores it as."""
    cleaned = "".join("_" if _is_control(char) else char for char in name)
    return cleaned[:200] or "_"


@dataclass(frozen=True)
class LandedFile:
    """A directory entry of a day folder, from one lstat: links and odd names are kept to be refused."""

    path: Path
    mtime_ns: int
    size: int
    inode: int
    refused: str | None = None

    @property
    def stamp(self) -> str:
        """Changes whenever the file is replaced or rewritten under the same name."""
        return f"{self.mtime_ns}:{self.size}:{self.inode}"


@dataclass(frozen=True)
class RootEntry:
    """An entry directly under the spec's landing folder (a year of them is listed every tick: kept light)."""

    name: str
    location: str  # the entry's path as a string; ``path`` builds the Path when it is needed
    day: dt.date | None  # the day its name gives, or None
    is_dir: bool  # a real directory (never a link)
    is_link: bool

    @property
    def path(self) -> Path:
        return Path(self.location)


class LandingZone(dg.ConfigurableResource):
    """Files waiting to be ingested, and the quarantine for files that cannot be."""

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

    def day_dir(self, spec_name: str, day: dt.date) -> Path:
        return Path(self.landing_root) / spec_name / day.isoformat()

    def list_folder(self, folder: Path) -> list[LandedFile]:
        """Entries of one day folder from a single lstat each, in landing order (mtime, then name).

        In-progress names are left out. Links, names with control characters, sub-folders and
        special files are listed with ``refused`` set; they are never opened. An entry that vanishes
        between the listing and its lstat (moved by a running ingest) is left out: it is gone.
        """
        found: list[LandedFile] = []
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return found
        for entry in entries:
            if is_in_progress(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            refused = None
            if stat.S_ISLNK(info.st_mode):
                refused = LINK_REASON
            elif has_control_chars(entry.name):
                refused = CONTROL_NAME_REASON
            elif stat.S_ISDIR(info.st_mode):
                refused = NESTED_REASON
            elif not stat.S_ISREG(info.st_mode):
                refused = NOT_REGULAR_REASON
            found.append(LandedFile(Path(entry.path), info.st_mtime_ns, info.st_size, info.st_ino, refused))
        return sorted(found, key=lambda f: (f.mtime_ns, f.path.name))

    def day_listing(self, spec_name: str, day: dt.date) -> tuple[list[LandedFile], str | None]:
        """The day's entries in landing order, or ([], reason) when the day folder itself is refused."""
        folder = self.day_dir(spec_name, day)
        if folder.is_symlink():
            return [], f"day folder {day.isoformat()} {LINK_REASON}"
        return self.list_folder(folder), None

    def files_for(self, spec_name: str, day: dt.date) -> list[Path]:
        """Complete regular files of one day, in landing order: modification time, then name."""
        files, refused_day = self.day_listing(spec_name, day)
        return [] if refused_day else [f.path for f in files if f.refused is None]

    def root_entries(self, spec_name: str, skip_day: Callable[[dt.date], bool] | None = None) -> list[RootEntry]:
        """Entries directly under the spec's landing folder, from one directory listing (no stat).

        ``skip_day``: day folders the caller does not need (the sensor's settled days), left out as
        early as possible because a year of them is listed every tick.
        """
        root = Path(self.landing_root) / spec_name
        try:
            entries = list(os.scandir(root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        result = []
        for entry in entries:
            if is_in_progress(entry.name):
                continue
            day = parse_day(entry.name)
            if day is not None and skip_day is not None and skip_day(day):
                continue
            try:
                is_link = entry.is_symlink()
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except FileNotFoundError:
                continue
            result.append(RootEntry(entry.name, entry.path, day, is_dir, is_link))
        return sorted(result, key=lambda e: e.name)

    def misplaced_files(self, folder: Path) -> list[Path]:
        """Every entry to quarantine below a folder that is not a day: files and links, never followed."""
        found: list[Path] = []
        for current, dirs, files in os.walk(folder, followlinks=False):
            base = Path(current)
            dirs[:] = sorted(d for d in dirs if not is_in_progress(d))
            # os.walk lists a link to a directory among dirs without descending: quarantine the link.
            found.extend(base / d for d in list(dirs) if (base / d).is_symlink())
            found.extend(base / name for name in sorted(files) if not is_in_progress(name))
        return found

    def scan(self, spec_name: str) -> dict[str, list[Path]]:
        """Every complete file under the spec's landing folder, by folder path (normally one day).

        A full walk, kept for tools and tests; the landing sensor lists only the days it watches.
        """
        root = Path(self.landing_root) / spec_name
        found: dict[str, list[Path]] = {}
        for entry in self.root_entries(spec_name):
            paths = self.misplaced_files(entry.path) if entry.is_dir else [entry.path]
            for path in paths:
                parts = path.relative_to(root).parts
                found.setdefault("/".join(parts[:-1]), []).append(path)
        return found

    def quarantine(self, path: Path, spec_name: str, folder: str, reason: str) -> Path:
        """Move ``path`` (a link itself, never its target) into quarantine with its reason beside it.

        Never overwrites an earlier file. The stored name has no control characters, and the reason
        file holds one sanitized, bounded line per field, so neither can forge another line.
        """
        target_dir = Path(self.quarantine_root) / spec_name / safe_name(folder)
        target_dir.mkdir(parents=True, exist_ok=True)
        name = safe_name(path.name)
        target = target_dir / name
        stem, suffix = os.path.splitext(name)
        counter = 1
        while os.path.lexists(target) or os.path.lexists(target.with_name(target.name + REASON_SUFFIX)):
            target = target_dir / f"{stem}.{counter}{suffix}"
            counter += 1
        if not os.path.lexists(path):
            raise FileNotFoundError(f"{sanitize(path)} is no longer in the landing zone")
        reason_file = target.with_name(target.name + REASON_SUFFIX)
        # The reason first: a file is never in quarantine without the reason it is there.
        reason_file.write_text(
            f"source: {sanitize(path)}\n"
            f"quarantined_at: {dt.datetime.now(dt.UTC).isoformat()}\n"
            f"reason: {sanitize(reason)}\n"
        )
        try:
            # os.rename moves a link as a link; across file systems shutil.move recreates the link itself.
            shutil.move(str(path), str(target))
        except BaseException:
            reason_file.unlink(missing_ok=True)  # our own note, for a move that did not happen
            raise
        return target

    def quarantined(self, spec_name: str, folder: str) -> dict[str, str]:
        """Quarantined files of one folder (day) and their reasons."""
        target_dir = Path(self.quarantine_root) / spec_name / folder
        if not target_dir.is_dir():
            return {}
        result = {}
        for reason_file in sorted(target_dir.glob(f"*{REASON_SUFFIX}")):
            data_file = reason_file.with_name(reason_file.name[: -len(REASON_SUFFIX)])
            reason = next(
                (
                    line[len("reason: ") :]
                    for line in reason_file.read_text().split("\n")
                    if line.startswith("reason: ")
                ),
                "unknown",
            )
            result[str(data_file)] = sanitize(reason)
        return result
