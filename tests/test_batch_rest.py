"""REST /create_from_photos: one photo job per good photo, each refused photo listed with its reason."""
from __future__ import annotations

import gradio_client
import pytest

from web.testing import studio


@pytest.fixture(scope="module")
def web_no_worker(tmp_path_factory):
    with studio(tmp_path_factory.mktemp("batch-web"), worker=False) as s:
        yield s


@pytest.mark.slow
def test_a_batch_call_submits_each_good_photo_and_lists_the_refused_ones(web_no_worker, tmp_path):
    from PIL import Image
    from skimage import data

    good = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(good)
    other = tmp_path / "small.jpg"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(other)
    fake = tmp_path / "fake.png"
    fake.write_text("this is not an image")
    client = gradio_client.Client(web_no_worker.url, verbose=False, download_files=False)
    answer = client.predict([gradio_client.handle_file(str(p)) for p in (good, fake, other)], "oneshot", "preview",
                            api_name="/create_from_photos")
    assert [j["photo"] for j in answer["jobs"]] == ["astronaut.png", "small.jpg"]
    assert len(answer["failed"]) == 1 and answer["failed"][0]["photo"] == "fake.png"
    assert "not a PNG, JPEG or WebP image" in answer["failed"][0]["error"]
    for job in answer["jobs"]:
        record = web_no_worker.api.status(job["job_id"])
        assert record.kind == "photo"
    stored = sorted(p.read_bytes() for p in web_no_worker.settings.uploads_dir.iterdir())
    assert stored == sorted([good.read_bytes(), other.read_bytes()])  # the refused one is not kept
    with pytest.raises(Exception, match="unknown method 'magic'"):
        client.predict([gradio_client.handle_file(str(good))], "magic", "preview", api_name="/create_from_photos")
