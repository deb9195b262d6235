"""Discrete assets (hair style, beard, brows, glasses) chosen from the photo (methods/slots.py): engine
renders with known options through the real face analysis, the astronaut, degenerate photos, params.json."""
from __future__ import annotations

import collections
import dataclasses
import json

import numpy as np
import pytest
import skimage.data

from face2param.engines.base import engine_memo

SLOTS = ("hair_style", "beard", "glasses")  # the default slots (eyebrows: not above the majority)
# argmax accuracy measured on 24 analysed renders per seed (mean-face path), tuning seed 1 / test seed:
# hair 0.58 / 0.58 (majority 0.25 / 0.25), beard 0.79 / 0.88 (0.29 / 0.29), glasses 0.96 / 0.88
# (0.46 / 0.46); eyebrows 0.46 / 0.38 (0.33 / 0.33) is not claimed. Each must beat the majority by:
MARGINS = {"hair_style": 0.2, "beard": 0.3, "glasses": 0.25}


@pytest.fixture(scope="module")
def engine():
    from face2param.methods.fit import load_engine

    return load_engine()


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def _config(**changes):
    from face2param.config import Face2ParamConfig

    config = Face2ParamConfig()
    return dataclasses.replace(config, slots=dataclasses.replace(config.slots, **changes))


def _choose(image, engine, params=None, **changes):
    from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
    from face2param.methods.slots import choose_slots

    faces = FaceAnalysisConfig(compute_embedding=False)
    analysis = analyse_face(image, faces)
    config = _config(**changes)
    return choose_slots(analysis.appearance, engine, params or engine.spec.defaults(), config.slots,
                        faces.regions, on_fitted_face=False)


def _random_face(engine, rng):
    from face2param.engines.base import EngineParams

    spec = engine.spec
    continuous = {c.name: float(np.clip(c.default + rng.uniform(-0.3, 0.3), 0, 1)) for c in spec.continuous}
    discrete = {s.name: s.options[rng.integers(len(s.options))] for s in spec.discrete}
    return EngineParams(continuous, discrete).validated(spec)


@pytest.mark.slow
def test_renders_with_known_assets_are_recognised_better_than_the_majority_option(engine):
    rng = np.random.default_rng(20261203)
    truth, hits = collections.defaultdict(list), collections.Counter()
    for _ in range(24):
        params = _random_face(engine, rng)
        image = (engine.render(params, 512).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        chosen, _ = _choose(image, engine, params, min_confidence=0.0)
        for slot in MARGINS:
            truth[slot].append(params.discrete[slot])
            hits[slot] += chosen.discrete[slot] == params.discrete[slot]
    for slot, margin in MARGINS.items():
        majority = collections.Counter(truth[slot]).most_common(1)[0][1] / len(truth[slot])
        assert hits[slot] / len(truth[slot]) >= majority + margin, (slot, hits[slot], majority)


def test_the_astronaut_gets_no_beard_and_no_glasses(engine, astronaut):
    chosen, losses = _choose(astronaut, engine)
    assert chosen.discrete["beard"] == "none" and chosen.discrete["glasses"] == "none"
    assert set(losses["slots"]) == set(SLOTS)
    for slot, report in losses["slots"].items():
        assert report["option"] == chosen.discrete[slot]
        assert report["chosen"] or report["note"].startswith("kept the default")


def test_a_greyscale_photo_keeps_the_default_assets_and_says_why(engine, astronaut):
    grey = np.repeat(astronaut.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    chosen, losses = _choose(grey, engine)
    defaults = engine.spec.defaults().discrete
    for slot in SLOTS:
        assert chosen.discrete[slot] == defaults[slot]
        assert "greyscale" in losses["slots"][slot]["note"]


def test_a_photo_without_person_pixels_keeps_the_defaults(engine, astronaut):
    from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
    from face2param.methods.slots import choose_slots

    faces = FaceAnalysisConfig(compute_embedding=False)
    view = analyse_face(astronaut, faces).appearance
    empty = dataclasses.replace(view, person=np.zeros_like(view.person), hair=None)
    chosen, losses = choose_slots(empty, engine, engine.spec.defaults(), _config().slots, faces.regions, False)
    assert chosen.discrete == engine.spec.defaults().discrete
    assert all("segmentation missed" in r["note"] for r in losses["slots"].values())


def test_a_tightly_cropped_photo_keeps_the_default_hair(engine, astronaut):
    chosen, losses = _choose(astronaut[40:230, 150:320], engine)  # forehead to chin: no room for hair
    assert chosen.discrete["hair_style"] == engine.spec.defaults().discrete["hair_style"]
    assert "area around the head" in losses["slots"]["hair_style"]["note"]


def test_engine_descriptors_are_cached_per_face_and_settings(engine):
    from face2param.faces.regions import RegionConfig
    from face2param.methods.slots import engine_descriptors

    config, params = _config().slots, engine.spec.defaults()
    first = engine_descriptors(engine, params, "beard", config, RegionConfig())
    assert engine_descriptors(engine, params, "beard", config, RegionConfig()) is first
    assert first.shape[0] == len(engine.spec.slot("beard").options)
    assert np.linalg.norm(first[0] - first[-1]) > 0.1  # no beard vs a full beard differ


def test_engine_descriptors_survive_the_process_on_disk_and_a_damaged_file_is_recomputed(engine, tmp_path, monkeypatch):
    """On disk in the user cache folder (shared by every data folder: the key holds the code and the
    colours); a test-own one here, since the check damages the files."""
    from avatarclip_core.paths import user_cache_dir
    from face2param.faces.regions import RegionConfig
    from face2param.methods import slots

    config = _config().slots
    params = dataclasses.replace(engine.spec.defaults(), discrete={**engine.spec.defaults().discrete,
                                                                    "skin_tone": engine.spec.slot("skin_tone").options[-1]})
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "user-cache"))
    engine_memo(engine, "slot_descriptors").clear()  # an earlier test's renders are not on this disk
    first = slots.engine_descriptors(engine, params, "glasses", config, RegionConfig())
    engine_memo(engine, "slot_descriptors").clear()  # as a fresh process would start
    before = set(user_cache_dir("face2param_slots").glob("*.npy"))
    assert before and all(p.parent.parent == tmp_path / "user-cache" for p in before), before
    again = slots.engine_descriptors(engine, params, "glasses", config, RegionConfig())
    assert np.array_equal(again, first) and set(user_cache_dir("face2param_slots").glob("*.npy")) == before
    for path in before:
        path.write_bytes(b"damaged")
    engine_memo(engine, "slot_descriptors").clear()
    assert np.allclose(slots.engine_descriptors(engine, params, "glasses", config, RegionConfig()), first)


