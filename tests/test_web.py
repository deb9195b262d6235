"""The web app through its REST API (gradio_client and raw HTTP), against a launched server.

Fast tests run the server on a real JobAPI without a worker (requests that must fail before any job
runs, downloads from job folders made by hand, the token gate). The slow test starts the embedded
worker process (SQLite broker) and makes a real avatar through /create_from_sliders.
"""
from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import gradio_client
import pytest

from web import jobs as J
from web.testing import studio

TOKEN = "tok-3f9c2a-not-a-real-secret"
JOB = "20240101-000000-0123456789ab"
GLB_MAGIC = b"glTF"


def client(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return gradio_client.Client(url, headers=headers, verbose=False, download_files=False)


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET with the path sent exactly as written (no client-side normalisation of '..')."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_post(url: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def fake_job(settings, job_id: str = JOB) -> Path:
    """A finished-looking job folder, a secret beside the jobs folder and a symlink pointing at it."""
    folder = settings.jobs_dir / job_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "avatar.glb").write_bytes(GLB_MAGIC + b"\x02\0\0\0fake")
    (folder / "params.json").write_text('{"ok": true}')
    secret = settings.data_dir / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    link = folder / "link.txt"
    if not link.is_symlink():
        link.symlink_to(secret)
    return folder


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with studio(tmp_path_factory.mktemp("web-data"), worker=False) as s:
        fake_job(s.settings)
        yield s


@pytest.fixture(scope="module")
def web_token(tmp_path_factory):
    with studio(tmp_path_factory.mktemp("web-token-data"), worker=False, token=TOKEN) as s:
        fake_job(s.settings)
        yield s


# ---- parsing (no server) ------------------------------------------------------------------------

SPECS = (J.SliderInfo("height", 0, 1, 0.5, "phenotype"), J.SliderInfo("nose-hump-incr", -1, 1, 0, "nose"))


def test_parse_flat_and_nested():
    r = J.parse_sliders_request('{"height": 0.9, "motion": "walk", "preset": "standard"}', SPECS, ["preview", "standard"])
    assert (r.sliders, r.motion, r.preset) == ({"height": 0.9}, "walk", "standard")
    r = J.parse_sliders_request('{"sliders": {"nose-hump-incr": -0.5}}', SPECS, ["preview"])
    assert (r.sliders, r.motion, r.preset) == ({"nose-hump-incr": -0.5}, "", "preview")
    assert r.submit_args() == ("sliders", {"sliders": {"nose-hump-incr": -0.5}, "motion": ""},
                               {"preset": "preview", "overrides": {}})
    assert J.parse_sliders_request("{}", SPECS, ["preview"]).sliders == {}


@pytest.mark.parametrize("text,message", [
    ("", "expected one JSON object string"),
    ("{height: 1}", "invalid JSON"),
    ("[0.5]", "expected a JSON object"),
    ('{"heigth": 0.9}', "unknown slider 'heigth' (did you mean 'height'?)"),
    ('{"height": 1.5}', "out of range [0, 1]"),
    ('{"height": "tall"}', "must be a number"),
    ('{"height": true}', "must be a number"),
    ('{"height": NaN}', "must be a number"),
    ('{"motion": 7}', "motion must be text"),
    ('{"preset": "ultra"}', "unknown preset"),
    ('{"sliders": {"height": 0.2}, "nose-hump-incr": 0.1}', "put every slider inside it"),
    ('{"sliders": [1]}', "must be a JSON object"),
    ("{" + '"height": 0.5,' * 6000 + "}", "request too long"),
])
def test_parse_errors(text, message):
    with pytest.raises(J.UserInputError) as info:
        J.parse_sliders_request(text, SPECS, ["preview"])
    assert message in str(info.value)


def test_slider_specs_match_the_body_model(anny_body):
    """The web reads the sliders in a child process (cached as JSON): same as the body model's."""
    specs = J.body_slider_specs()
    assert [(s.name, s.minimum, s.maximum, s.default, s.group, s.description) for s in specs] == [
        (s.name, s.minimum, s.maximum, s.default, s.group, s.description) for s in anny_body.sliders()]


