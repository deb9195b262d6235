"""GET /healthz: is the web process up, can it read the job store, and are workers alive?

    {"status": "ok" | "no_worker", "workers_alive": 1, "newest_heartbeat_age_s": 0.8,
     "jobs_queued": 0, "jobs_running": 1, "disk_free_mb": 51200.0,
     "disk_used_mb": {"jobs": 812.4, "uploads": 40.1, ..., "total": 2210.9}, "disk_used_age_s": 320.5}

disk_free_mb is the data folder's file system, read on each probe; disk_used_mb is the data folder by
part, from the latest retention round (web.retention; null before the first one).

200 while the job store answers ("no_worker": no worker heartbeat within AVATAR_WORKER_LOST_AFTER,
jobs wait), 503 when it does not. Open without the API token (load balancers, container probes):
it shows counts only, no host names, paths or job ids.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("avatar.web")
HEALTH_PATH = "/healthz"


def health_route(settings: Any, retention: Any = None):
    from fastapi.responses import JSONResponse

    def healthz():
        try:
            from workers.store import JobStore

            store = JobStore(settings.job_store_url)
            lost_after = float(getattr(settings, "worker_lost_after", 30.0))
            alive = [w for w in store.workers() if w["state"] == "alive" and w["age"] < lost_after]
            counts = store.unfinished_counts()
        except Exception as exc:  # noqa: BLE001  (the probe must answer, not raise)
            log.warning("health check: the job store did not answer: %s: %s", type(exc).__name__, exc)
            return JSONResponse({"status": "job_store_unavailable"}, status_code=503)
        return JSONResponse({
            "status": "ok" if alive else "no_worker",
            "workers_alive": len(alive),
            "newest_heartbeat_age_s": min((w["age"] for w in alive), default=None),
            "jobs_queued": counts["queued"],
            "jobs_running": counts["running"],
            **disk_figures(settings, retention),
        }, headers={"Cache-Control": "no-store"})

    return healthz


def disk_figures(settings: Any, retention: Any = None) -> dict:
    """Free space now and the latest retention round's usage by part (MB; counts, no paths)."""
    import shutil
    import time

    try:
        free = round(shutil.disk_usage(settings.data_dir).free / 1e6, 1)
    except (OSError, AttributeError):
        free = None
    last = getattr(retention, "last", None)
    used = age = None
    if last:
        usage = last["usage"]
        used = {name: round(part["bytes"] / 1e6, 1) for name, part in usage["parts"].items()}
        used["total"] = round(usage["total_bytes"] / 1e6, 1)
        age = round(time.time() - usage["measured"], 1)
    return {"disk_free_mb": free, "disk_used_mb": used, "disk_used_age_s": age}
