"""The create job (issue 15): one avatar from a photo's face, body words, look words and a motion."""
from __future__ import annotations

import json

import pytest

from avatar_studio.errors import InvalidJobInputError
from avatar_studio.kinds import get_kind
from gltf_validation import validate_glb

LOOK = "an old bearded man with glasses, red jacket, blue jeans, white sneakers"


@pytest.mark.parametrize("inputs,words", [
    ({}, "give a photo, a body description, a look description or a motion"),
    ({"look": "x" * 400}, "the look description has 400 characters"),
    ({"photo": "../../etc/passwd.png"}, "must name a stored upload"),
    ({"body": "tall", "colour": "red"}, "unknown create input field 'colour'"),
    ({"look": "tall \ud800"}, "the look description"),
])
def test_the_create_kind_refuses_bad_input_at_submit(inputs, words):
    with pytest.raises(InvalidJobInputError, match=words):
        get_kind("create").validate(inputs, None)


def test_the_create_kind_resolves_its_config_from_the_presets_create_section():
    inputs, config = get_kind("create").validate({"body": "a tall man", "motion": "wave"},
                                                 {"preset": "preview", "overrides": {"iterative.iterations": 10}})
    assert inputs == {"photo": None, "body": "a tall man", "look": "", "motion": "wave"}
    with pytest.raises(InvalidJobInputError, match="iterative.iterations must be >= 0"):
        get_kind("create").validate({"body": "a tall man"}, {"overrides": {"iterative.iterations": -1}})


def test_the_create_preset_section_takes_its_values_from_the_photo_text_and_sliders_sections():
    from avatar_studio.pipelines.create import load_create_config
    from avatar_studio.pipelines.photo import load_photo_config
    from avatar_studio.pipelines.sliders import load_sliders_config
    from avatar_studio.pipelines.text import load_text_config

    for preset in ("preview", "standard", "paper"):
        create = load_create_config(preset)
        assert create.iterative == load_photo_config(preset).iterative
        assert create.shape == load_text_config(preset).shape and create.motion_gen == load_text_config(preset).motion_gen
        assert create.preview == load_sliders_config(preset).preview and create.motion == load_sliders_config(preset).motion


