"""Headless Chromium drives the studio page (tests/browser/smoke.js, npm playwright-core).

Chromium is Debian's (/usr/bin/chromium; installed with apt-get when missing and possible);
playwright-core never downloads a browser. The test sets a slider, presses Create, waits for
SUCCESS and a download link, and leaves a screenshot in its tmp dir.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from web.testing import studio

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "browser-tok-5d1e"


def _ensure_chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
                    "install Debian's chromium package")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:
            pytest.skip(f"`{' '.join(cmd)}` failed, so no chromium for the browser test:\n{proc.stderr[-1500:]}")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _ensure_playwright() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the browser test needs Node.js")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm not found: run `npm install --prefix tests/browser`")
        # playwright-core only: no browser download (never `npx playwright install`)
        proc = subprocess.run([npm, "install", "--prefix", str(BROWSER_DIR), "--no-audit", "--no-fund"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"npm install --prefix tests/browser failed:\n{proc.stderr[-2000:]}"
    return node


def _run_smoke(url: str, screenshot: Path, token: str | None = None, env: dict | None = None) -> dict:
    node = _ensure_playwright()
    chromium = _ensure_chromium()
    cmd = [node, str(BROWSER_DIR / "smoke.js"), url + "/", str(screenshot)] + ([token] if token else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=BROWSER_DIR,
                          env=dict(os.environ, CHROMIUM=chromium, **(env or {})))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"smoke.js printed no result (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result.get("ok"), json.dumps(result, indent=1)[:4000]
    return result


@pytest.mark.slow
def test_page_creates_an_avatar(tmp_path):
    shot = tmp_path / "studio.png"
    with studio(tmp_path / "data", worker=True) as s:
        result = _run_smoke(s.url, shot)
        job_id = result["job_id"]
        rec = s.api.record(job_id)
    assert result["title"] == "Avatar Studio"
    assert result["height"] == "0.9"
    assert result["status"].startswith("SUCCESS")
    assert result["glb_href"] == f"/download/{job_id}/avatar.glb" and result["glb_status"] == 200
    assert {"avatar.glb", "motion.bvh", "params.json"} <= set(result["links"])
    assert job_id in result["history"]
    # the page sent only the slider that was moved, and the default motion
    assert rec.inputs == {"sliders": {"height": 0.9}, "motion": "walk"}
    assert rec.config["preset"] == "preview"
    assert shot.stat().st_size > 20_000
    print(f"\nscreenshot: {shot}; timings (ms): {result['timings_ms']}")


@pytest.mark.slow
def test_the_create_tab_makes_one_dressed_avatar_from_words(tmp_path):
    """The first tab, Create: body and look words in, one dressed avatar out (through the real worker)."""
    shot = tmp_path / "studio-create.png"
    with studio(tmp_path / "data", worker=True) as s:
        result = _run_smoke(s.url, shot, env={"SMOKE_CREATE_BODY": "a tall man",
                                               "SMOKE_CREATE_LOOK": "red hoodie, blue jeans, glasses",
                                               "SMOKE_CREATE_SECONDS": "2", "SMOKE_CREATE_LOOP": "on"})
        rec = s.api.record(result["job_id"])
    assert result["first_tab"] == "Create"
    assert rec.kind == "create" and rec.inputs["look"] == "red hoodie, blue jeans, glasses"
    # the form's clip controls (length, loop) travel as the job's overrides
    assert rec.config["overrides"] == {"export.formats": "bvh,glb", "export.profile": "generic",
                                       "motion.seconds": 2, "motion.loop": "on"}
    assert result["status"].startswith("SUCCESS") and result["glb_status"] == 200
    params = json.loads((s.settings.data_dir / "jobs" / result["job_id"] / "params.json").read_text())
    assert [g["kind"] for g in params["look"]["garments"]] == ["hoodie", "jeans"]
    assert (params["motion"]["name"], params["motion"]["seconds"], params["motion"]["loop"]) == ("wave", 2.0, "on")
    clip = params["motion_source"]["clip"]
    assert clip["name"] == "wave_loop" and clip["loop"] and clip["seconds"] == 2.0 and clip["frames"] == 61


@pytest.mark.slow
def test_page_behind_the_token(tmp_path):
    shot = tmp_path / "studio-token.png"
    with studio(tmp_path / "data", worker=True, token=TOKEN) as s:
        result = _run_smoke(s.url, shot, token=TOKEN)
    assert result["steps"][0] == "login form"
    assert result["status"].startswith("SUCCESS") and result["glb_status"] == 200


@pytest.mark.slow
def test_page_edits_a_photo_result(tmp_path):
    """Edit photo result: Open a finished photo job, move one slider, pick another beard, create."""
    import gradio_client
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    slider = "nose-scale-horiz-incr"
    with studio(tmp_path / "data", worker=True) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        source_job = c.predict(gradio_client.handle_file(str(photo)), "oneshot", "preview", api_name="/create_from_photo")
        assert s.api.wait(source_job, timeout=300).state == "SUCCESS"
        source = json.loads(s.api.file(source_job, "params.json").read_text())
        beard = "goatee" if source["discrete"]["beard"] != "goatee" else "full"
        result = _run_smoke(s.url, tmp_path / "edit.png", env={"SMOKE_EDIT_JOB": source_job, "SMOKE_EDIT_SLIDER": slider,
                                                              "SMOKE_EDIT_BEARD": beard})
        edit_job = result["job_id"]
        rec = s.api.record(edit_job)
        edited = json.loads(s.api.file(edit_job, "params.json").read_text())
    assert "opened from the photo tab" in result["steps"] and result["edit_tab_selected"] == "true"
    # the controls showed the photo result
    assert float(result["loaded_slider"]) == pytest.approx(source["continuous"][slider], abs=0.005)
    assert result["loaded_beard"] == source["discrete"]["beard"].replace("_", " ")
    assert result["loaded_skin"] == source["discrete"]["skin_tone"].replace("_", " ")
    assert result["edited_beard"] == beard
    assert result["status"].startswith("SUCCESS") and result["glb_status"] == 200
    assert rec.kind == "face" and rec.inputs["source_job"] == source_job
    # one slider and one asset changed; every other value is the photo result's, exactly
    assert edited["continuous"][slider] == 0.95 and edited["discrete"]["beard"] == beard
    assert {k: v for k, v in edited["continuous"].items() if k != slider} == \
        {k: v for k, v in source["continuous"].items() if k != slider}
    assert {k: v for k, v in edited["discrete"].items() if k != "beard"} == \
        {k: v for k, v in source["discrete"].items() if k != "beard"}


@pytest.mark.slow
def test_page_refits_a_photo_with_a_corrected_attribute(tmp_path):
    """The photo tab's attribute panel: a finished photo job's attributes with confidences; glasses set
    to yes and "Re-fit with these" make a new photo job on the same upload with that value fixed."""
    import gradio_client
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    with studio(tmp_path / "data", worker=True) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        source_job = c.predict(gradio_client.handle_file(str(photo)), "oneshot", "preview", api_name="/create_from_photo")
        assert s.api.wait(source_job, timeout=300).state == "SUCCESS"
        source = json.loads(s.api.file(source_job, "params.json").read_text())
        result = _run_smoke(s.url, tmp_path / "refit.png", env={"SMOKE_REFIT_JOB": source_job,
                                                               "SMOKE_REFIT_GLASSES": "yes"})
        refit_job = result["job_id"]
        rec, source_rec = s.api.record(refit_job), s.api.record(source_job)
        refit = json.loads(s.api.file(refit_job, "params.json").read_text())
    gender = source["attributes"]["detected"]["gender"]
    assert result["loaded_gender"] == (gender["value"] or "")
    if gender["value"]:  # the confidence is on the page next to the value
        assert f"confidence {gender['confidence']:.2f}" in result["gender_info"], result["gender_info"]
    assert result["edited_glasses"] == "yes" and result["status"].startswith("SUCCESS")
    assert rec.kind == "photo" and rec.inputs["photo"] == source_rec.inputs["photo"]  # the stored upload, reused
    assert rec.inputs["attributes"] == {"glasses": "yes"}
    assert refit["attributes"]["sources"]["glasses"] == "user" and refit["discrete"]["glasses"] != "none"
