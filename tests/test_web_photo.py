"""The photo tab's REST endpoint /create_from_photo and described motions through /create_from_text,
against a launched server (fast: rejected uploads, no worker; slow: a real worker makes the avatars)."""
from __future__ import annotations

import json

import gradio_client
import pytest

from web.testing import studio, wait_for_job


def _client(url: str):
    return gradio_client.Client(url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def web_no_worker(tmp_path_factory):
    with studio(tmp_path_factory.mktemp("photo-web"), worker=False) as s:
        yield s


def test_a_non_image_upload_is_refused_and_nothing_is_stored(web_no_worker, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is not an image")
    with pytest.raises(Exception, match="not a PNG, JPEG or WebP image"):
        _client(web_no_worker.url).predict(gradio_client.handle_file(str(fake)), "auto", "preview",
                                           api_name="/create_from_photo")
    uploads = web_no_worker.settings.uploads_dir
    assert not uploads.exists() or not any(uploads.iterdir())


def test_an_unknown_method_is_refused(web_no_worker, astronaut_png):
    with pytest.raises(Exception, match="magic is not in the list of choices"):
        _client(web_no_worker.url).predict(gradio_client.handle_file(str(astronaut_png)), "magic", "preview",
                                           api_name="/create_from_photo")


def test_uploads_are_stored_by_content(web_no_worker, astronaut_png):
    job_id = _client(web_no_worker.url).predict(gradio_client.handle_file(str(astronaut_png)), "mean", "preview",
                                                api_name="/create_from_photo")
    stored = list(web_no_worker.settings.uploads_dir.iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == astronaut_png.read_bytes()
    record = web_no_worker.api.status(job_id)
    assert record.kind == "photo"


@pytest.mark.slow
def test_photo_and_described_motion_jobs_end_to_end(tmp_path, astronaut_png):
    import httpx
    from gltf_validation import validate_glb

    with studio(tmp_path / "data", worker=True) as s:
        c = _client(s.url)
        photo_job = c.predict(gradio_client.handle_file(str(astronaut_png)), "oneshot", "preview",
                              api_name="/create_from_photo")
        motion_job = c.predict(json.dumps({"motion": "raise both arms"}), api_name="/create_from_text")
        photo = wait_for_job(c, photo_job)
        assert photo["state"] == "SUCCESS", photo
        assert {"params.json", "face.png", "avatar.glb", "provenance.json"} <= set(photo["files"])
        params = httpx.get(photo["files"]["params.json"]).json()
        assert params["engine"] and params["continuous"] and params["discrete"]
        assert all(0.0 <= v <= 1.0 for v in params["continuous"].values())
        glb = tmp_path / "photo.glb"
        glb.write_bytes(httpx.get(photo["files"]["avatar.glb"]).content)
        assert validate_glb(glb)["issues"]["numErrors"] == 0
        motion = wait_for_job(c, motion_job)
        assert motion["state"] == "SUCCESS", motion
        assert {"avatar.glb", "motion.bvh", "motion.npz"} <= set(motion["files"])
        source = httpx.get(motion["files"]["params.json"]).json()["motion_source"]
        assert source["method"] == "offline" and source["text"] == "raise both arms"
