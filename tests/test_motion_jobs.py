"""Text to motion inside the avatar jobs: `avatar text --motion "..."` (any avatar: default body, a
text shape, slider bodies), one animated GLB + motion.bvh + motion.npz, and what produced it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gltf_validation import validate_glb

pytestmark = pytest.mark.usefixtures("offline_hub")


@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _wrists_over_head(folder) -> float:
    npz = np.load(folder / "motion.npz", allow_pickle=True)
    names = list(npz["joint_names"])
    positions = npz["joint_positions"]
    head = positions[:, names.index("head"), 1]
    both = (positions[:, names.index("hand_l"), 1] > head) & (positions[:, names.index("hand_r"), 1] > head)
    return float(both.mean())


@pytest.fixture(scope="module")
def raise_arms_job(tmp_path_factory):
    import os

    from avatar_studio.cli import main

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = tmp_path_factory.mktemp("motion") / "raise"
    assert main(["text", "--motion", "raise both arms", "--preset", "preview", "-q", "-o", str(out)]) == 0
    return out


def test_a_described_motion_on_the_default_body_is_one_valid_animated_glb(raise_arms_job):
    assert {"avatar.glb", "motion.bvh", "motion.npz", "params.json", "provenance.json"} <= \
        {p.name for p in raise_arms_job.iterdir()}
    report = validate_glb(raise_arms_job / "avatar.glb")
    assert report["issues"]["numErrors"] == 0
    assert report["info"]["animationCount"] == 1 and report["info"]["hasSkins"]
    # the motion is visibly right: arms up for a good part. Measured 0.22 of the frames with the preview set
    # retrained on 92 generators (0.59 with the 53-generator set): its 256-entry code-book gives one "raise
    # both arms" reference pose and two "raise one arm" ones (before: two and two), and L_pose pulls frames
    # toward the one-arm poses (the decoded label-matched clip alone: 0.66)
    assert _wrists_over_head(raise_arms_job) > 0.15


def test_params_record_how_the_motion_was_made(raise_arms_job):
    params = json.loads((raise_arms_job / "params.json").read_text())
    source = params["motion_source"]
    assert source["method"] == "offline"  # no real CLIP here: the sentence-encoder query
    assert source["text"] == "raise both arms" and source["reference_poses"]
    assert any("raise" in label for ref in source["reference_poses"] for label in ref["labels"])
    losses = source["losses"]["total"]
    assert losses[-1] < losses[0]
    prov = json.loads((raise_arms_job / "provenance.json").read_text())
    assert prov["config"]["motion"]["name"] == "raise both arms"
    assert prov["config"]["motion_gen"]["iterations"] == 150 and "motion" in prov["timings_s"]


def test_shape_and_motion_combine(tmp_path):
    from avatar_studio.cli import main

    out = tmp_path / "squat"
    assert main(["text", "--shape", "a very tall heavy man", "--motion", "squat", "-q", "-o", str(out)]) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["sliders"]["height"] > 0.6 and params["sliders"]["weight"] > 0.6
    npz = np.load(out / "motion.npz", allow_pickle=True)
    pelvis = npz["joint_positions"][:, list(npz["joint_names"]).index("pelvis"), 1]
    assert pelvis.max() - pelvis.min() > 0.2  # a squat lowers the pelvis
    assert validate_glb(out / "avatar.glb")["issues"]["numErrors"] == 0


def test_slider_bodies_take_described_motions_too(tmp_path):
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    config = load_sliders_config("preview", {"motion.name": "jump"})
    out = run_sliders_job({"height": 0.2}, config, tmp_path / "jump")
    npz = np.load(out / "motion.npz", allow_pickle=True)
    names = list(npz["joint_names"])
    feet = npz["joint_positions"][:, [names.index("foot_l"), names.index("foot_r")], 1]
    assert (feet.min(axis=1) - feet.min()).max() > 0.08  # at some frame both feet are off the ground
    assert json.loads((out / "params.json").read_text())["motion_source"]["method"] == "offline"


def test_builtin_names_still_give_the_procedural_clips(tmp_path):
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    out = run_sliders_job({}, load_sliders_config("preview", {"motion.name": "wave"}), tmp_path / "wave")
    source = json.loads((out / "params.json").read_text())["motion_source"]
    assert {k: source[k] for k in ("method", "name")} == {"method": "builtin", "name": "wave"}
    assert source["clip"]["name"] == "wave" and not source["clip"]["loop"]  # a one-shot: no loop by default


def test_motion_only_text_job_is_accepted_at_the_boundary():
    from avatar_studio.kinds import get_kind

    inputs, _ = get_kind("text").validate({"motion": "kick a soccer ball"}, {})
    assert inputs == {"shape": "", "appearance": "", "motion": "kick a soccer ball"}