def test_the_mean_method_reports_defaults_and_oneshot_chooses(astronaut):
    from face2param.methods.fit import fit

    mean = fit(astronaut, "mean", config=_config())
    assert mean.losses["slots"] == "engine defaults"
    oneshot = fit(astronaut, "oneshot", config=_config())
    assert set(oneshot.losses["slots"]) == set(SLOTS)
    assert oneshot.params.discrete["beard"] == "none"


@pytest.mark.slow
def test_the_chosen_assets_land_in_params_json(tmp_path, astronaut):
    from PIL import Image

    from avatar_studio.pipelines.photo import load_photo_config, run_photo_job

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    config = dataclasses.replace(load_photo_config("preview"), method="iterative", face_image_size=128)
    folder = run_photo_job(photo, config, tmp_path / "job")
    params = json.loads((folder / "params.json").read_text())
    for slot in SLOTS:
        assert params["losses"]["slots"][slot]["option"] == params["discrete"][slot]
    assert params["discrete"]["beard"] == "none"


def test_prefilled_renders_are_the_ones_a_photo_of_those_colours_uses(engine, astronaut, monkeypatch):
    """`avatar warmup --face-assets` (slots.prefill_slot_descriptors): after it, a photo's asset choice
    renders nothing new. Here over the skin tones only (glasses: 3 renders each) to keep it fast."""
    from face2param.engines.base import EngineParams
    from face2param.faces.regions import RegionConfig
    from face2param.methods import slots

    monkeypatch.setattr(slots, "RENDER_COLOURS", ("skin_tone",))
    config, seen = _config(slots=("glasses",)).slots, []
    count = slots.prefill_slot_descriptors(engine, config, RegionConfig(), lambda f, m: seen.append(m))
    assert count == len(engine.spec.slot("skin_tone").options) == len(seen)
    memo = engine_memo(engine, "slot_descriptors")
    before = set(memo)
    spec = engine.spec
    darkest = spec.slot("skin_tone").options[-1]
    params = EngineParams(spec.defaults().continuous, {**spec.defaults().discrete, "skin_tone": darkest})
    _, report = _choose(astronaut, engine, params.validated(spec), slots=("glasses",))
    assert report["slots"]["glasses"]["probabilities"]  # it did compare the photo with renders
    assert set(memo) == before, set(memo) - before
