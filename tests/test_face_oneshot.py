"""One-shot translator T (Fast F2P) with the shipped preview artifact: held-out engine samples, a real
photo through fit(), and the error when no artifact exists."""
from __future__ import annotations

import json
import time

import pytest
import torch

from face2param.config import Face2ParamConfig, OneShotConfig
from face2param.methods.oneshot import PACKAGED, TranslatorUnavailableError, fit_oneshot, load_for_engine
from face2param.methods.target import FitTarget


@pytest.fixture(scope="module")
def engine():
    from face2param.methods.fit import load_engine

    return load_engine(Face2ParamConfig())


def test_shipped_artifact_is_small_and_beat_the_mean_face_when_trained():
    size = sum(p.stat().st_size for p in PACKAGED.iterdir())
    assert size < 10 * 2 ** 20
    metrics = json.loads((PACKAGED / "metrics.json").read_text())
    assert metrics["nme_translator"] < metrics["nme_mean_face"]


def test_translator_beats_mean_face_on_heldout_engine_samples(engine):
    from face2param.methods.iterative import EngineFaceModel
    from face2param.translator.model import COLOUR_KEYS, face_features
    from face2param.translator.train import (LANDMARK_SIZE, SCHEMES, engine_observations, landmark_nme,
                                             sample_parameters)

    config = Face2ParamConfig()
    device = torch.device(engine.device)
    net, meta, buffers = load_for_engine(config, engine, device)
    model = EngineFaceModel(engine, LANDMARK_SIZE, SCHEMES)
    mean = engine.spec.defaults().continuous_vector(engine.spec, device)
    x, slots = sample_parameters(engine.spec, mean, 24, config.train.sample_spread, torch.Generator().manual_seed(1234))
    landmarks, colours = engine_observations(model, x, slots)
    features = face_features(landmarks, colours, {s: buffers[f"ref_{s}"] for s in meta["references"]},
                             {k: buffers[f"colour_{k}"] for k in COLOUR_KEYS})
    with torch.no_grad():
        x_hat, _ = net(features)
    nme_t = landmark_nme(model, x_hat, landmarks).mean()
    nme_mean = landmark_nme(model, mean.expand(len(x), -1), landmarks).mean()
    assert nme_t < 0.8 * nme_mean, (float(nme_t), float(nme_mean))
    # the same through fit_oneshot on one sample (FitTarget path, one forward pass)
    target = FitTarget(landmarks["ibug68"][0].cpu().numpy(), landmarks["mediapipe478"][0].cpu().numpy(),
                       skin=colours["skin"][0].cpu().numpy(), hair=colours["hair"][0].cpu().numpy())
    params, _, warnings = fit_oneshot(target, engine, config, device)
    one = params.continuous_vector(engine.spec, device)[None]
    assert float(landmark_nme(model, one, {s: v[:1] for s, v in landmarks.items()})[0]) < \
        float(landmark_nme(model, mean[None], {s: v[:1] for s, v in landmarks.items()})[0])
    assert not warnings


def test_fit_astronaut_oneshot_returns_valid_params_fast(engine):
    skimage_data = pytest.importorskip("skimage.data")
    from face2param.faces.analysis import analyse_face
    from face2param.methods.fit import fit
    from face2param.methods.target import target_from_analysis

    photo = skimage_data.astronaut()
    target = target_from_analysis(analyse_face(photo), photo)
    result = fit(target, "oneshot", engine=engine)
    assert result.method == "oneshot"
    assert set(result.params.continuous) == set(engine.spec.continuous_names)
    assert all(0.0 <= v <= 1.0 for v in result.params.continuous.values())
    assert result.params.validated(engine.spec) == result.params
    assert result.timings["oneshot"] < 1.0
    mean_face = fit(target, "mean", engine=engine)
    assert result.losses["landmark_nme"] < mean_face.losses["landmark_nme"]  # closer to her face than the mean


def test_missing_artifact_names_the_training_command(engine, tmp_path):
    config = Face2ParamConfig(oneshot=OneShotConfig(artifact_dir=str(tmp_path / "none")))
    target = FitTarget(torch.rand(68, 2).numpy() * 100)
    with pytest.raises(TranslatorUnavailableError, match="avatar train face2param"):
        fit_oneshot(target, engine, config, torch.device("cpu"))


def test_train_translator_writes_a_loadable_artifact(engine, tmp_path):
    from face2param.config import TrainConfig
    from face2param.translator.train import train_translator

    config = Face2ParamConfig(train=TrainConfig(samples=48, epochs=2, batch_size=16),
                              oneshot=OneShotConfig(hidden=32, blocks=1, pca_components=8))
    stages = []
    out = train_translator(config, tmp_path / "t", progress=lambda stage, fraction, message="": stages.append(fraction))
    assert {p.name for p in out.iterdir()} == {"translator.pt", "meta.json", "metrics.json"}
    assert stages[-1] == 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["nme_translator"] > 0
    loaded = Face2ParamConfig(oneshot=OneShotConfig(artifact_dir=str(out)))
    net, meta, _ = load_for_engine(loaded, engine, torch.device(engine.device))
    assert meta["oneshot"]["hidden"] == 32 and net.components.shape[0] == 8
