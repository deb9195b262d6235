"""The web app through its REST API (gradio_client and raw HTTP), against a launched server.

Fast tests run the server on a real JobAPI without a worker (requests that must fail before any job
runs, downloads from job folders made by hand, the token gate). The slow test starts the embedded
worker process (SQLite broker) and makes a real avatar through /create_from_sliders.
"""
from __future__ import annotations

import http.client
import json
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
        job_id = c.predict('{"height": 0.9, "weight": 0.3, "motion": "walk"}', api_name="/create_from_sliders")
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
