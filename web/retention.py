"""The web process's retention rounds (`avatar serve`, every AVATAR_RETENTION_INTERVAL seconds).

One round: the job API's sweep (workers.retention: old finished jobs, unused uploads, temp leftovers
of killed jobs), then Gradio's temp files: uploads no job used (web.uploads.sweep_received_uploads,
after UNUSED_UPLOAD_TTL_S), and, when Gradio's temp folder is the data folder's own (launch() points
GRADIO_TEMP_DIR at <data>/tmp/gradio unless it is set), every entry in it older than
AVATAR_RETENTION_TEMP (left by an earlier server process, or files Gradio cached for the page).
A temp folder shared with other programs is never swept. Each round ends with the data folder's
disk usage, which /healthz reports (measuring it on every probe would walk every job folder).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from web.uploads import UNUSED_UPLOAD_TTL_S, sweep_received_uploads

log = logging.getLogger("avatar.web")
GRADIO_TEMP_SUBDIR = Path("tmp") / "gradio"  # inside the data folder


def own_gradio_temp_dir(data_dir: Path) -> Path:
    return Path(data_dir) / GRADIO_TEMP_SUBDIR


def gradio_temp_dir(blocks: Any, data_dir: Path) -> Path | None:
    """Gradio's temp folder for `blocks` when it is the data folder's own (safe to sweep), else None."""
    folder = getattr(blocks, "GRADIO_CACHE", None)
    if not folder:
        return None
    folder = Path(folder).resolve()
    return folder if folder == own_gradio_temp_dir(data_dir).resolve() else None


class RetentionRounds:
    """sweep() now, or start() a daemon thread that sweeps every `interval` seconds (first round
    after `first_delay` s, so the server is up first). `last` holds the latest round's report and
    disk usage (None before the first)."""

    def __init__(self, api: Any, settings: Any, blocks: Any = None, interval: float | None = None,
                 first_delay: float = 5.0) -> None:
        self.api, self.settings, self.blocks = api, settings, blocks
        self.interval = float(getattr(settings, "retention_interval", 0.0) if interval is None else interval)
        self.first_delay = first_delay
        self.last: dict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self, now: float | None = None) -> dict:
        from workers.retention import sweep_old_entries

        now = time.time() if now is None else now
        report = self.api.sweep(now=now)
        gradio = {"received": 0, "temp": 0, "bytes": 0}
        if self.blocks is not None:
            gradio["received"] = sweep_received_uploads(self.blocks, UNUSED_UPLOAD_TTL_S, now=now)
            folder = gradio_temp_dir(self.blocks, self.settings.data_dir)
            if folder is not None and self.settings.retention_temp:
                old = sweep_old_entries(folder, lambda name: True, self.settings.retention_temp, now)
                gradio["temp"], gradio["bytes"] = old.temp, old.bytes
        extra = {}
        if self.blocks is not None and getattr(self.blocks, "GRADIO_CACHE", None):
            folder = Path(self.blocks.GRADIO_CACHE)
            if gradio_temp_dir(self.blocks, self.settings.data_dir) is None:  # outside the data folder
                extra["gradio_temp"] = folder
        usage = self.api.disk_usage(extra=extra)
        self.last = {"report": report.to_dict(), "gradio": gradio, "usage": usage, "finished": time.time()}
        if report.jobs or report.uploads or report.temp or gradio["received"] or gradio["temp"]:
            log.info("retention: removed %d job(s), %d upload(s), %d temp entries, %d unused received "
                     "upload(s), %d Gradio temp entries (%.1f MB)", report.jobs, report.uploads, report.temp,
                     gradio["received"], gradio["temp"], (report.bytes + gradio["bytes"]) / 1e6)
        return self.last

    def start(self) -> "RetentionRounds":
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="avatar-retention", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001  (a busy store or disk: next round)
                log.warning("retention round failed: %s: %s", type(exc).__name__, exc)
            delay = self.interval

    def stop(self) -> None:
        self._stop.set()
