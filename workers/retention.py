"""Retention: how long finished jobs, uploads and temp files stay in the data folder, the sweep that
enforces it (run every AVATAR_RETENTION_INTERVAL by `avatar serve`, and by `avatar jobs prune`), and
the data folder's disk usage (`avatar jobs usage`, /healthz).

    report = sweep(settings)      # {"jobs": 3, "uploads": 1, "temp": 2, "bytes": 5_800_000, ...}
    usage = disk_usage(settings)  # {"jobs": {"count": 120, "bytes": ...}, ..., "total_bytes": ...}

What goes (ages from the Settings, AVATAR_RETENTION_*; 0 keeps that kind for ever):
  * jobs finished or cancelled more than `retention_jobs` ago: their folders and job-store rows
    (JobAPI.prune; unfinished jobs never go);
  * stored uploads older than `retention_uploads` that no remaining job names;
  * temp files older than `retention_temp`: half-written job folders of killed jobs
    (`.<id>.tmp-*`, `.<id>.old-*`, jobfolder.atomic_job_folder) and partial uploads (`.upload-*`,
    web.uploads.store_upload); the web process adds Gradio's temp folder (web.retention).
`retention_temp` exceeds the hard time limit (Settings checks it), so a running job's folder is
never taken. Several processes may sweep one data folder (web replicas, CLI): a lock file lets one
sweep at a time and the others skip that round.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from workers.settings import Settings

TEMP_JOB_MARKERS = (".tmp-", ".old-")  # atomic_job_folder's leftovers: .<job id>.tmp-XXXX / .old-XXXX
TEMP_UPLOAD_PREFIX = ".upload-"  # web.uploads.store_upload writes here, then renames


@dataclass
class SweepReport:
    """What one sweep removed (or, dry_run, would remove)."""

    jobs: int = 0
    uploads: int = 0
    temp: int = 0
    bytes: int = 0
    dry_run: bool = False
    skipped: str = ""  # why nothing was done ("another process is sweeping")
    removed_temp: list[str] = field(default_factory=list, repr=False)  # names, for logs and tests

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "removed_temp"}

    def add(self, other: "SweepReport") -> "SweepReport":
        self.temp += other.temp
        self.bytes += other.bytes
        self.removed_temp += other.removed_temp
        return self


def entry_bytes(path: Path) -> int:
    """Bytes of a file, or of everything under a folder; symlinks are counted, never followed."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    total = 0
    for root, dirs, files in os.walk(path):  # os.walk does not follow symlinked folders
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_old_entries(folder: Path, is_temp, max_age_s: float, now: float, dry_run: bool = False) -> SweepReport:
    """Remove the entries of `folder` that is_temp(name) picks and that were last changed more than
    max_age_s ago (a folder's age is its newest entry's, so one being written stays)."""
    report = SweepReport(dry_run=dry_run)
    if not folder.is_dir():
        return report
    for path in folder.iterdir():
        if not is_temp(path.name):
            continue
        try:
            changed = _newest_change(path)
        except OSError:
            continue
        if now - changed <= max_age_s:
            continue
        report.temp += 1
        report.bytes += entry_bytes(path)
        report.removed_temp.append(path.name)
        if not dry_run:
            remove_entry(path)
    return report


def _newest_change(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def is_temp_job_entry(name: str) -> bool:
    return name.startswith(".") and any(marker in name for marker in TEMP_JOB_MARKERS)


def is_temp_upload(name: str) -> bool:
    return name.startswith(TEMP_UPLOAD_PREFIX)


@contextlib.contextmanager
def sweep_lock(settings: Settings) -> Iterator[bool]:
    """True when this process may sweep now (no other one is), else False; never blocks."""
    settings.queue_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.queue_dir / "retention.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sweep(settings: Settings, *, jobs_older_than: float | None = None, uploads_older_than: float | None = None,
          temp_older_than: float | None = None, dry_run: bool = False, now: float | None = None,
          api=None) -> SweepReport:
    """One retention round on the data folder with the settings' ages (each overridable; 0 = keep)."""
    from workers.api import JobAPI

    jobs_age = settings.retention_jobs if jobs_older_than is None else jobs_older_than
    uploads_age = settings.retention_uploads if uploads_older_than is None else uploads_older_than
    temp_age = settings.retention_temp if temp_older_than is None else temp_older_than
    now = time.time() if now is None else now
    with sweep_lock(settings) as mine:
        if not mine:
            return SweepReport(dry_run=dry_run, skipped="another process is sweeping this data folder")
        api = api or JobAPI(settings)
        pruned = api.prune(jobs_age or None, dry_run=dry_run, uploads_older_than=uploads_age or None)
        report = SweepReport(jobs=pruned["jobs"], uploads=pruned["uploads"], bytes=pruned["bytes"], dry_run=dry_run)
        if temp_age:
            report.add(sweep_old_entries(settings.jobs_dir, is_temp_job_entry, temp_age, now, dry_run))
            report.add(sweep_old_entries(settings.uploads_dir, is_temp_upload, temp_age, now, dry_run))
    return report


def disk_usage(settings: Settings, extra: dict[str, Path] | None = None) -> dict:
    """Bytes (and entries) the data folder holds, by part: jobs (folders), uploads, temp (leftovers
    the sweep removes), queue (broker, results, SQLite job store), logs, web_temp (Gradio's temp
    files of `avatar serve`, <data>/tmp), cache (models; a symlinked cache counts as its link only),
    plus `extra` folders; and the file system's free space."""
    parts = {name: {"count": 0, "bytes": 0} for name in ("jobs", "uploads", "temp")}
    for folder, kind, is_temp in ((settings.jobs_dir, "jobs", is_temp_job_entry),
                                  (settings.uploads_dir, "uploads", is_temp_upload)):
        if folder.is_dir():
            for path in folder.iterdir():
                part = parts["temp" if is_temp(path.name) else kind]
                part["count"] += 1
                part["bytes"] += entry_bytes(path)
    for name, folder in (("queue", settings.queue_dir), ("logs", settings.logs_dir),
                         ("web_temp", settings.data_dir / "tmp"), ("cache", settings.data_dir / "cache"),
                         *(extra or {}).items()):
        folder = Path(folder)
        listable = folder.is_dir() and not folder.is_symlink()
        parts[name] = {"count": sum(1 for _ in folder.iterdir()) if listable else 0, "bytes": entry_bytes(folder)}
    free = shutil.disk_usage(settings.data_dir)
    return {"parts": parts, "total_bytes": sum(p["bytes"] for p in parts.values()),
            "free_bytes": free.free, "disk_bytes": free.total, "measured": time.time()}


def format_usage(usage: dict) -> str:
    """The lines `avatar jobs usage` prints."""
    rows = [f"{name:8s} {part['bytes'] / 1e6:10.1f} MB  {part['count']:6d} entries"
            for name, part in usage["parts"].items()]
    rows.append(f"{'total':8s} {usage['total_bytes'] / 1e6:10.1f} MB")
    rows.append(f"{'free':8s} {usage['free_bytes'] / 1e6:10.1f} MB of {usage['disk_bytes'] / 1e9:.1f} GB")
    return "\n".join(rows)
