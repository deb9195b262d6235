"""GET /healthz (web/health.py): answers without the API token, with counts only; the page's Cancel button and worker line."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from web.testing import studio

TOKEN = "tok-health-not-a-real-secret"


def _get(url: str) -> tuple[int, dict | bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_healthz_reports_workers_and_jobs_without_the_token(tmp_path):
    with studio(tmp_path / "data", worker=False, token=TOKEN) as s:
        code, body = _get(f"{s.url}/healthz")
        assert code == 200 and body.pop("disk_free_mb") > 0
        assert body == {"status": "no_worker", "workers_alive": 0, "newest_heartbeat_age_s": None,
                        "jobs_queued": 0, "jobs_running": 0, "disk_used_mb": None, "disk_used_age_s": None}
        job = s.api.submit("selftest", {})
        s.api.store.heartbeat("avatar-1@host", "host", 1)
        code, body = _get(f"{s.url}/healthz")
        assert code == 200 and body["status"] == "ok" and body["workers_alive"] == 1
        assert 0 <= body["newest_heartbeat_age_s"] < 5 and body["jobs_queued"] == 1
        s.api.store.begin_run(job, "avatar-1@host/2", node="avatar-1@host")
        assert _get(f"{s.url}/healthz")[1]["jobs_running"] == 1
        s.api.store.worker_gone("dead", node="avatar-1@host")
        assert _get(f"{s.url}/healthz")[1]["status"] == "no_worker"
        assert b"host" not in json.dumps(body).encode()  # no host names, ids or paths
        assert _get(f"{s.url}/gradio_api/info")[0] == 401  # everything else still needs the token


def test_the_pages_cancel_button_cancels_the_shown_job(tmp_path):
    with studio(tmp_path / "data", worker=False) as s:
        blocks = next(r.app.get_blocks() for r in s.server.server.config.app.routes
                      if hasattr(getattr(r, "app", None), "get_blocks"))
        (cancel,) = [f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "ui_cancel"]
        job = s.api.submit("selftest", {})
        assert cancel(job).active is True  # the page polls once more and shows the result
        assert s.api.status(job).state == "REVOKED"
        assert cancel("").__class__.__name__ != "Timer"  # no job shown: nothing happens


def test_the_page_shows_the_workers_heartbeats(tmp_path):
    with studio(tmp_path / "data", worker=False) as s:
        blocks = next(r.app.get_blocks() for r in s.server.server.config.app.routes
                      if hasattr(getattr(r, "app", None), "get_blocks"))
        workers = next(f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "ui_workers")
        assert workers() == "Workers: none alive; new jobs wait in the queue"
        s.api.store.heartbeat("avatar-1@host", "host", 1)
        assert re.fullmatch(r"Workers: 1 alive \(last heartbeat [0-4] s ago\)", workers()), workers()
