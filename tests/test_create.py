"""The create job (issue 15): one avatar from a photo's face, body words, look words and a motion."""
from __future__ import annotations

import json
from pathlib import Path

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


@pytest.mark.parametrize("threads", [1, 0])
def test_the_job_runs_on_its_configured_torch_threads_and_puts_them_back(threads, monkeypatch, tmp_path):
    """config.threads (default 1: the job is small tensor ops; a second thread made it 3x slower on a
    loaded 2-core machine, same files) holds while the job runs; the process's count comes back after."""
    import torch

    from avatar_studio.pipelines import create

    seen = []
    monkeypatch.setattr(create, "_run_create_job", lambda *args: seen.append(torch.get_num_threads()) or tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = create.load_create_config("preview", {"threads": threads})
        assert create.CreateJobConfig().threads == 1
        assert create.run_create_job(None, "a tall man", config=config) == tmp_path
        assert seen == [threads or 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


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


PAIRS = Path(__file__).parent / "data" / "look_one_attribute_pairs.json"
_FACE_KEYS = {"hair_colour": "face.hair_colour", "beard": "face.beard", "glasses": "face.glasses"}


def _avatar_state(avatar) -> dict:
    """A words-only avatar (pipelines.create.words_avatar) as one flat dict: every face parameter and slot,
    every body slider, and per garment part (top, bottom, dress, shoes) its kind and colour as dressed."""
    from avatarclip_core.outfit import KINDS

    out = {f"face.{k}": round(float(v), 6) for k, v in avatar.params.continuous.items()}
    out.update({f"face.{k}": v for k, v in avatar.params.discrete.items()})
    out.update({f"body.{k}": round(float(v), 6) for k, v in avatar.body_values.items()})
    for g in avatar.garments:
        part = KINDS[g.kind].category
        out[f"{part}.kind"] = g.kind
        out[f"{part}.colour"] = tuple(round(float(c), 3) for c in (g.rgb or KINDS[g.kind].colour))
    return out


def _named_rgb(phrase: str):
    import numpy as np

    from avatar_studio.look.colours import colour_rgb

    *modifier, name = phrase.split()
    return np.array(colour_rgb(name, modifier[0] if modifier else None))


def _measured_change(pair: dict, a, b, engine, config) -> str | None:
    """What the avatar shows of the change, None when it is right: face slots in a front render of the face
    engine (glasses change pixels at the eyes, a beard below the nose tip, the hair's rendered colour moves
    towards the named one); garments on the dressed body (mean vertex colour nearer the named colour, the
    named kind worn with another coverage)."""
    import numpy as np

    from avatarclip_core.outfit import KINDS, dress
    from face2param.engines.assets.colours import HAIR_COLOURS

    attribute = pair["attribute"]
    if attribute in _FACE_KEYS:
        ra, rb = (engine.render(s.params, 128).numpy() for s in (a, b))
        changed = np.abs(rb - ra).max(-1) > 0.03
        if changed.sum() < 15:
            return f"the render hardly changes ({changed.sum()} pixels)"
        row = float(np.median(np.nonzero(changed)[0]))
        points = engine.landmarks(a.params, 128).points2d.numpy()  # ibug68: 36-47 the eyes, 33 the nose tip
        eyes, nose = points[36:48, 1].mean(), points[33, 1]
        if attribute == "glasses" and not abs(row - eyes) < 0.6 * (nose - eyes):
            return f"the render changes around row {row:.0f}, the eyes are at {eyes:.0f}"
        if attribute == "beard" and not row > nose:
            return f"the render changes around row {row:.0f}, above the nose tip at {nose:.0f}"
        if attribute == "hair_colour":
            target = np.array(HAIR_COLOURS[pair["to"]])
            was, now = (float(np.linalg.norm(r[changed].mean(0) - target)) for r in (ra, rb))
            if not now < was:
                return f"the rendered hair is {now:.3f} from {pair['to']}, was {was:.3f}"
        return None
    worn = []
    for s in (a, b):
        dressed, report = dress(engine.build_avatar(s.params, body_values=s.body_values), s.garments, config.outfit)
        g = next(g for g in report.garments if KINDS[g.kind].category == pair["part"])
        colours = dressed.vertex_colors.numpy()[g.first_vertex:g.first_vertex + g.vertex_count]
        worn.append((g.kind, g.vertex_count, colours.mean(0)))
    if attribute == "garment_colour":
        was, now = (float(np.linalg.norm(w[2] - _named_rgb(pair["to"]))) for w in worn)
        return None if now < was else f"the dressed {pair['part']} is {now:.3f} from {pair['to']}, was {was:.3f}"
    return None if worn[1][0] == pair["to"] and worn[0][1] != worn[1][1] else f"dressed {worn}"


@pytest.mark.slow
def test_look_prompts_that_differ_in_one_attribute_change_exactly_that_attribute_of_the_avatar():
    """Issue 15: >= 90 % of look prompt pairs that differ in one attribute (tests/data/
    look_one_attribute_pairs.json: hair colour, beard, glasses, garment colour and kind, some paraphrased)
    change exactly that attribute of the avatar: the create job's own words -> parameters and outfit steps
    (words_avatar) give states that differ in that attribute only, to the value the pair names, and the
    render / dressed body shows it. Measured: 51 of 51 (1.00; 41 of 51 before the look parser read
    negations, hair shades, beard adjectives and colours after their noun or before an encoder word)."""
    from avatar_studio.look import parse_look
    from avatar_studio.pipelines.create import load_create_config, words_avatar
    from avatarclip_core.clip.text_encoder import TextEncoder
    from face2param.engines.registry import load_engine

    pairs = json.loads(PAIRS.read_text())["pairs"]
    counts = {}
    for p in pairs:
        counts[p["attribute"]] = counts.get(p["attribute"], 0) + 1
    assert len(pairs) >= 40 and set(counts) == {"hair_colour", "beard", "glasses", "garment_colour", "garment_kind"}
    assert min(counts.values()) >= 8 and sum(p.get("paraphrase", False) for p in pairs) >= 10
    config = load_create_config("preview")
    engine, encoder = load_engine(config), TextEncoder()
    failures = []
    for pair in pairs:
        a, b = (words_avatar(parse_look(pair[k], encoder), engine, config) for k in ("a", "b"))
        sa, sb = _avatar_state(a), _avatar_state(b)
        key = _FACE_KEYS.get(pair["attribute"]) or f"{pair['part']}.{pair['attribute'].split('_')[1]}"
        want = (tuple(_named_rgb(pair["to"]).round(3).tolist()) if pair["attribute"] == "garment_colour"
                else pair["to"])
        differs = {k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k)}
        if differs != {key} or sb[key] != want:
            failures.append((pair["b"], {k: (sa.get(k), sb.get(k)) for k in differs}, f"wanted {key} = {want}"))
            continue
        problem = _measured_change(pair, a, b, engine, config)
        if problem:
            failures.append((pair["b"], problem))
    rate = 1 - len(failures) / len(pairs)
    assert rate >= 0.9, (rate, failures)