def test_labels_and_groups():
    specs = J.body_slider_specs()
    assert len(specs) == 262
    labels = {s.name: J.slider_label(s) for s in specs}
    assert labels["gender"] == "Gender (male to female)"
    assert labels["l-lowerarm-scale-depth-incr"] == "Left lower arm: scale depth"
    groups = J.group_local_sliders(specs)
    assert list(groups)[:4] == ["Head and face", "Torso", "Arms and hands", "Legs and feet"]
    assert sum(len(v) for g in groups.values() for v in g.values()) == 256
    assert "nose" in groups["Head and face"]


def test_public_status_never_shows_paths():
    st = {"job_id": JOB, "kind": "sliders", "state": "SUCCESS", "stage": "done", "progress": 1.0, "message": "done",
          "files": {"params.json": "/srv/data/jobs/x/params.json", "avatar.glb": "/srv/data/jobs/x/avatar.glb"},
          "created": "2024-01-01T00:00:00+00:00"}
    pub = J.public_status(st, "http://h:1")
    assert pub["files"] == {"avatar.glb": f"http://h:1/download/{JOB}/avatar.glb",
                            "params.json": f"http://h:1/download/{JOB}/params.json"}
    assert "/srv" not in json.dumps(pub)
    running = dict(st, state="PROGRESS", progress=0.42, stage="export glb")
    assert J.public_status(running)["files"] == {}
    html = J.status_html(J.public_status(running))
    assert 'data-state="PROGRESS"' in html and "42%" in html and "export glb" in html


def test_clip_keys_become_the_motion_overrides():
    """"seconds" and "loop" (the page's clip controls) -> motion.seconds and motion.loop, checked like the
    config's own fields (MotionConfig's range and choices)."""
    r = J.parse_sliders_request('{"height": 0.9, "motion": "walk", "seconds": 4.5, "loop": "on"}', SPECS, ["preview"])
    assert r.sliders == {"height": 0.9} and r.overrides == {"motion.seconds": 4.5, "motion.loop": "on"}
    text = J.parse_text_request('{"motion": "a person jogs", "seconds": 0, "loop": "off"}')
    assert text["config"]["overrides"] == {"motion.seconds": 0, "motion.loop": "off"}
    for request, message in (('{"motion": "walk", "seconds": 61}', "motion.seconds must be >= 0 and <= 60"),
                             ('{"motion": "walk", "seconds": -1}', "motion.seconds must be >= 0 and <= 60"),
                             ('{"motion": "walk", "seconds": "4"}', '"seconds" must be a number'),
                             ('{"motion": "walk", "seconds": true}', '"seconds" must be a number'),
                             ('{"motion": "walk", "loop": "always"}', "motion.loop must be one of auto, on, off"),
                             ('{"motion": "walk", "loop": 1}', "motion.loop must be one of auto, on, off"),
                             ('{"seconds": 3, "config": {"motion.seconds": 3}}', "motion.seconds is given twice")):
        with pytest.raises(J.UserInputError, match=re.escape(message)):
            J.parse_sliders_request(request, SPECS, ["preview"])


# ---- REST through gradio_client (no worker) -----------------------------------------------------

