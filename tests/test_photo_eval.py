"""`avatar eval photo` for the fitting methods: per-photo scores against the mean face, parameter
recovery on engine renders, people separation, the report folder. Photos come from scikit-image
(astronaut, LFW subset) and engine renders made here; no /work/shared data is needed."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from avatarclip_core.errors import OutputExistsError, UserInputError
from face2param.config import Face2ParamConfig
from face2param.evaluation import (MethodRunner, PhotoEvalConfig, RecoveryConfig,
                                   evaluate_photo_methods, evaluate_recovery, r_squared)
from face2param.methods.fit import load_engine

# small renders and a colour-free search keep each test to seconds (the colour term renders every
# iteration); the defaults (512 px renders, colours on) are what the real runs use
FAST_EVAL = PhotoEvalConfig(render_size=256, tile_size=96,
                            recovery=RecoveryConfig(render_size=128, targets=("exact",)))


@pytest.fixture(scope="module")
def fast_config():
    config = Face2ParamConfig()
    return dataclasses.replace(config, iterative=dataclasses.replace(config.iterative, color_weight=0.0))


@pytest.fixture(scope="module")
def engine(fast_config):
    return load_engine(fast_config)


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture()
def photos(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(np.full((160, 160, 3), 90, np.uint8)).save(folder / "blank.jpg")
    (folder / "notes.txt").write_text("not a photo: ignored")
    return folder


def test_r_squared_is_zero_for_the_centre_and_one_for_the_truth():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.2, 0.8, size=(5, 7))
    assert r_squared(truth, truth, 0.5) == 1.0
    assert r_squared(truth, np.full_like(truth, 0.5), 0.5) == 0.0
    assert r_squared(truth, truth + 0.3, 0.5) < 0.0
    assert np.isnan(r_squared(np.full((3, 2), 0.4), np.zeros((3, 2))))


def test_recovery_iterative_beats_the_mean_face_on_identifiable_sliders(engine, fast_config):
    run = MethodRunner(engine, fast_config)
    # three samples: only the clearly identifiable sliders (>= 0.015 eye distances) give a stable R^2;
    # the report shows the weaker bands too
    config = dataclasses.replace(FAST_EVAL.recovery, samples=3, identifiable_threshold=0.015)
    section = evaluate_recovery(engine, ("mean", "iterative"), run, config)
    assert 0 < section["identifiable"]["count"] < section["identifiable"]["of"]
    exact = section["targets"]["exact"]
    assert exact["true_parameter_nme"] < 1e-3  # exact targets: the true parameters fit perfectly
    mean, iterative = exact["methods"]["mean"], exact["methods"]["iterative"]
    assert mean["fitted"] == iterative["fitted"] == 3
    assert mean["r2_identifiable"] <= 0.05  # the average face knows nothing about the sample
    assert iterative["r2_identifiable"] > mean["r2_identifiable"] + 0.2
    assert iterative["landmark_nme_mean"] < 0.5 * mean["landmark_nme_mean"]
    assert set(iterative["discrete_accuracy"]) == set(engine.spec.slot_names)
    assert set(iterative["r2_per_group"]) <= {p.group for p in engine.spec.continuous}
    assert iterative["r2_by_identifiability"][">=0.015"] == iterative["r2_identifiable"]


@pytest.mark.slow
def test_iterative_recovers_the_most_identifiable_sliders_of_engine_renders(engine, fast_config):
    """The issue's bar: on renders with known parameters the landmark error goes to ~0 and R^2 >= 0.8
    on the identifiable sliders (here the band >= 0.02 eye distances per unit slider; measured 0.87 on
    20 samples; the weaker bands are in the report: >= 0.015 0.81, >= 0.01 0.50)."""
    # The samples draw every slider independently (left and right apart, up to the bounds): this measures
    # the search, so the face prior, which ties pairs and keeps real-photo fits off the bounds, is off.
    no_prior = dataclasses.replace(fast_config, face_prior=dataclasses.replace(fast_config.face_prior, enabled=False))
    run = MethodRunner(engine, no_prior)
    config = dataclasses.replace(FAST_EVAL.recovery, samples=12, identifiable_threshold=0.02)
    exact = evaluate_recovery(engine, ("iterative",), run, config)["targets"]["exact"]
    iterative = exact["methods"]["iterative"]
    assert iterative["landmark_nme_mean"] < 0.01
    assert iterative["r2_identifiable"] >= 0.8


def test_report_has_per_method_summaries_and_records_a_photo_without_a_face(
        tmp_path, photos, fast_config):
    out = tmp_path / "report"
    summary = evaluate_photo_methods(photos, out, ("iterative", "oneshot"), fast_config,
                                     recovery_samples=0, eval_config=FAST_EVAL)
    assert (out / "index.html").is_file()
    report = json.loads((out / "report.json").read_text())
    methods = report["summary"]["methods"]
    assert list(methods) == ["mean", "iterative", "oneshot"]  # the baseline always comes first
    assert report["summary"]["photos"] == 2 and report["summary"]["evaluated"] == 1
    assert summary["per_photo"]["blank.jpg"]["error"] == "NoFaceError"
    mean, iterative = methods["mean"], methods["iterative"]
    assert mean["photos_fitted"] == iterative["photos_fitted"] == 1
    assert iterative["landmark_nme_mean"] < mean["landmark_nme_mean"]
    assert iterative["win_rate_vs_mean"] == 1.0 and "win_rate_vs_mean" not in mean
    for scores in (mean, iterative):
        assert -1.0 <= scores["identity_cosine_mean"] <= 1.0 and scores["identity_distance_mean"] > 0
        assert scores["fit_seconds_mean"] >= 0
    oneshot = methods["oneshot"]  # not landed yet, or no translator artifact: recorded, not fatal
    assert oneshot["photos_fitted"] == 1 or ("unavailable" in oneshot and oneshot["failures"])
    pair = report["pairs"][0]
    strip = np.asarray(Image.open(out / pair["right"]))
    assert strip.shape == (96, 96 * 3, 3)  # mean | iterative | oneshot tiles
    assert "mean nme" in pair["metrics"] or "mean nme" in json.dumps(pair["metrics"])


def test_refuses_to_overwrite_and_rejects_bad_input_before_writing(tmp_path, photos):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("old report")
    with pytest.raises(OutputExistsError):
        evaluate_photo_methods(photos, out, ("mean",), recovery_samples=0)
    assert (out / "keep.txt").read_text() == "old report"
    with pytest.raises(UserInputError, match="unknown fitting method 'magic'"):
        evaluate_photo_methods(photos, tmp_path / "a", ("mean", "magic"))
    with pytest.raises(UserInputError, match="photo folder not found"):
        evaluate_photo_methods(tmp_path / "missing", tmp_path / "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no photos"):
        evaluate_photo_methods(tmp_path / "empty", tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _people(tmp_path, astronaut):
    import cv2

    lfw = skimage.data.lfw_subset()
    other = np.full((300, 300, 3), 128, np.uint8)
    other[50:250, 50:250] = cv2.resize((lfw[0] * 255).astype(np.uint8), (200, 200),
                                       interpolation=cv2.INTER_CUBIC)[..., None]
    folder = tmp_path / "people"
    for person, image in (("astronaut", astronaut), ("lfw0", other)):
        (folder / person).mkdir(parents=True)
        for index, (scale, dx, dy) in enumerate([(1.0, 0, 0), (0.9, 20, 15)]):
            moved = cv2.warpAffine(image, np.float32([[scale, 0, dx], [0, scale, dy]]),
                                   image.shape[1::-1], borderValue=(128, 128, 128))
            Image.fromarray(moved).save(folder / person / f"{index}.png")
    return folder


def test_people_separation_on_photos_and_on_renders_of_the_mean_face(tmp_path, photos, astronaut,
                                                                      fast_config):
    summary = evaluate_photo_methods(photos, tmp_path / "report", ("mean",), fast_config,
                                     people_dir=_people(tmp_path, astronaut), recovery_samples=0,
                                     eval_config=FAST_EVAL)
    people = summary["people"]
    assert people["method"] == "mean"
    assert people["photos"]["roc_auc"] == 1.0  # two people that dlib tells apart
    renders = people["renders"]  # one face for everybody: genuine and impostor pairs tie
    assert renders["images"] == 4 and renders["roc_auc"] == 0.5
    assert (tmp_path / "report" / "people_renders" / "lfw0" / "1.png").is_file()


@pytest.mark.slow
def test_people_separation_on_renders_of_the_iterative_fit(tmp_path, photos, astronaut, fast_config):
    summary = evaluate_photo_methods(photos, tmp_path / "report", ("iterative",), fast_config,
                                     people_dir=_people(tmp_path, astronaut), recovery_samples=0,
                                     eval_config=FAST_EVAL)
    people = summary["people"]
    assert people["method"] == "iterative" and not people["render_failures"]
    renders = people["renders"]
    assert renders["genuine_pairs"] == 2 and renders["impostor_pairs"] == 4
    # fitted faces of one person stay closer than faces of different people
    assert renders["genuine_distance"]["mean"] < renders["impostor_distance"]["mean"]
