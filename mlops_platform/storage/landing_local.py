"""The landing zone on local disk (the local profile; any profile may keep it on a mounted volume).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_platform.storage.landing import (
    CONTROL_NAME_REASON,
    LINK_REASON,
    NESTED_REASON,
    NOT_REGULAR_REASON,
    REASON_SUFFIX,
    UNASSIGNED,
    LandedFile,
    LandingZone,
    RootEntry,
    has_control_chars,
    is_in_progress,
    landing_order,
    parse_day,
    reason_of,
    reason_text,
    safe_name,
    sanitize,
)


def _entry(path: str, name: str, info: os.stat_result, refused: str | None = None) -> LandedFile:
    # mtime, size and inode: changes whenever the file is replaced or rewritten under the same name.
    stamp = f"{info.st_mtime_ns}:{info.st_size}:{info.st_ino}"
    return LandedFile(name, path, stamp, info.st_size, info.st_mtime_ns, refused)


class LocalLandingZone(LandingZone):
    """Files waiting in a folder on disk, and the quarantine folder beside it."""

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
            found.append(_entry(entry.path, entry.name, info, refused))
        return landing_order(found)

    def day_listing(self, spec_name: str, day: dt.date) -> tuple[list[LandedFile], str | None]:
        folder = self.day_dir(spec_name, day)
        if folder.is_symlink():
            reason = f"day folder {day.isoformat()} {LINK_REASON}"
            return [_entry(str(folder), folder.name, os.lstat(folder), reason)], reason
        return self.list_folder(folder), None

    def entry_stamps(self, entry: RootEntry) -> dict[str, str]:
        if entry.is_link:
            # The ingest refuses the link and quarantines it; the stamp is the link's own lstat.
            try:
                info = os.lstat(entry.path)
            except FileNotFoundError:
                return {}
            return {entry.name: f"link:{info.st_mtime_ns}:{info.st_ino}"}
        return {f.name: f.stamp for f in self.list_folder(entry.path)}

    def root_entries(self, spec_name: str, skip_day: Callable[[dt.date], bool] | None = None) -> list[RootEntry]:
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

    def _walk(self, folder: Path) -> Iterator[Path]:
        for current, dirs, files in os.walk(folder, followlinks=False):
            base = Path(current)
            dirs[:] = sorted(d for d in dirs if not is_in_progress(d))
            # os.walk lists a link to a directory among dirs without descending: quarantine the link.
            yield from (base / d for d in list(dirs) if (base / d).is_symlink())
            yield from (base / name for name in sorted(files) if not is_in_progress(name))

    def misplaced(self, spec_name: str, entry: RootEntry) -> list[tuple[str, LandedFile]]:
        root = Path(self.landing_root) / spec_name
        found = []
        for path in self._walk(entry.path) if entry.is_dir else [entry.path]:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # moved meanwhile (by a run)
            parent = path.parent.relative_to(root).as_posix()
            found.append((UNASSIGNED if parent == "." else parent, _entry(str(path), path.name, info)))
        return found

    @contextmanager
    def local_copy(self, file: LandedFile) -> Iterator[Path]:
        # Read in place: ml.validation opens it without following links and checks it is regular.
        yield file.path

    def exists(self, file: LandedFile) -> bool:
        return os.path.lexists(file.location)

    def quarantine(self, file: LandedFile, spec_name: str, folder: str, reason: str) -> str:
        """Move the entry (a link itself, never its target) into quarantine with its reason beside it.

        Never overwrites an earlier file. The reason is written first: a file is never in quarantine
        without the reason it is there; a rename on one file system then moves it at once."""
        path = file.path
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
        reason_file.write_text(reason_text(str(path), reason))
        try:
            # os.rename moves a link as a link; across file systems shutil.move recreates the link itself.
            shutil.move(str(path), str(target))
        except BaseException:
            reason_file.unlink(missing_ok=True)  # our own note, for a move that did not happen
            raise
        return str(target)

    def quarantined(self, spec_name: str, folder: str) -> dict[str, str]:
        target_dir = Path(self.quarantine_root) / spec_name / folder
        if not target_dir.is_dir():
            return {}
        result = {}
        for reason_file in sorted(target_dir.glob(f"*{REASON_SUFFIX}")):
            data_file = reason_file.with_name(reason_file.name[: -len(REASON_SUFFIX)])
            result[str(data_file)] = reason_of(reason_file.read_text())
        return result

    def land(self, spec_name: str, day: dt.date, name: str, data: bytes) -> str:
        """Write under a hidden name and rename: the landing sensor never sees half a file."""
        folder = self.day_dir(spec_name, day)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        temporary = folder / f".{name}.partial"
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return str(target)
