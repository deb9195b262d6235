"""The photo job's torch threads (PhotoJobConfig.threads, default 1, 0 = torch's default), as the create
job's: set while the job runs, put back after it, and the same params.json either way."""
from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


def _run(photo, threads: int, out):
    import torch

    from avatar_studio.pipelines.photo import load_photo_config, run_photo_job

    seen: set[int] = set()
    config = load_photo_config("preview", {"method": "oneshot", "threads": str(threads), "preview.enabled": "false"})
    folder = run_photo_job(photo, config, out, progress=lambda stage, fraction, message="": seen.add(
        torch.get_num_threads()))
    return json.loads((folder / "params.json").read_text()), seen


def test_the_photo_job_runs_on_its_threads_puts_them_back_and_fits_the_same(astronaut_png, tmp_path):
    import torch

    from avatar_studio.pipelines.photo import PhotoJobConfig

    assert PhotoJobConfig().threads == 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one, seen_one = _run(astronaut_png, 1, tmp_path / "one")
        assert seen_one == {1} and torch.get_num_threads() == 2
        default, seen_default = _run(astronaut_png, 0, tmp_path / "default")
        assert seen_default == {2} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert one["method"] == default["method"] == "oneshot"
    assert one["discrete"] == default["discrete"]
    assert one["continuous"].keys() == default["continuous"].keys()
    np.testing.assert_allclose([one["continuous"][k] for k in sorted(one["continuous"])],
                               [default["continuous"][k] for k in sorted(default["continuous"])], atol=1e-5)
