"""The landing zone on an object store: the layout, the listings and the quarantine protocol, once.

Each cloud (``landing_s3``, ``landing_azure``, ``landing_gcs``) supplies only the object primitives
(``_list``, ``_head``, ``_download``, ``_upload``, ``_copy``, ``_delete``); everything else is here.

Folders are key prefixes: ``<root>/<spec>/<YYYY-MM-DD>/<name>``. A prefix below a day folder is a
sub-folder (refused, as on disk); an object store has no links. An object's stamp is its ETag (S3,
Azure) or generation (GCS), so an object replaced under the same key re-runs its day.

Quarantine moves nothing it has not copied: (1) copy the object to ``<quarantine>/<spec>/<folder>/``
with its source and stamp in the copy's metadata, (2) verify the copy (size, and a content checksum
the store keeps, else both objects hashed), (3) write the reason object, (4) delete the original, only
while it still has the stamp that was copied (a producer's replacement in between is kept). A process
killed between any two steps leaves the original in the landing zone; the next attempt finds its own
earlier copy by that metadata and completes the steps instead of copying again.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_platform.storage.errors import storage_errors
from mlops_platform.storage.landing import (
    CONTROL_NAME_REASON,
    NESTED_REASON,
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

BULK_FROM = 3  # more day folders than this to list: one listing of the spec's folder instead of one per day
SOURCE_KEY = "mlops-source"  # metadata of a quarantined copy: where it came from
SOURCE_STAMP = "mlops-source-stamp"  # ... and the stamp it had


class QuarantineError(RuntimeError):
    """A copy could not be verified: the original stays in the landing zone."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as the store lists it."""

    key: str
    size: int
    etag: str  # ETag (S3, Azure) or generation (GCS): changes when the object is replaced
    modified_ns: int
    checksum: str | None = None  # a content checksum the store keeps and a copy keeps (MD5, CRC32C), if any
    metadata: dict[str, str] = field(default_factory=dict)


def _ascii(text: str) -> str:
    """Object metadata values are ASCII on every store: percent-encode the rest."""
    return quote(text, safe="/:@=+,.-_~")


