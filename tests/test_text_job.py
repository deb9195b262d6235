"""The `text` job (AvatarCLIP static half) through CLI, pipeline, job kind and web request parsing."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gltf_validation import validate_glb

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tall_heavy(tmp_path_factory):
    from avatar_studio.cli import main

    out = tmp_path_factory.mktemp("text") / "tall_heavy"
    assert main(["text", "--shape", "a very tall heavy man", "--motion", "walk", "-q", "-o", str(out)]) == 0
    return out


def test_shape_prompt_gives_a_valid_rigged_animated_glb(tall_heavy):
    assert validate_glb(tall_heavy / "avatar.glb")["issues"]["numErrors"] == 0
    from avatarclip_core.export import read_glb

    mesh, motion = read_glb(tall_heavy / "avatar.glb")
    assert mesh.skeleton.num_joints >= 20 and motion is not None and motion.num_frames >= 30
    assert {"preview.png", "provenance.json", "motion.bvh", "motion.npz"} <= {p.name for p in tall_heavy.iterdir()}


def test_shape_prompt_moves_the_body_the_right_way(tall_heavy, anny_body):
    params = json.loads((tall_heavy / "params.json").read_text())
    assert params["kind"] == "text" and params["prompts"]["shape"] == "a very tall heavy man"
    sliders = params["sliders"]
    assert sliders["height"] > 0.6 and sliders["weight"] > 0.6 and sliders["gender"] < 0.5
    from avatarclip_core.body import lbs  # noqa: F401  (the body really is taller than the neutral one)

    neutral = anny_body.rigged_mesh({}).vertices
    from avatarclip_core.export import read_glb

    mesh, _ = read_glb(tall_heavy / "avatar.glb")
    assert float(mesh.vertices[:, 1].max()) > float(neutral[:, 1].max()) + 0.05


def test_appearance_without_clip_weights_warns_and_keeps_the_shape(tmp_path, capsys):
    from avatar_studio.cli import main

    out = tmp_path / "offline"
    assert main(["text", "--shape", "a short thin woman", "--appearance", "Iron Man", "-q", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: CLIP weights for ViT-B-32:openai" in err and "clip.checkpoint" in err
    params = json.loads((out / "params.json").read_text())
    assert params["sculpt"]["sculpted"] is False and params["warnings"]
    assert params["sliders"]["gender"] > 0.5 and params["sliders"]["height"] < 0.5


@pytest.mark.parametrize("args,fragment", [
    ([], "give a shape prompt (--shape), an appearance prompt (--appearance), a motion"),
    (["--shape", "x" * 400], "keep it under 300"),
    (["--shape", "a man", "--motion", "moonwalk " * 40], "the motion description has 359 characters; keep it under 300"),
    (["--shape", "a man", "--set", "neus.nope=1"], "unknown config key 'neus.nope'"),
    (["--shape", "a man", "--set", "height=0.5"], "config keys only"),
])
def test_bad_text_input_is_one_line(tmp_path, capsys, args, fragment):
    from avatar_studio.cli import main

    assert main(["text", *args, "-q", "-o", str(tmp_path / "job")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not (tmp_path / "job").exists()


def test_text_job_kind_validates_at_the_boundary():
    from avatar_studio.errors import InvalidJobInputError
    from avatar_studio.kinds import get_kind

    kind = get_kind("text")
    inputs, config = kind.validate({"shape": " a tall man ", "motion": "walk"}, {"preset": "preview"})
    assert inputs == {"shape": "a tall man", "appearance": "", "motion": "walk"}
    assert kind.route(inputs, {"overrides": {"clip.device": "cuda"}}) == "gpu"
    assert kind.route(inputs, config) == "cpu"
    # routed on the RESOLVED config: a device the preset sets counts, and so does neus.device
    assert kind.route(inputs, {"preset": "paper", "overrides": {"neus.device": "cuda:0"}}) == "gpu"
    assert kind.route(inputs, {"preset": "paper", "overrides": {}}) == "cpu"  # auto: runs where it lands
    with pytest.raises(InvalidJobInputError, match="neus.device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        kind.validate({"shape": "a tall man"}, {"preset": "paper", "overrides": {"neus.device": "gpu"}})
    for bad, fragment in [({}, "give a shape prompt"), ({"shape": 3}, "must be text"),
                          ({"shape": "a\x00b"}, "control characters"), ({"shape": "a", "colour": "red"}, "unknown")]:
        with pytest.raises(InvalidJobInputError, match=fragment):
            kind.validate(bad, {})


def test_create_from_text_request_parsing():
    from avatarclip_core.errors import UserInputError
    from web.jobs import parse_text_request

    req = parse_text_request('{"shape": "a tall man", "motion": "walk", "preset": "preview"}')
    assert req["inputs"] == {"shape": "a tall man", "appearance": "", "motion": "walk"}
    assert req["config"]["preset"] == "preview"
    for bad, fragment in [("nope", "invalid JSON"), ("[]", "JSON object"), ('{"shape": ""}', "give"),
                          ('{"shape": "a", "size": 3}', "unknown field"), ('{"shape": "a", "motion": ["fly"]}', "motion")]:
        with pytest.raises(UserInputError, match=fragment):
            parse_text_request(bad)


@pytest.mark.slow
def test_sculpting_with_a_tiny_clip_writes_a_textured_rigged_avatar(tmp_path):
    """End to end through NeuS with the random-weight test CLIP (the product never uses it), with a
    generated motion on the sculpted avatar."""
    from avatarclip_core.clip import tiny_test_scorer
    from avatar_studio.pipelines.text import load_text_config, run_text_job

    config = load_text_config("preview", {
        "neus.iterations": "6", "neus.image_size": "48", "neus.stage1_iterations": "60",
        "neus.stage1_render_iterations": "4", "neus.stage1_bank_size": "20000", "neus.stage1_points": "2048",
        "neus.cache": "false", "neus.mc_resolution": "64", "neus.texture_size": "128", "motion.name": "raise both arms"})
    out = run_text_job("a tall man", "a knight in armour", config, tmp_path / "sculpted",
                       scorer=tiny_test_scorer())
    params = json.loads((out / "params.json").read_text())
    assert params["sculpt"]["sculpted"] is True
    # shape + appearance + a described motion combine; a random-weight CLIP never drives the motion query
    assert params["motion_source"]["method"] == "offline" and params["motion_source"]["text"] == "raise both arms"
    assert validate_glb(out / "avatar.glb")["issues"]["numErrors"] == 0
    from avatarclip_core.export import read_glb

    mesh, motion = read_glb(out / "avatar.glb")
    assert mesh.texture is not None and mesh.uvs is not None and motion is not None
    weights = mesh.skin_weights.numpy()
    assert np.allclose(weights.sum(1), 1.0, atol=1e-3)


def test_every_preset_kind_routes_on_the_devices_its_preset_sets(tmp_path, monkeypatch):
    """The queue follows the resolved config: a preset that puts a job on CUDA sends it to the gpu queue
    with no override at all (routing used to read the overrides only)."""
    import shutil

    from avatar_studio.kinds import get_kind

    from avatarclip_core.config import presets_dir

    for preset in presets_dir().glob("*.yaml"):
        shutil.copy(preset, tmp_path)
    (tmp_path / "gpu.yaml").write_text("text: {clip: {device: cuda}}\nsliders: {body: {device: 'cuda:1'}}\n"
                                       "photo: {engine: {device: cuda}}\n")
    monkeypatch.setenv("AVATAR_CONFIGS_DIR", str(tmp_path))
    for name, inputs in (("text", {"shape": "a tall man"}), ("sliders", {}), ("photo", {"photo": "0" * 32 + ".png"}),
                         ("face", {"params": {}})):
        kind = get_kind(name)
        if name == "face":  # the bundled engine's spec is a child process away: route alone
            assert kind.route({}, {"preset": "gpu", "overrides": {}}) == "gpu"
            continue
        inputs, config = kind.validate(inputs, {"preset": "gpu"})
        assert kind.route(inputs, config) == "gpu", name
        assert kind.route(inputs, {"preset": "preview", "overrides": {}}) == "cpu", name