@pytest.mark.slow
def test_words_only_give_a_tall_heavy_bearded_avatar_with_glasses_that_waves(tmp_path):
    from avatar_studio.pipelines.create import load_create_config, run_create_job

    out = run_create_job(None, "a very tall heavy man", LOOK, load_create_config("preview", {"motion.name": "wave"}),
                         tmp_path / "job")
    params = json.loads((out / "params.json").read_text())
    assert params["face"]["discrete"]["beard"] == "full" and params["face"]["discrete"]["glasses"] != "none"
    assert params["face"]["continuous"]["gender"] < 0.5 and params["face"]["continuous"]["age"] > 0.8  # old man
    assert params["body"]["sliders"]["height"] > 0.6 and params["body"]["sliders"]["weight"] > 0.6
    assert "gender" not in params["body"]["sliders"]  # the look's explicit words keep the face's gender
    assert [g["kind"] for g in params["look"]["garments"]] == ["jacket", "jeans", "shoes"]
    assert params["look"]["unplaced"] == [] and params["motion"]["name"] == "wave"
    report = validate_glb(out / "avatar.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    assert (out / "motion.bvh").is_file() and (out / "preview.png").is_file()
    # the garments as the GLB carries them: a red jacket, blue jeans, white sneakers (mean vertex colour)
    from avatarclip_core.export.gltf_read import read_glb

    mesh, motion = read_glb(out / "avatar.glb")
    colours = mesh.vertex_colors.numpy()
    means = {g["kind"]: colours[g["first_vertex"]:g["first_vertex"] + g["vertex_count"]].mean(0)
             for g in params["outfit"]["garments"]}
    assert set(means) == {"jacket", "jeans", "shoes"}
    r, g, b = means["jacket"]
    assert r > 0.5 and r > 2 * g and r > 2 * b, means["jacket"]
    r, g, b = means["jeans"]
    assert b > r and b > g, means["jeans"]
    assert means["shoes"].min() > 0.7, means["shoes"]
    assert params["outfit"]["body_faces_hidden"] > 1000 and motion is not None
    assert not [d for d in params["decisions"] if d["by"] == "default outfit"]  # the words dressed every part


@pytest.mark.slow
def test_the_photo_decides_the_face_and_explicit_look_words_win_for_hair_and_glasses(tmp_path):
    from PIL import Image
    from skimage import data

    from avatar_studio.pipelines.create import load_create_config, run_create_job

    photo = tmp_path / "astronaut.png"  # a woman with short brown hair, no glasses
    Image.fromarray(data.astronaut()).save(photo)
    out = run_create_job(photo, "a very tall person", "a man with grey hair and round glasses",
                         load_create_config("preview"), tmp_path / "job")
    params = json.loads((out / "params.json").read_text())
    assert params["face"]["discrete"]["hair_colour"] == "grey" and params["face"]["discrete"]["glasses"] == "round"
    assert params["face"]["continuous"]["gender"] > 0.5  # the photo's woman, not the look's "man"
    assert {"key": "gender", "value": "male", "by": "photo", "over": "look words"} in params["decisions"]
    assert params["body"]["sliders"]["height"] > 0.6 and "gender" not in params["body"]["sliders"]
    assert params["face"]["method"] in ("iterative", "oneshot")
    # the look names no garment: the default outfit dresses the body
    assert {d["value"] for d in params["decisions"] if d["by"] == "default outfit"} == {"t_shirt", "trousers", "shoes"}
    assert [g["kind"] for g in params["outfit"]["garments"]] and params["outfit"]["body_faces_hidden"] > 1000
    assert validate_glb(out / "avatar.glb")["issues"]["numErrors"] == 0


def test_rest_create_avatar_takes_one_json_and_an_optional_photo(tmp_path):
    """REST /create_avatar through the real app (no worker: the stored records are checked)."""
    import gradio_client
    from PIL import Image
    from skimage import data

    from web.testing import studio

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    with studio(tmp_path / "data", worker=False) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        words = c.predict('{"body": "a very tall man", "look": "red jacket", "motion": "wave"}',
                          api_name="/create_avatar")  # the photo is optional
        record = s.api.record(words)
        assert record.kind == "create" and record.inputs == {"photo": None, "body": "a very tall man",
                                                              "look": "red jacket", "motion": "wave"}
        with_photo = c.predict('{"look": "grey hair"}', gradio_client.handle_file(str(photo)),
                               api_name="/create_avatar")
        stored = s.api.record(with_photo).inputs["photo"]
        assert stored.endswith(".png") and (s.settings.data_dir / "uploads" / stored).is_file()
        engine_ready = c.predict('{"body": "a tall man", "formats": ["glb", "vrm"], "profile": "unity", '
                                 '"config": {"default_outfit": "jeans"}}', api_name="/create_avatar")
        assert s.api.record(engine_ready).config["overrides"] == {
            "default_outfit": "jeans", "export.formats": "glb,vrm", "export.profile": "unity"}
        jobs = len(s.api.list(100))
        for bad, words in (('{"colour": "red"}', "unknown key 'colour'"), ('{"look": 3}', "'look' must be text"),
                           ("{}", "give a photo, a body description"), ("[1]", "JSON object"),
                           ('{"body": "x", "config": {"neus.iterations": 9}}', "cannot be set over REST"),
                           ('{"body": "x", "profile": "godot"}', "unknown profile"),
                           ('{"body": "x", "config": {"default_outfit": "cape"}}', "default_outfit must be one of")):
            with pytest.raises(Exception, match=words):
                c.predict(bad, api_name="/create_avatar")
        assert len(s.api.list(100)) == jobs  # nothing stored for a refused request
