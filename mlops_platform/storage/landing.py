"""The landing zone: where daily files arrive, and the quarantine where bad ones are kept.

Layout: ``<landing>/<spec>/<YYYY-MM-DD>/{events,labels}-*.{parquet,csv}``. A bad file moves to
``<quarantine>/<spec>/<YYYY-MM-DD>/`` with ``<file>.reason.txt`` beside it. Nothing is deleted.
Names starting with "." or "_" are uploads in progress and are left alone until renamed.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg

STREAMS = ("events", "labels")
REASON_SUFFIX = ".reason.txt"


def stream_of(path: Path) -> str | None:
    """ "events" or "labels" from the file name, or None when the name says neither."""
    for stream in STREAMS:
        if path.name.startswith(f"{stream}-") or path.name.startswith(f"{stream}."):
            return stream
    return None


def is_in_progress(name: str) -> bool:
    return name.startswith((".", "_"))


class LandingZone(dg.ConfigurableResource):
    """Files waiting to be ingested, and the quarantine for files that cannot be."""

    landing_root: str
    quarantine_root: str

    def day_dir(self, spec_name: str, day: dt.date) -> Path:
        return Path(self.landing_root) / spec_name / day.isoformat()

    def files_for(self, spec_name: str, day: dt.date) -> list[Path]:
        """Complete files of one day, sorted by name."""
        folder = self.day_dir(spec_name, day)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and not is_in_progress(p.name))

    def scan(self, spec_name: str) -> dict[str, list[Path]]:
        """Every complete file under the spec's landing folder, by folder path (normally one day)."""
        root = Path(self.landing_root) / spec_name
        found: dict[str, list[Path]] = {}
        if not root.is_dir():
            return found
        for path in sorted(root.rglob("*")):
            parts = path.relative_to(root).parts
            if path.is_file() and not any(is_in_progress(part) for part in parts):
                # Keyed by the whole folder path, so a file nested below a day is not taken for that day.
                found.setdefault("/".join(parts[:-1]), []).append(path)
        return found

    def quarantine(self, path: Path, spec_name: str, folder: str, reason: str) -> Path:
        """Move ``path`` into quarantine with its reason beside it; never overwrites an earlier file."""
        target_dir = Path(self.quarantine_root) / spec_name / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        counter = 1
        while target.exists() or target.with_name(target.name + REASON_SUFFIX).exists():
            target = target_dir / f"{path.stem}.{counter}{path.suffix}"
            counter += 1
        reason_file = target.with_name(target.name + REASON_SUFFIX)
        reason_file.write_text(
            f"source: {path}\nquarantined_at: {dt.datetime.now(dt.UTC).isoformat()}\nreason: {reason}\n"
        )
        shutil.move(str(path), str(target))
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
                    for line in reason_file.read_text().splitlines()
                    if line.startswith("reason: ")
                ),
                "unknown",
            )
            result[str(data_file)] = reason
        return result