def split_uri(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket or container, prefix without slashes at either end)."""
    scheme, rest = uri.split("://", 1)
    bucket, _, prefix = rest.partition("/")
    return scheme, bucket.split("@", 1)[0], prefix.strip("/")


class ObjectLandingZone(LandingZone, abc.ABC):
    """The landing zone and quarantine as prefixes of a bucket (``landing_root`` and ``quarantine_root``
    are URIs of the profile's store). Clients are created on first use, never at load."""

    # --- what a cloud provides ----------------------------------------------------------------
    @abc.abstractmethod
    def _list(self, bucket: str, prefix: str, delimiter: str | None) -> tuple[list[ObjectInfo], list[str]]:
        """Every object under ``prefix`` (all pages) and, with a delimiter, the sub-prefixes (ending in it)."""

    @abc.abstractmethod
    def _head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object with its metadata, or None when there is none."""

    @abc.abstractmethod
    def _download(self, bucket: str, key: str, target: Path) -> None:
        """The object's bytes into ``target``; FileNotFoundError when it is gone."""

    @abc.abstractmethod
    def _upload(self, bucket: str, key: str, data: bytes) -> None:
        """One atomic put (no listing sees a partial object)."""

    @abc.abstractmethod
    def _copy(self, source: tuple[str, str], target: tuple[str, str], metadata: dict[str, str]) -> None:
        """A server-side copy of (bucket, key) to (bucket, key), with ``metadata`` on the copy."""

    @abc.abstractmethod
    def _delete(self, bucket: str, key: str, etag: str) -> bool:
        """Delete the object only while its stamp is ``etag``; False when it was replaced (kept) or is gone."""

    def uri(self, bucket: str, key: str) -> str:
        scheme = self.landing_root.split("://", 1)[0]
        return f"{scheme}://{bucket}/{key}"

    def _checkpoint(self, step: str) -> None:
        """Called after each quarantine step ("copied", "verified", "reasoned", "deleted"): the seam a
        test uses to kill the process between two steps. Does nothing."""

    # --- layout ---------------------------------------------------------------------------------
    def _root(self, root: str, *parts: str) -> tuple[str, str]:
        _, bucket, prefix = split_uri(root)
        return bucket, "/".join(p for p in (prefix, *parts) if p)

    def _call(self, bucket: str, key: str, operation: str) -> Any:
        return storage_errors(self.uri(bucket, key), operation, sdk_refusals=True)

    def _file(self, bucket: str, info: ObjectInfo, name: str, refused: str | None = None) -> LandedFile:
        return LandedFile(name, self.uri(bucket, info.key), f"etag:{info.etag}", info.size, info.modified_ns, refused)

    def _key_of(self, file: LandedFile) -> tuple[str, str]:
        _, bucket, key = split_uri(file.location)
        return bucket, key

    def root_entries(self, spec_name: str, skip_day: Callable[[dt.date], bool] | None = None) -> list[RootEntry]:
        bucket, prefix = self._root(self.landing_root, spec_name)
        with self._call(bucket, prefix + "/", "listing"):
            objects, prefixes = self._list(bucket, prefix + "/", "/")
        entries = []
        for sub in prefixes:
            name = sub[len(prefix) + 1 :].rstrip("/")
            day = parse_day(name)
            if is_in_progress(name) or (day is not None and skip_day is not None and skip_day(day)):
                continue
            entries.append(RootEntry(name, self.uri(bucket, sub), day, True, False))
        for info in objects:
            name = info.key[len(prefix) + 1 :]
            if not is_in_progress(name):
                entries.append(RootEntry(name, self.uri(bucket, info.key), None, False, False))
        return sorted(entries, key=lambda e: e.name)

    def _folder_files(self, bucket: str, prefix: str) -> list[LandedFile]:
        """Every object below a folder prefix: its own files, and those of sub-folders refused."""
        with self._call(bucket, prefix, "listing"):
            objects, _ = self._list(bucket, prefix, None)
        files = (self._day_file(bucket, info, info.key[len(prefix) :]) for info in objects)
        return landing_order([file for file in files if file is not None])

    def _day_file(self, bucket: str, info: ObjectInfo, relative: str) -> LandedFile | None:
        """An object of a day folder (``relative``: its key below the folder), refused when it sits in a
        sub-folder or its name has control characters; None for an upload in progress."""
        if any(is_in_progress(part) for part in relative.split("/")):
            return None
        refused = NESTED_REASON if "/" in relative else CONTROL_NAME_REASON if has_control_chars(relative) else None
        return self._file(bucket, info, relative, refused)

    def day_listing(self, spec_name: str, day: dt.date) -> tuple[list[LandedFile], str | None]:
        bucket, prefix = self._root(self.landing_root, spec_name, day.isoformat())
        return self._folder_files(bucket, prefix + "/"), None

    def entry_stamps(self, entry: RootEntry) -> dict[str, str]:
        _, bucket, prefix = split_uri(entry.location)
        return {f.name: f.stamp for f in self._folder_files(bucket, prefix + "/")}

    def entries_stamps(self, spec_name: str, entries: list[RootEntry]) -> dict[str, dict[str, str]]:
        """A few days: one listing each. More: one paginated listing of the spec's folder from the first of
        them on (``_list_after``), grouped by day, so a dense window or a first tick over a year costs the
        pages of its objects, not a request per day."""
        if len(entries) <= BULK_FROM:
            return super().entries_stamps(spec_name, entries)
        bucket, prefix = self._root(self.landing_root, spec_name)
        wanted = {entry.name for entry in entries}
        with self._call(bucket, prefix + "/", "listing"):
            objects = self._list_after(bucket, prefix + "/", f"{prefix}/{min(wanted)}")
        found: dict[str, dict[str, str]] = {name: {} for name in wanted}
        for info in objects:
            folder, _, relative = info.key[len(prefix) + 1 :].partition("/")
            file = self._day_file(bucket, info, relative) if folder in wanted and relative else None
            if file is not None:
                found[folder][file.name] = file.stamp
        return found

    def _list_after(self, bucket: str, prefix: str, start_after: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` whose key sorts after ``start_after``. Stores that can start a
        listing at a key (S3's StartAfter, GCS's startOffset) override this to skip what sorts before."""
        objects, _ = self._list(bucket, prefix, None)
        return [info for info in objects if info.key > start_after]

    def misplaced(self, spec_name: str, entry: RootEntry) -> list[tuple[str, LandedFile]]:
        bucket, root = self._root(self.landing_root, spec_name)
        _, _, key = split_uri(entry.location)
        if not entry.is_dir:
            with self._call(bucket, key, "reading"):
                info = self._head(bucket, key)
            return [] if info is None else [(UNASSIGNED, self._file(bucket, info, entry.name))]
        with self._call(bucket, key + "/", "listing"):
            objects, _ = self._list(bucket, key + "/", None)
        found = []
        for info in objects:
            relative = info.key[len(root) + 1 :]  # below the spec's folder: "not-a-day/sub/x.csv"
            if any(is_in_progress(part) for part in relative.split("/")):
                continue
            parent, _, name = relative.rpartition("/")
            found.append((parent or UNASSIGNED, self._file(bucket, info, name)))
        return found

    # --- reading --------------------------------------------------------------------------------
    @contextmanager
    def local_copy(self, file: LandedFile) -> Iterator[Path]:
        """A temporary download of the object; refused before downloading when it is over the size limit."""
        from mlops_platform.ml.validation import InvalidFile

        if file.size > self.max_file_bytes:
            raise InvalidFile(f"file is {file.size} bytes; the limit is {self.max_file_bytes}")
        bucket, key = self._key_of(file)
        suffix = os.path.splitext(file.name)[1][:20]
        with tempfile.TemporaryDirectory(prefix="mlops-landed-") as folder:
            target = Path(folder) / f"object{suffix}"
            with self._call(bucket, key, "reading"):
                self._download(bucket, key, target)
            yield target

    def exists(self, file: LandedFile) -> bool:
        bucket, key = self._key_of(file)
        with self._call(bucket, key, "reading"):
            return self._head(bucket, key) is not None

    def land(self, spec_name: str, day: dt.date, name: str, data: bytes) -> str:
        bucket, key = self._root(self.landing_root, spec_name, day.isoformat(), name)
        with self._call(bucket, key, "writing"):
            self._upload(bucket, key, data)
        return self.uri(bucket, key)

    # --- quarantine -----------------------------------------------------------------------------
    def quarantine(self, file: LandedFile, spec_name: str, folder: str, reason: str) -> str:
        source = self._key_of(file)
        with self._call(*source, "reading"):
            original = self._head(*source)
        if original is None:
            raise FileNotFoundError(f"{sanitize(file.location)} is no longer in the landing zone")
        stamp = original.etag
        bucket, folder_key = self._root(self.quarantine_root, spec_name, safe_name(folder))
        target = self._earlier_copy(bucket, folder_key, file, stamp)
        if target is not None:
            try:
                self._verify(source, original, target)
            except QuarantineError:
                # Our own earlier copy (its metadata says so) never completed: drop it and copy again.
                earlier = self._head(*target)
                with self._call(*target, "deleting"):
                    if earlier is not None:
                        self._delete(*target, earlier.etag)
                target = None
        if target is None:
            target = (bucket, self._free_key(bucket, folder_key, safe_name(file.name)))
            with self._call(*target, "writing"):
                self._copy(source, target, {SOURCE_KEY: _ascii(file.location), SOURCE_STAMP: _ascii(stamp)})
            self._checkpoint("copied")
            self._verify(source, original, target)
        self._checkpoint("verified")
        reason_key = (target[0], target[1] + REASON_SUFFIX)
        with self._call(*reason_key, "writing"):
            if self._head(*reason_key) is None:
                text = reason_text(file.location, reason, source_stamp=stamp)
                self._upload(*reason_key, text.encode())
        self._checkpoint("reasoned")
        with self._call(*source, "deleting"):
            self._delete(*source, stamp)  # False: replaced meanwhile; the new object stays to be ingested
        self._checkpoint("deleted")
        return self.uri(*target)

    def _earlier_copy(self, bucket: str, folder_key: str, file: LandedFile, stamp: str) -> tuple[str, str] | None:
        """A copy an interrupted attempt made of this object at this stamp, if there is one."""
        stem = os.path.splitext(safe_name(file.name))[0]
        with self._call(bucket, folder_key + "/", "listing"):
            objects, _ = self._list(bucket, f"{folder_key}/{stem}", "/")  # the name and its numbered variants
            for info in objects:
                if info.key.endswith(REASON_SUFFIX):
                    continue
                head = self._head(bucket, info.key)
                if head is not None and head.metadata.get(SOURCE_KEY) == _ascii(file.location):  # noqa: SIM102
                    if head.metadata.get(SOURCE_STAMP) == _ascii(stamp):  # this version, not an earlier one
                        return bucket, info.key
        return None

    def _free_key(self, bucket: str, folder_key: str, name: str) -> str:
        stem, suffix = os.path.splitext(name)
        candidate, counter = f"{folder_key}/{name}", 1
        with self._call(bucket, candidate, "reading"):
            while self._head(bucket, candidate) is not None or self._head(bucket, candidate + REASON_SUFFIX):
                candidate = f"{folder_key}/{stem}.{counter}{suffix}"
                counter += 1
        return candidate

    def _verify(self, source: tuple[str, str], original: ObjectInfo, target: tuple[str, str]) -> None:
        with self._call(*target, "reading"):
            copy = self._head(*target)
        if copy is None or copy.size != original.size:
            found = "nothing" if copy is None else f"{copy.size} bytes"
            raise QuarantineError(
                f"the quarantine copy {self.uri(*target)} holds {found}, the original {self.uri(*source)} "
                f"{original.size} bytes; "
                "the original stays in the landing zone"
            )
        if original.checksum and copy.checksum:
            same = original.checksum == copy.checksum
        else:  # the store keeps no comparable checksum (an S3 multipart ETag): compare the contents
            same = self._content_hash(*source) == self._content_hash(*target)
        if not same:
            raise QuarantineError(
                f"the quarantine copy {self.uri(*target)} differs from {self.uri(*source)}; "
                "the original stays in the landing zone"
            )

    def _content_hash(self, bucket: str, key: str) -> str:
        with tempfile.TemporaryDirectory(prefix="mlops-verify-") as folder:
            target = Path(folder) / "object"
            with self._call(bucket, key, "reading"):
                self._download(bucket, key, target)
            digest = hashlib.sha256()
            with target.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()

    def quarantined(self, spec_name: str, folder: str) -> dict[str, str]:
        bucket, folder_key = self._root(self.quarantine_root, spec_name, folder)
        with self._call(bucket, folder_key + "/", "listing"):
            objects, _ = self._list(bucket, folder_key + "/", "/")
        result = {}
        for info in objects:
            if not info.key.endswith(REASON_SUFFIX):
                continue
            with tempfile.TemporaryDirectory(prefix="mlops-reason-") as tmp:
                target = Path(tmp) / "reason"
                with self._call(bucket, info.key, "reading"):
                    self._download(bucket, info.key, target)
                text = target.read_text(errors="replace")
            result[self.uri(bucket, info.key[: -len(REASON_SUFFIX)])] = reason_of(text)
        return result
