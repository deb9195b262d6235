"""Hostile input against the real app over HTTP on 127.0.0.1 (web.testing.studio, no worker): raw
REST calls (POST /gradio_api/call/<api>, then the event stream), Gradio's upload route, FileData
paths naming server files, downloads. Every refused request gets one specific line (never "internal
error", never a server path) and stores nothing: no job, no upload, no temp file.
(Files without a server: tests/test_hostile_uploads.py; the CLI: tests/test_hostile_cli.py.)"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from test_hostile_uploads import HOSTILE, encoded
from web.testing import studio

REPO = Path(__file__).resolve().parents[1]
DEEP = "[" * 20000 + "]" * 20000
SURROGATE = "tall man \ud800"  # json.dumps writes it as the escape \ud800: what the tester sent
BIG_INT = "9" * 5000
BIG_FLOAT = "1" * 400 + ".5"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    # its own Gradio temp folder (as `avatar serve` has it): the tests below check that a refused call copies
    # nothing there, and another test process's uploads land in the shared /tmp/gradio meanwhile (seen in CI)
    with studio(tmp_path_factory.mktemp("hostile-web"), worker=False, own_gradio_temp=True) as s:
        yield s


def call(url: str, api: str, *data) -> tuple[str, object]:
    """('complete', value) or ('error', message) of one raw two-step Gradio call."""
    r = httpx.post(f"{url}/gradio_api/call/{api}", content=json.dumps({"data": list(data)}),
                   headers={"Content-Type": "application/json"}, timeout=60)
    if r.status_code != 200:
        return f"http {r.status_code}", r.text
    event_id = r.json()["event_id"]
    events = httpx.get(f"{url}/gradio_api/call/{api}/{event_id}", timeout=60).text
    kind, payload = "", None
    for line in events.splitlines():
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: ") and kind in ("complete", "error"):
            payload = json.loads(line[6:])
    if kind == "complete" and isinstance(payload, list):
        payload = payload[0]
    if kind == "error" and isinstance(payload, dict):
        payload = payload.get("error")
    return kind, payload


def job_count(web) -> int:
    return len(web.api.list(10_000))


def refused(web, api: str, *data, match: str) -> str:
    before = job_count(web)
    kind, message = call(web.url, api, *data)
    assert kind == "error", (kind, message)
    assert isinstance(message, str) and message, message
    assert "\n" not in message and "internal error" not in message.lower(), message
    for secret in (str(web.settings.data_dir), str(REPO), str(Path.home())):
        assert secret not in message, message
    import re

    assert re.search(match, message), message
    assert job_count(web) == before
    return message


# ---- /create_from_sliders ------------------------------------------------------------------------
SLIDERS = {
    "not json": ("{height: 0.9", r"invalid JSON"),
    "a list": ("[1, 2]", r"expected a JSON object"),
    "a number": ("0.5", r"expected a JSON object"),
    "empty": ("", r"expected one JSON object"),
    "blank": ("   ", r"expected one JSON object"),
    "20,000 brackets": (DEEP, r"nested too deeply"),
    "20,000 brackets in a value": ('{"height": ' + DEEP + "}", r"nested too deeply"),
    "5,000-digit integer": ('{"height": ' + BIG_INT + "}", r"more than 4300 digits"),
    "400-digit float": ('{"height": ' + BIG_FLOAT + "}", r"finite number"),
    "400-digit integer": ('{"height": ' + "9" * 400 + "}", r"finite number"),
    "1e400": ('{"height": 1e400}', r"finite number"),
    "NaN": ('{"height": NaN}', r"finite number"),
    "Infinity": ('{"height": -Infinity}', r"finite number"),
    "numeric string": ('{"gender": "0.5"}', r"must be a number, got \"0.5\""),
    "true": ('{"gender": true}', r"must be a number, got true"),
    "null": ('{"gender": null}', r"must be a number, got null"),
    "a list value": ('{"gender": [0.5]}', r"must be a number"),
    "unknown slider": ('{"hieght": 0.5}', r"unknown slider 'hieght' \(did you mean 'height'\?\)"),
    "out of range": ('{"height": 7}', r"out of range"),
    "surrogate motion": (json.dumps({"motion": SURROGATE}), r"not valid text"),
    "NUL in motion": (json.dumps({"motion": "walk\x00"}), r"control characters"),
    "ESC in motion": (json.dumps({"motion": "wave \x1b[31m"}), r"control characters"),
    "DEL in motion": (json.dumps({"motion": "walk\x7f"}), r"control characters"),
    "C1 in motion": (json.dumps({"motion": "walk\x9b"}), r"control characters"),
    "long motion": (json.dumps({"motion": "a" * 301}), r"301 characters"),
    "motion object": ('{"motion": {"name": "walk"}}', r"motion must be text"),
    "motion typo": ('{"motion": "wlak"}', r"did you mean 'walk'"),
    "unknown preset": ('{"preset": "ultra"}', r"unknown preset"),
    "preset list": ('{"preset": ["preview"]}', r"unknown preset"),
    "nested and flat": ('{"sliders": {"height": 0.9}, "weight": 0.2}', r"put every slider inside it"),
    "sliders not an object": ('{"sliders": [1]}', r"must be a JSON object"),
    "over 64 KB": (json.dumps({"motion": "walk", "x": "y" * 70000}), r"request too long"),
}


@pytest.mark.parametrize("case", list(SLIDERS))
def test_sliders_endpoint_refuses(web, case):
    text, match = SLIDERS[case]
    refused(web, "create_from_sliders", text, match=match)


def test_sliders_endpoint_refuses_extra_and_missing_arguments(web):
    refused(web, "create_from_sliders", '{"height": 0.9}', "extra", match=r"takes 1 argument, got 2")
    refused(web, "create_from_sliders", '{"height": 0.9}', "a", "b", match=r"takes 1 argument, got 3")
    refused(web, "create_from_sliders", match=r"takes 1 argument, got 0")


@pytest.mark.parametrize("motion,stored", [("run", "run"), ("Walk", "walk"), ("  wave ", "wave"),
                                           ("raise both arms", "raise both arms"), ("none", "")])
def test_sliders_motion_is_a_builtin_or_a_description(web, motion, stored):
    kind, job_id = call(web.url, "create_from_sliders", json.dumps({"height": 0.9, "motion": motion}))
    assert kind == "complete", job_id
    assert web.api.record(job_id).inputs["motion"] == stored


# ---- /create_from_text -----------------------------------------------------------------------------
TEXT = {
    "surrogate shape": (json.dumps({"shape": SURROGATE}), r"the shape prompt is not valid text"),
    "surrogate appearance": (json.dumps({"appearance": "iron \udfff man"}), r"appearance prompt is not valid text"),
    "NUL shape": (json.dumps({"shape": "tall\x00man"}), r"control characters"),
    "newline shape": (json.dumps({"shape": "tall\nman"}), r"control characters"),
    "bell appearance": (json.dumps({"appearance": "iron\x07man"}), r"control characters"),
    "C1 shape": (json.dumps({"shape": "tall\x85man"}), r"control characters"),
    "long shape": (json.dumps({"shape": "x" * 301}), r"301 characters"),
    "shape number": ('{"shape": 5}', r"must be text"),
    "shape list": ('{"shape": ["tall"]}', r"must be text"),
    "unknown field": ('{"shape": "tall", "seed": 3}', r'unknown field "seed"'),
    "nothing": ("{}", r"give \"shape\""),
    "deep": (DEEP, r"nested too deeply"),
    "5,000 digits": ('{"shape": "tall", "preset": ' + BIG_INT + "}", r"more than 4300 digits"),
    "not json": ("shape=tall", r"invalid JSON"),
    "surrogate motion": (json.dumps({"motion": "jump \ud83d"}), r"not valid text"),
    "unknown preset": ('{"shape": "tall", "preset": "../../etc"}', r"unknown preset"),
}


@pytest.mark.parametrize("case", list(TEXT))
def test_text_endpoint_refuses(web, case):
    text, match = TEXT[case]
    refused(web, "create_from_text", text, match=match)


def test_text_endpoint_refuses_extra_arguments(web):
    refused(web, "create_from_text", '{"shape": "tall"}', "x", match=r"takes 1 argument, got 2")


# ---- /create_from_face_params ------------------------------------------------------------------------
FACE = {
    "numeric string": ('{"continuous": {"gender": "0.5"}}', r"must be a number, got \"0.5\""),
    "true": ('{"continuous": {"gender": true}}', r"must be a number, got true"),
    "1e400": ('{"continuous": {"gender": 1e400}}', r"finite number"),
    "400-digit integer": ('{"continuous": {"gender": ' + "9" * 400 + "}}", r"finite number"),
    "400-digit float": ('{"continuous": {"gender": ' + BIG_FLOAT + "}}", r"finite number"),
    "5,000-digit integer": ('{"continuous": {"gender": ' + BIG_INT + "}}", r"more than 4300 digits"),
    "deep": ('{"continuous": ' + DEEP + "}", r"nested too deeply"),
    "unknown slider": ('{"continuous": {"nose-size-xyz": 0.5}}', r"unknown continuous parameter"),
    "out of range": ('{"continuous": {"gender": 2}}', r"out of range"),
    "unknown option": ('{"discrete": {"beard": "dragon"}}', r"has no option 'dragon'"),
    "unknown field": ('{"continuous": {}, "shell": "rm -rf"}', r'unknown field "shell"'),
    "source traversal": ('{"source_job": "../../etc/passwd"}', r"invalid job id"),
    "source unknown": ('{"source_job": "20240101-000000-0123456789ab"}', r"no job with id"),
    "continuous list": ('{"continuous": [0.5]}', r"must be objects"),
    "surrogate option": (json.dumps({"discrete": {"beard": "full \ud800"}}), r"has no option|not valid text"),
}


@pytest.mark.parametrize("case", list(FACE))
def test_face_params_endpoint_refuses(web, case):
    text, match = FACE[case]
    refused(web, "create_from_face_params", text, match=match)


def test_face_params_endpoint_refuses_extra_arguments(web):
    refused(web, "create_from_face_params", "{}", "{}", match=r"takes 1 argument, got 2")


# ---- /job_status ---------------------------------------------------------------------------------
STATUS = {
    "traversal": ("../../etc/passwd", r"invalid job id"),
    "empty": ("", r"invalid job id"),
    "long": ("a" * 200, r"invalid job id"),
    "surrogate": ("abc\ud800", r"invalid job id"),
    "control": ("abc\x00", r"invalid job id"),
    "number": (42, r"invalid job id"),
    "null": (None, r"invalid job id"),
    "list": (["x"], r"invalid job id"),
    "unknown": ("20240101-000000-0123456789ab", r"no job with id"),
}


@pytest.mark.parametrize("case", list(STATUS))
def test_job_status_refuses(web, case):
    value, match = STATUS[case]
    refused(web, "job_status", value, match=match)


# ---- downloads -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/download/../../etc/passwd", "/download/x/..%2F..%2Fetc%2Fpasswd", "/download/%2e%2e/%2e%2e/pyproject.toml",
    "/download/20240101-000000-0123456789ab/../../uploads", "/download/abc/avatar.glb",
    "/download/abc/%00.json", "/download/abc/\u00e9.json", "/download/-x/avatar.glb",
    "/download/20240101-000000-0123456789ab/.hidden",
])
def test_downloads_refuse_everything_outside_a_job_folder(web, path):
    r = httpx.get(web.url + path, timeout=30)
    assert r.status_code in (400, 404) and "root:" not in r.text and "[project]" not in r.text


# ---- /create_from_photo: what a request may name ---------------------------------------------------
def _file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def _temp_files() -> set[Path]:
    from gradio.utils import get_upload_folder

    root = Path(get_upload_folder())
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture(scope="module")
def server_pngs(web, tmp_path_factory):
    """Images that exist on the server but were never uploaded: a home-directory photo stand-in, a job's
    preview.png, a repository PNG."""
    home = tmp_path_factory.mktemp("home") / "holiday.png"
    home.write_bytes(encoded("PNG", (300, 300)))
    preview = web.settings.jobs_dir / "20240101-000000-0123456789ab" / "preview.png"
    preview.parent.mkdir(parents=True, exist_ok=True)
    preview.write_bytes(encoded("PNG", (256, 256)))
    # a clean clone holds no PNG: put one in the repository's (git-ignored) out/ folder
    repo_png = REPO / "out" / f"hostile-{os.getpid()}.png"
    repo_png.parent.mkdir(parents=True, exist_ok=True)
    repo_png.write_bytes(encoded("PNG", (200, 200)))
    yield {"home photo": str(home), "job preview": str(preview), "repository png": str(repo_png)}
    repo_png.unlink(missing_ok=True)


@pytest.mark.parametrize("which", ["home photo", "job preview", "repository png", "relative", "passwd",
                                   "url", "file url", "traversal into uploads"])
def test_a_server_path_that_was_not_uploaded_is_refused(web, server_pngs, which):
    path = {"relative": "tests/../README.md", "passwd": "/etc/passwd",
            "url": "http://127.0.0.1:9/photo.png", "file url": "file:///etc/passwd",
            "traversal into uploads": str(web.settings.uploads_dir / ".." / "jobs" / "x.png")}.get(which) \
        or server_pngs[which]
    before = _temp_files()
    refused(web, "create_from_photo", _file_data(path), "auto", "preview",
            match=r"only a photo uploaded with this request")
    assert _temp_files() <= before  # nothing copied into Gradio's cache


def _upload(web, files: list[tuple[str, bytes]]) -> httpx.Response:
    return httpx.post(f"{web.url}/gradio_api/upload", files=[("files", (n, d, "image/png")) for n, d in files],
                      timeout=60)


def test_an_uploaded_photo_and_a_stored_one_are_accepted(web):
    data = encoded("PNG", (320, 240))
    r = _upload(web, [("me.png", data)])
    assert r.status_code == 200, r.text
    kind, job_id = call(web.url, "create_from_photo", _file_data(r.json()[0]), "mean", "preview")
    assert kind == "complete", job_id
    name = web.api.record(job_id).inputs["photo"]
    assert (web.settings.uploads_dir / name).read_bytes() == data
    # the app's own store, by hash name: no new upload needed, no copy in Gradio's cache
    before = _temp_files()
    kind, again = call(web.url, "create_from_photo", _file_data(name), "oneshot", "preview")
    assert kind == "complete" and web.api.record(again).inputs["photo"] == name
    assert _temp_files() <= before


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_upload_is_refused_and_removed(web, name):
    data, match = HOSTILE[name]
    before_temp, before_store = _temp_files(), set(web.settings.uploads_dir.glob("*"))
    r = _upload(web, [(f"{uuid.uuid4().hex}.png", data)])
    if r.status_code != 200:  # Gradio's own checks (an empty multipart file)
        assert r.status_code in (400, 413)
        return
    refused(web, "create_from_photo", _file_data(r.json()[0]), "auto", "preview", match=match)
    assert _temp_files() <= before_temp, "a refused upload stays in Gradio's temp folder"
    assert set(web.settings.uploads_dir.glob("*")) == before_store


def test_one_photo_per_upload_request(web):
    before = _temp_files()
    r = _upload(web, [(f"{i}.png", encoded("PNG", (100 + i, 100))) for i in range(12)])
    assert r.status_code == 400 and "one photo per upload request, got 12 files" in r.text
    r = httpx.post(f"{web.url}/gradio_api/upload", content=b"x" * (11 * 1024 * 1024),
                   headers={"Content-Type": "multipart/form-data; boundary=zz"}, timeout=60)
    assert r.status_code == 413 and "10 MB limit" in r.text
    assert _temp_files() <= before


def test_photo_endpoint_refuses_bad_methods_and_extra_arguments(web):
    r = _upload(web, [("ok.png", encoded("PNG", (200, 200)))])
    path = r.json()[0]
    refused(web, "create_from_photo", _file_data(path), "auto", "preview", "{}", "{}", "x",
            match=r"takes 3 to 5 arguments, got 6")
    assert not Path(path).exists()  # the refused request's upload is gone from Gradio's temp folder
    path = _upload(web, [("ok.png", encoded("PNG", (201, 200)))]).json()[0]
    refused(web, "create_from_photo", _file_data(path), "auto", match=r"takes 3 to 5 arguments, got 2")
    assert not Path(path).exists()
    refused(web, "create_from_photo", None, "auto", "preview", match=r"upload a photo first")


@pytest.mark.parametrize("attributes, match", [
    ("x", r"invalid JSON"), ("[1]", r"expected a JSON object"), (DEEP, r"nested too deeply"),
    ('{"hat": "yes"}', r"inputs.attributes: unknown attribute 'hat'"),
    ('{"gender": "nonbinary"}', r"unknown value 'nonbinary' for gender; choose one of male, female"),
    ('{"hair_style": "purple"}', r"unknown value 'purple' for hair_style"),
    ('{"gender": 1}', r"unknown value 1 for gender"),
    ('{"skin_tone": "' + "x" * 5000 + '"}', r"unknown value 'x{40}' for skin_tone")])
def test_photo_endpoint_refuses_bad_fixed_attributes_and_stores_nothing(web, attributes, match):
    r = _upload(web, [(f"{uuid.uuid4().hex}.png", encoded("PNG", (210, 200)))])
    before_temp, before_store = _temp_files(), set(web.settings.uploads_dir.glob("*"))
    refused(web, "create_from_photo", _file_data(r.json()[0]), "auto", "preview", attributes, match=match)
    assert set(web.settings.uploads_dir.glob("*")) == before_store
    assert _temp_files() <= before_temp and not Path(r.json()[0]).exists()  # the refused upload is gone


# ---- config overrides: only REST's allow-list (avatar_studio.config_schema.REST_OVERRIDES) ----------
NOT_ALLOWED = r"config key \"{key}\" cannot be set over REST for {kind} jobs \(allowed: "
CONFIG_REFUSED = {  # endpoint, request, match
    "sliders: server path": ("create_from_sliders", {"config": {"body.smpl.model_path": "/etc/passwd"}},
                             NOT_ALLOWED.format(key="body.smpl.model_path", kind="sliders")),
    "sliders: device": ("create_from_sliders", {"config": {"body.device": "cuda"}},
                        NOT_ALLOWED.format(key="body.device", kind="sliders")),
    "sliders: motion name": ("create_from_sliders", {"config": {"motion.name": "walk"}},
                             NOT_ALLOWED.format(key="motion.name", kind="sliders")),
    "sliders: unknown key": ("create_from_sliders", {"config": {"neus.iterations": 5}},
                             NOT_ALLOWED.format(key="neus.iterations", kind="sliders")),
    "sliders: preview too big": ("create_from_sliders", {"config": {"preview.size": 4096}},
                                 r"^config preview.size = 4096 is out of the range REST callers may set \[64, 1024\]$"),
    "sliders: preview as text": ("create_from_sliders", {"config": {"preview.size": "4096"}}, r"preview.size"),
    "sliders: many cycles": ("create_from_sliders", {"config": {"motion.cycles": 1000}}, r"motion.cycles = 1000 is out"),
    "sliders: bad type": ("create_from_sliders", {"config": {"motion.fps": "fast"}}, r"motion.fps"),
    "sliders: bad choice": ("create_from_sliders", {"config": {"export.profile": "blender"}}, r"export.profile"),
    "sliders: not an object": ("create_from_sliders", {"config": [1]}, r'"config" must be a JSON object'),
    "text: iterations": ("create_from_text", {"shape": "tall", "config": {"neus.iterations": 100000}},
                         NOT_ALLOWED.format(key="neus.iterations", kind="text")),
    "text: checkpoint": ("create_from_text", {"shape": "tall", "config": {"clip.checkpoint": "/etc/passwd"}},
                         NOT_ALLOWED.format(key="clip.checkpoint", kind="text")),
    "text: negative seed": ("create_from_text", {"shape": "tall", "config": {"seed": -1}}, r"seed"),
    "face: engine command": ("create_from_face_params", {"config": {"engine_external.command": "rm -rf /"}},
                             NOT_ALLOWED.format(key="engine_external.command", kind="face")),
}


@pytest.mark.parametrize("case", list(CONFIG_REFUSED))
def test_config_overrides_outside_the_allow_list_are_refused(web, case):
    api, request, match = CONFIG_REFUSED[case]
    refused(web, api, json.dumps(request), match=match)


def test_allowed_config_overrides_reach_the_job(web):
    kind, job = call(web.url, "create_from_sliders",
                     json.dumps({"height": 0.9, "motion": "walk", "config": {"motion.fps": 24, "preview.size": 256}}))
    assert kind == "complete", job
    assert web.api.record(job).config == {"preset": "preview", "overrides": {"motion.fps": 24, "preview.size": 256}}
    kind, job = call(web.url, "create_from_text", json.dumps({"shape": "tall", "config": {"seed": 7, "sculpt": False}}))
    assert kind == "complete", job
    assert web.api.record(job).config["overrides"] == {"seed": 7, "sculpt": False}
    kind, job = call(web.url, "create_from_face_params",
                     json.dumps({"continuous": {}, "config": {"export.profile": "unity"}}))
    assert kind == "complete", job
    assert web.api.record(job).config["overrides"] == {"export.profile": "unity"}


@pytest.mark.parametrize("config, match", [
    ('{"engine_kind": "external"}', NOT_ALLOWED.format(key="engine_kind", kind="photo")),
    ('{"iterative.iterations": 100000}', r"iterative.iterations = 100000 is out of the range"),
    ("x", r"invalid JSON"), ("[1]", r"expected a JSON object")])
def test_photo_config_overrides_are_checked_before_the_upload_is_stored(web, config, match):
    r = _upload(web, [(f"{uuid.uuid4().hex}.png", encoded("PNG", (220, 200)))])
    before_store = set(web.settings.uploads_dir.glob("*"))
    refused(web, "create_from_photo", _file_data(r.json()[0]), "mean", "preview", "", config, match=match)
    assert set(web.settings.uploads_dir.glob("*")) == before_store and not Path(r.json()[0]).exists()
    r = _upload(web, [(f"{uuid.uuid4().hex}.png", encoded("PNG", (230, 200)))])
    kind, job = call(web.url, "create_from_photo", _file_data(r.json()[0]), "mean", "preview", "",
                     '{"iterative.iterations": 20, "seed": 2}')
    assert kind == "complete", job
    assert web.api.record(job).config["overrides"] == {"iterative.iterations": 20, "seed": 2}


# ---- downloadable files of real jobs ----------------------------------------------------------------
@pytest.mark.slow
def test_no_server_path_in_downloadable_files(tmp_path):
    """A photo job and a described-motion job through the embedded worker: every JSON file a client can
    download names files by name or hash (provenance.json 'image' and 'command', params.json
    'motion_source.artifacts'), never by a server path."""
    import sys

    import gradio_client
    from skimage import data as skdata
    from PIL import Image

    from web.testing import wait_for_job

    photo = tmp_path / "me.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    with studio(tmp_path / "data", worker=True) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        jobs = [c.predict(gradio_client.handle_file(str(photo)), "mean", "preview", api_name="/create_from_photo"),
                c.predict(json.dumps({"motion": "raise both arms"}), api_name="/create_from_text")]
        secrets = {str(s.settings.data_dir), str(REPO), sys.prefix, str(Path.home()), str(tmp_path)}
        for job_id in jobs:
            status = wait_for_job(c, job_id)
            assert status["state"] == "SUCCESS", (status["kind"], status["error"])
            for name, url in status["files"].items():
                if name.endswith(".json"):
                    text = httpx.get(url, timeout=60).text
                    leaked = [p for p in secrets if p in text]
                    assert not leaked, (name, leaked)
        provenance = httpx.get(wait_for_job(c, jobs[0])["files"]["provenance.json"], timeout=60).json()
        assert provenance["inputs"]["image"].endswith(".png") and "/" not in provenance["inputs"]["image"]
