"""README's serve command end to end: `avatar serve` on the embedded default serves the page and
the REST API; a sliders job through /create_from_sliders + /job_status completes and its GLB
downloads and validates."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gltf_validation import validate_glb

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_avatar_serve_runs_a_sliders_job_end_to_end(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if (ROOT / "data" / "cache").is_dir():  # an older install's body-model cache in the data folder (built once);
        (data / "cache").symlink_to(ROOT / "data" / "cache")  # else the per-user cache (AVATAR_CACHE_DIR) serves
    port = _free_port()
    env = dict(os.environ, AVATAR_DATA_DIR=str(data))
    proc = subprocess.Popen([sys.executable, "-m", "avatar_studio.cli", "serve", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as page:
                    assert page.status == 200
                    body = page.read().lower()
                if b"gradio" in body:
                    break
                # the placeholder served while the body model loads reloads itself, as a browser would
                assert b"reloads by itself" in body, body[:500]
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.time() < deadline, "server did not come up"
            time.sleep(0.5)
        from gradio_client import Client

        client = Client(url, verbose=False)
        job_id = client.predict(json.dumps({"height": 0.9, "motion": "walk"}), api_name="/create_from_sliders")
        deadline = time.time() + 180
        while True:
            status = client.predict(job_id, api_name="/job_status")
            status = json.loads(status) if isinstance(status, str) else status
            if status["state"] in ("SUCCESS", "FAILURE", "REVOKED"):
                break
            assert time.time() < deadline, status
            time.sleep(0.3)
        assert status["state"] == "SUCCESS", status
        glb = tmp_path / "avatar.glb"
        with urllib.request.urlopen(status["files"]["avatar.glb"], timeout=30) as response:
            glb.write_bytes(response.read())
        assert validate_glb(glb)["issues"]["numErrors"] == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
