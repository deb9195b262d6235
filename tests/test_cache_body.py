"""One body-model cache per user (an older install's data-folder cache still found), one build at a time,
and `avatar serve`'s warm-up: the page answers at once with the first-run notice, requests wait."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from avatarclip_core import paths

ROOT = Path(__file__).resolve().parents[1]


def _built(folder: Path) -> None:
    (folder / "v14").mkdir(parents=True)
    (folder / "v14" / "load_data_0123.safetensors").write_bytes(b"x")


def test_the_user_cache_folder_comes_from_the_environment(tmp_path):
    assert paths.user_cache_dir_path({"AVATAR_CACHE_DIR": str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "c"
    assert paths.user_cache_dir_path({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "avatar-studio"
    assert paths.user_cache_dir_path({}) == Path("~/.cache/avatar-studio").expanduser().resolve()


def test_content_keyed_caches_use_the_user_cache_or_the_data_folder_when_it_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "user"))
    assert paths.user_cache_dir("warp") == tmp_path / "user" / "warp" and (tmp_path / "user" / "warp").is_dir()
    (tmp_path / "a-file").write_text("not a folder")  # a mistaken AVATAR_CACHE_DIR: no error, the data folder's
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "a-file"))
    assert paths.user_cache_dir("warp") == tmp_path / "data" / "cache" / "warp"
    assert (tmp_path / "a-file").read_text() == "not a folder"  # nothing lost
    if os.geteuid() != 0:  # root writes anywhere: the read-only case only means something for a user
        (tmp_path / "ro").mkdir(mode=0o555)
        monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "ro"))
        assert paths.user_cache_dir("motion_clip") == tmp_path / "data" / "cache" / "motion_clip"


def test_the_body_cache_is_per_user_and_an_older_data_folder_cache_is_still_used(tmp_path):
    env = {"AVATAR_CACHE_DIR": str(tmp_path / "user"), "AVATAR_DATA_DIR": str(tmp_path / "data")}
    user, legacy = tmp_path / "user" / "anny", tmp_path / "data" / "cache" / "anny"
    assert paths.body_model_cache_path(env) == user and not paths.body_model_cache_ready(env)
    _built(legacy)  # an install from before the user cache: found, not rebuilt, not copied
    assert paths.body_model_cache_path(env) == legacy and paths.body_model_cache_ready(env)
    assert paths.body_model_cache_path({**env, "AVATAR_DATA_DIR": str(tmp_path / "other")}) == user
    _built(user)  # once the user cache holds a build, every data folder uses it
    assert paths.body_model_cache_path(env) == user


def test_one_process_at_a_time_builds_the_body_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))  # no older build to find there
    probe = ("import fcntl, sys\nh = open(sys.argv[1], 'a+')\ntry:\n    fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError:\n    sys.exit(3)\n")
    with paths.body_model_build_lock() as folder:
        assert folder == tmp_path / "anny"
        held = subprocess.run([sys.executable, "-c", probe, str(folder / ".build.lock")])
    free = subprocess.run([sys.executable, "-c", probe, str(folder / ".build.lock")])
    assert held.returncode == 3 and free.returncode == 0


def free_port() -> int:
    import socket

    with socket.socket() as s:  # web.app.free_port would import Gradio for this
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, accept: str = "text/html", data: bytes | None = None, content_type: str | None = None,
         timeout: float = 30) -> tuple[int, str]:
    headers = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_warming_app_shows_the_notice_then_passes_waiting_requests_to_the_real_app(monkeypatch, tmp_path):
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from web.warmup import FIRST_RUN_NOTICE, WarmingApp

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    release = threading.Event()
    started = []

    def build():
        release.wait(60)
        app = FastAPI()
        app.router.on_startup.append(lambda: started.append(True))  # Gradio starts its queue here
        app.get("/")(lambda: HTMLResponse("<p>the studio</p>"))
        app.post("/api/echo")(lambda: {"answer": 42, "started": bool(started)})
        return app

    warming = WarmingApp(build)
    assert warming.notice == FIRST_RUN_NOTICE
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(warming, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        status, page = _get(base + "/")
        assert status == 200 and "Preparing the body model (first run, about 2 minutes)" in page
        status, health = _get(base + "/healthz", accept="application/json")
        assert status == 503 and json.loads(health) == {"status": "preparing", "message": FIRST_RUN_NOTICE}
        answers: list = []
        waiting = threading.Thread(target=lambda: answers.append(_get(base + "/api/echo", "application/json", b"{}")))
        waiting.start()
        time.sleep(0.5)
        assert answers == []  # the request waits while the app is built ...
        release.set()
        waiting.join(30)
        assert answers and answers[0][0] == 200  # ... and is answered by the real app, after its startup
        assert json.loads(answers[0][1]) == {"answer": 42, "started": True}
        assert _get(base + "/") == (200, "<p>the studio</p>")
    finally:
        release.set()
        server.should_exit = True
        thread.join(10)


@pytest.mark.slow
def test_serve_on_a_fresh_cache_answers_within_seconds_and_a_job_sent_meanwhile_succeeds(tmp_path):
    """The real first run: a fresh user cache and data folder, `avatar serve` with its worker."""
    port = free_port()
    env = dict(os.environ, AVATAR_CACHE_DIR=str(tmp_path / "cache"), AVATAR_DATA_DIR=str(tmp_path / "data"),
               WARP_QUIET="1", PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "avatar_studio.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        page = None
        while time.perf_counter() - started < 60 and page is None:
            try:
                page = _get(f"http://127.0.0.1:{port}/")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        first_page_s = time.perf_counter() - started
        assert page is not None and page[0] == 200 and "first run, about 2 minutes" in page[1], page
        print(f"first page after {first_page_s:.1f} s")
        # a raw REST call sent during the warm-up waits for the built app instead of failing
        call = f"http://127.0.0.1:{port}/gradio_api/call/create_from_sliders"
        status, answer = _get(call, "application/json", json.dumps({"data": ['{"height": 0.9}']}).encode(),
                              content_type="application/json", timeout=1500)
        assert status == 200, answer
        event = json.loads(answer)["event_id"]
        status, stream = _get(f"{call}/{event}", "text/event-stream", timeout=120)
        assert "event: complete" in stream, stream
        job_id = json.loads(stream.split("event: complete", 1)[1].split("data:", 1)[1].splitlines()[0])[0]
        from gradio_client import Client

        from web.testing import wait_for_job

        job = wait_for_job(Client(f"http://127.0.0.1:{port}/", verbose=False), job_id, timeout=900)
        assert job["state"] == "SUCCESS", job
        assert paths.body_model_cache_ready({"AVATAR_CACHE_DIR": env["AVATAR_CACHE_DIR"],
                                             "AVATAR_DATA_DIR": env["AVATAR_DATA_DIR"]})
    finally:
        os.killpg(proc.pid, 15)
        out, _ = proc.communicate(timeout=60)
    assert "preparing the body model (first run, about 2 minutes)" in out and "the studio is ready" in out