def test_api_names_are_stable(web):
    info = client(web.url).view_api(print_info=False, return_format="dict")
    named = info["named_endpoints"]
    assert set(named) == {"/create_avatar", "/create_from_sliders", "/create_from_text", "/create_from_photo",
                          "/create_from_photos", "/create_from_face_params", "/job_status"}
    assert [p["parameter_name"] for p in named["/create_from_face_params"]["parameters"]] == ["request_json"]
    assert [p["parameter_name"] for p in named["/create_from_photo"]["parameters"]] == ["path", "method", "preset",
                                                                                   "attributes", "config"]
    assert [p["parameter_name"] for p in named["/create_from_text"]["parameters"]] == ["request_json"]
    params = named["/create_from_sliders"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["sliders_json"]
    assert [p["parameter_name"] for p in named["/job_status"]["parameters"]] == ["job_id"]


def test_clip_length_and_loop_reach_the_job_config_over_rest(web):
    """The clip controls' keys on each endpoint that takes a motion: stored as the job's overrides and
    resolved into its motion config (what the worker runs and params.json records)."""
    from avatar_studio.kinds import resolve_config

    c = client(web.url)
    for api_name, request in (("/create_from_sliders", {"height": 0.8, "motion": "walk"}),
                              ("/create_from_text", {"motion": "a person jogs"}),
                              ("/create_avatar", {"body": "a tall man", "motion": "wave"})):
        job_id = c.predict(json.dumps({**request, "seconds": 2.5, "loop": "on"}), api_name=api_name)
        rec = web.api.record(job_id)
        assert rec.config["overrides"] == {"motion.seconds": 2.5, "motion.loop": "on"}, api_name
        motion = resolve_config(rec.kind, rec.config).motion
        assert (motion.seconds, motion.loop) == (2.5, "on"), api_name
        assert web.api.cancel(job_id)
    with pytest.raises(gradio_client.exceptions.AppError, match="motion.seconds must be >= 0 and <= 60"):
        c.predict('{"body": "a tall man", "motion": "wave", "seconds": 90}', api_name="/create_avatar")


@pytest.mark.parametrize("payload,message", [
    ("not json", "invalid JSON"),
    ('{"heigth": 0.9}', "unknown slider 'heigth' (did you mean 'height'?)"),
    ('{"height": 7}', "out of range"),
    ('{"height": 0.9, "motion": "%s"}' % ("moonwalk " * 40), "the motion description has 359 characters"),
    ('{"preset": "nope"}', "unknown preset"),
])
def test_bad_requests_give_clear_errors(web, payload, message):
    with pytest.raises(gradio_client.exceptions.AppError) as info:
        client(web.url).predict(payload, api_name="/create_from_sliders")
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_job_status_errors(web):
    c = client(web.url)
    with pytest.raises(gradio_client.exceptions.AppError, match="no job with id"):
        c.predict("20240101-000000-ffffffffffff", api_name="/job_status")
    with pytest.raises(gradio_client.exceptions.AppError, match="invalid job id"):
        c.predict("../../etc/passwd", api_name="/job_status")


def test_submit_and_status_without_worker(web):
    """Submitting only queues: the job stays PENDING until a worker takes it."""
    c = client(web.url)
    job_id = c.predict('{"height": 0.8, "motion": "idle"}', api_name="/create_from_sliders")
    assert isinstance(job_id, str) and J.JOB_ID_RE.match(job_id)
    st = c.predict(job_id, api_name="/job_status")
    assert st["job_id"] == job_id and st["kind"] == "sliders"
    assert st["state"] == "PENDING" and st["files"] == {}
    assert set(st) >= {"state", "stage", "progress", "message", "files"}
    rec = web.api.record(job_id)
    assert rec.inputs == {"sliders": {"height": 0.8}, "motion": "idle"}
    assert web.api.cancel(job_id)


def test_curl_style_http_api(web):
    """Gradio's HTTP API: POST /gradio_api/call/<name> -> event id; GET .../<event id> -> SSE."""
    body = json.dumps({"data": ['{"heigth": 1}']}).encode()
    status, _, out = raw_post(web.url, "/gradio_api/call/create_from_sliders", body,
                              {"Content-Type": "application/json"})
    assert status == 200, out
    event_id = json.loads(out)["event_id"]
    status, _, stream = raw_get(web.url, f"/gradio_api/call/create_from_sliders/{event_id}")
    text = stream.decode()
    assert "event: error" in text and "unknown slider 'heigth'" in text


# ---- downloads ----------------------------------------------------------------------------------

def test_download_serves_job_files(web):
    status, headers, body = raw_get(web.url, f"/download/{JOB}/avatar.glb")
    assert status == 200 and body.startswith(GLB_MAGIC)
    assert headers["content-type"] == "model/gltf-binary"
    assert "attachment" in headers["content-disposition"]
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = raw_get(web.url, f"/download/{JOB}/params.json")
    assert status == 200 and json.loads(body) == {"ok": True}


TRAVERSALS = [
    f"/download/{JOB}/../../secret.txt",
    f"/download/{JOB}/../secret.txt",
    f"/download/{JOB}/..%2f..%2fsecret.txt",
    f"/download/{JOB}/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    f"/download/{JOB}/%2e%2e%2f%2e%2e%2fsecret.txt",
    f"/download/{JOB}/%2e%2e/%2e%2e/secret.txt",
    f"/download/{JOB}/%252e%252e%252fsecret.txt",
    f"/download/{JOB}/..%5c..%5csecret.txt",
    f"/download/{JOB}/%2fetc%2fpasswd",
    f"/download/{JOB}//etc/passwd",
    f"/download/{JOB}/link.txt",
    f"/download/{JOB}/.",
    f"/download/{JOB}/..",
    f"/download/{JOB}/avatar.glb%00.txt",
    "/download/..%2f..%2fetc/passwd",
    "/download/../../etc/passwd",
    f"/download/..%2f{JOB}/avatar.glb",
    "/download/%2e%2e/secret.txt",
    "/download/20240101-000000-ffffffffffff/avatar.glb",
    "/download/etc/passwd",
    "/download//etc/passwd",
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_download_rejects_traversal(web, path):
    status, _, body = raw_get(web.url, path)
    assert status in (400, 403, 404, 405), (path, status)
    assert b"TOP-SECRET" not in body and b"root:" not in body


def test_status_urls_download(web):
    """files in /job_status are absolute URLs of the /download route."""
    pub = J.public_status({"job_id": JOB, "state": "SUCCESS", "files": {"avatar.glb": "/x/avatar.glb"}}, web.url)
    url = pub["files"]["avatar.glb"]
    assert url == f"{web.url}/download/{JOB}/avatar.glb"
    status, _, body = raw_get(web.url, urlsplit(url).path)
    assert status == 200 and body.startswith(GLB_MAGIC)


# ---- the token ----------------------------------------------------------------------------------

def test_token_required(web_token):
    url = web_token.url
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    # page: browsers are sent to the sign-in form
    status, headers, _ = raw_get(url, "/", {"Accept": "text/html"})
    assert status == 303 and headers["location"] == "/login"
    status, _, body = raw_get(url, "/login")
    assert status == 200 and b'name="token"' in body
    # API, config and downloads: 401 without the token, or with a wrong one
    for path in ("/gradio_api/info", "/config", f"/download/{JOB}/avatar.glb", "/gradio_api/call/job_status"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Cookie": f"avatar_session={TOKEN}"}):
            status, _, body = raw_get(url, path, headers)
            assert status == 401, (path, headers, status)
            assert TOKEN.encode() not in body
    status, _, _ = raw_post(url, "/gradio_api/call/create_from_sliders", b'{"data": ["{}"]}',
                            {"Content-Type": "application/json"})
    assert status == 401
    with pytest.raises(Exception):
        client(url)  # gradio_client cannot even read the config
    # with the token
    status, _, body = raw_get(url, f"/download/{JOB}/avatar.glb", bearer)
    assert status == 200 and body.startswith(GLB_MAGIC)
    c = client(url, TOKEN)
    job_id = c.predict('{"weight": 0.2}', api_name="/create_from_sliders")
    assert c.predict(job_id, api_name="/job_status")["state"] == "PENDING"
    with pytest.raises(gradio_client.exceptions.AppError, match="unknown slider"):
        c.predict('{"wieght": 0.2}', api_name="/create_from_sliders")
    web_token.api.cancel(job_id)


def test_token_login_cookie(web_token):
    url = web_token.url
    status, _, body = raw_post(url, "/login", b"token=wrong", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and b"Wrong token" in body
    status, headers, _ = raw_post(url, "/login", f"token={TOKEN}".encode(),
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    status, _, body = raw_get(url, "/", {"Cookie": session, "Accept": "text/html"})
    assert status == 200 and b"Avatar Studio" in body
    status, _, body = raw_get(url, f"/download/{JOB}/avatar.glb", {"Cookie": session})
    assert status == 200
    status, headers, _ = raw_get(url, "/logout", {"Cookie": session})
    assert status == 303 and "Max-Age=0" in headers["set-cookie"]


def test_token_not_logged(web_token, caplog, capfd):
    caplog.set_level("DEBUG")
    raw_get(web_token.url, "/gradio_api/info", {"Authorization": "Bearer wrong"})
    raw_get(web_token.url, "/gradio_api/info", {"Authorization": f"Bearer {TOKEN}"})
    raw_post(web_token.url, "/login", f"token={TOKEN}".encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    out, err = capfd.readouterr()
    assert TOKEN not in caplog.text and TOKEN not in out and TOKEN not in err
    assert TOKEN not in repr(web_token.settings)


def test_upload_cap_is_gradio_max_file_size(tmp_path):
    """The upload cap is passed to Gradio's upload route (max_file_size)."""
    with studio(tmp_path / "d", worker=False, upload_max_bytes=1000) as s:
        ok = raw_post(s.url, "/gradio_api/upload", _multipart(b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
                      {"Content-Type": "multipart/form-data; boundary=XyZ"})
        big = raw_post(s.url, "/gradio_api/upload", _multipart(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000),
                       {"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert ok[0] == 200, ok
    assert big[0] == 413, big


def _multipart(data: bytes) -> bytes:
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--XyZ--\r\n")


# ---- end to end with the worker -----------------------------------------------------------------

@pytest.mark.slow
def test_create_from_sliders_end_to_end(tmp_path):
    from gltf_validation import validate_glb

    with studio(tmp_path / "data", worker=True) as s:
        c = client(s.url)
        t0 = time.monotonic()
        job_id = c.predict('{"height": 0.9, "weight": 0.3, "motion": "walk", "seconds": 3, "loop": "on"}',
                           api_name="/create_from_sliders")
        seen = []
        while True:
            st = c.predict(job_id, api_name="/job_status")
            seen.append((st["state"], st["stage"], st["progress"]))
            if st["state"] in J.TERMINAL_STATES:
                break
            assert time.monotonic() - t0 < 300, seen
            time.sleep(0.3)
        elapsed = time.monotonic() - t0
        assert st["state"] == "SUCCESS", st
        assert st["progress"] == 1.0
        assert {"avatar.glb", "motion.bvh", "params.json"} <= set(st["files"])
        for name, url in st["files"].items():
            assert url.startswith(f"{s.url}/download/{job_id}/"), url
        status, headers, glb = raw_get(s.url, urlsplit(st["files"]["avatar.glb"]).path)
        assert status == 200 and glb.startswith(GLB_MAGIC)
        path = tmp_path / "downloaded.glb"
        path.write_bytes(glb)
        report = validate_glb(path)
        assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
        _, _, params = raw_get(s.url, urlsplit(st["files"]["params.json"]).path)
        params = json.loads(params)
        assert params["sliders_set"] == {"height": 0.9, "weight": 0.3}
        assert params["motion"]["name"] == "walk"
        # the clip keys (the page's clip length and loop) reach the job: a 3 s walk loop
        assert (params["motion"]["seconds"], params["motion"]["loop"]) == (3.0, "on")
        assert params["motion_source"]["clip"]["name"] == "walk_loop" and params["motion_source"]["clip"]["frames"] == 91
        # history has it
        assert any(getattr(x, "job_id", None) == job_id for x in s.api.list(10))
        print(f"\nsliders job through the web API: {elapsed:.1f} s; states seen: {sorted({x[0] for x in seen})}")


@pytest.mark.slow
def test_launch_serves_and_stops_its_worker(tmp_path):
    """web.app.launch (what `avatar serve` runs): server + embedded worker; SIGTERM stops both."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from web.app import free_port
    from web.testing import make_data_dir

    data = make_data_dir(tmp_path / "data")
    port = free_port()
    env = dict(os.environ, AVATAR_DATA_DIR=str(data), AVATAR_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    root = Path(__file__).resolve().parents[1]
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", f"from web.app import launch; launch(port={port})"],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _, _ = raw_get(url, "/login")
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.3)
        c = client(url, TOKEN)
        job_id = c.predict('{"muscle": 0.8}', api_name="/create_from_sliders")
        while (st := c.predict(job_id, api_name="/job_status"))["state"] not in J.TERMINAL_STATES:
            assert time.monotonic() < deadline + 120, st
            time.sleep(0.3)
        assert st["state"] == "SUCCESS", st
        status, _, _ = raw_get(url, urlsplit(st["files"]["avatar.glb"]).path)
        assert status == 401  # the token guards downloads too
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
    assert proc.returncode == 0  # Ctrl-C / SIGTERM are a normal stop
    text = log_path.read_text()
    worker_pid = int(re.search(r"embedded worker \(pid (\d+)\)", text).group(1))
    assert "worker stopped" in text, text[-3000:]
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
    assert TOKEN not in text
    assert "token required" in text


class _RecordingAPI:
    """A job API that keeps what the page submits."""

    def __init__(self):
        self.submitted: list[tuple[str, dict, dict]] = []

    def submit(self, kind: str, inputs: dict, config: dict | None = None) -> str:
        self.submitted.append((kind, inputs, config or {}))
        return JOB


def _handler(demo, elem_id: str = "", api_name: str = ""):
    """(fn, elem ids of its inputs) of the page's event fed by the control `elem_id` (or named api_name)."""
    ids = {c["id"]: c["props"].get("elem_id") for c in demo.config["components"]}
    for dep in demo.config["dependencies"]:
        names = [ids.get(i) for i in dep["inputs"]]
        if (elem_id and elem_id in names) or (api_name and dep.get("api_name") == api_name):
            return demo.fns[dep["id"]].fn, names
    raise AssertionError(f"no event takes {elem_id or api_name!r}: the control is missing or not wired")


@pytest.mark.parametrize("form,kind", [("create", "create"), ("text", "text"), ("motion", "sliders")])
def test_every_motion_form_has_the_clip_controls(monkeypatch, form, kind):
    """Each form that picks a motion has a "Clip length (s)" number and a "Loop" choice (auto/on/off);
    their values reach the job's overrides and its resolved motion config; without a motion none are sent."""
    from avatar_studio.kinds import resolve_config
    from avatarclip_core.config.limits import CLIP_LOOPS, MAX_CLIP_SECONDS
    from web import app as web_app
    from web.app import WebSettings, build_app

    monkeypatch.setattr(web_app.J, "job_kinds", lambda api=None: {"sliders", "text", "create"})
    api = _RecordingAPI()
    demo = build_app(api=api, settings=WebSettings())
    props = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"]}
    assert props[f"{form}-seconds"]["label"] == "Clip length (s)"
    assert (props[f"{form}-seconds"]["minimum"], props[f"{form}-seconds"]["maximum"]) == (0, MAX_CLIP_SECONDS)
    assert [c[1] for c in props[f"{form}-loop"]["choices"]] == list(CLIP_LOOPS)
    assert props[f"{form}-loop"]["value"] == "auto"
    fn, names = _handler(demo, f"{form}-seconds")
    assert f"{form}-loop" in names

    def press(motion: str) -> tuple[str, dict, dict]:
        values = {f"{form}-seconds": 2.5, f"{form}-loop": "on", "create-formats": ["glb"], "create-profile": "generic",
                  "create-motion": motion, "text-motion": motion, "motion": motion or "none", "motion-text": "",
                  "preset": "preview", "create-preset": "preview", "text-shape": "a tall man",
                  "create-body": "a tall man"}
        out = fn(*[values.get(name, "" if form != "motion" else None) for name in names])
        if form == "create":  # the button's first step builds the JSON that REST /create_avatar takes
            _handler(demo, api_name="create_avatar")[0](out, None)
        return api.submitted[-1]

    submitted_kind, _, config = press("walk")
    assert submitted_kind == kind
    export = {"export.formats": "glb", "export.profile": "generic"} if form == "create" else {}
    assert config["overrides"] == {**export, "motion.seconds": 2.5, "motion.loop": "on"}
    motion = resolve_config(kind, config).motion
    assert (motion.seconds, motion.loop) == (2.5, "on")
    assert press("")[2]["overrides"] == export


def _tab_labels(demo) -> list[str]:
    return [c["props"].get("label") for c in demo.config["components"] if c.get("type") == "tabitem"]


def test_tabs_follow_the_job_kinds(monkeypatch):
    """'From text' / 'From photo' appear only when the job API registers those kinds."""
    from web import app as web_app
    from web.app import WebSettings, build_app

    monkeypatch.setattr(web_app.J, "job_kinds", lambda api=None: {"sliders"})
    demo = build_app(api=object(), settings=WebSettings())
    assert _tab_labels(demo) == ["Create from sliders"]
    monkeypatch.setattr(web_app.J, "job_kinds", lambda api=None: {"sliders", "text", "photo"})
    demo = build_app(api=object(), settings=WebSettings())
    assert _tab_labels(demo) == ["Create from sliders", "From text", "From photo"]
