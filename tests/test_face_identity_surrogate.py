"""The identity surrogate of dlib's network (methods/identity_surrogate.py) and the iterative method's
identity term on it: fitted on engine samples, it predicts render descriptors better than their mean,
and the identity term moves a real photo's fitted render closer to the photo in dlib's real space."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from avatarclip_core.device import torch_threads
from face2param.config import Face2ParamConfig
from face2param.methods.fit import as_numpy_image, fit, load_engine
from face2param.methods.identity_surrogate import (PACKAGED, IdentitySurrogate, IdentitySurrogateUnavailableError,
                                                   fit_identity_surrogate, identity_loss, load_for_engine)
from face2param.methods.iterative import EngineFaceModel


@pytest.fixture(scope="module")
def engine():
    return load_engine()


@pytest.fixture(scope="module")
def astronaut_target():
    from skimage import data

    from face2param.faces.analysis import analyse_face
    from face2param.methods.target import target_from_analysis

    pixels = data.astronaut()
    return target_from_analysis(analyse_face(pixels), pixels)


@pytest.fixture(scope="module")
def packaged(engine):
    return load_for_engine("", engine.spec, "cpu")


@pytest.mark.slow
def test_fitted_surrogate_predicts_held_out_descriptors_better_than_their_mean(engine):
    """240 fresh samples (their own seed, not the packaged artifact's), 40 held out."""
    with torch_threads(1):  # put back after: later tests (NeuS) must run as they do alone
        surrogate = fit_identity_surrogate(EngineFaceModel(engine, 64), 240, 0.35, 3.0, 160, seed=123,
                                           cache_folder=None, validation_fraction=1 / 6)
    m = surrogate.metrics
    assert m["failed_descriptors"] <= 5
    assert m["heldout_cosine"] > m["heldout_cosine_of_mean_descriptor"] + 0.01
    assert m["heldout_r2"] > 0.2


def test_the_packaged_surrogate_records_how_well_it_predicts(packaged):
    m = packaged.metrics
    assert m["samples"] >= 1000 and m["heldout_cosine"] > m["heldout_cosine_of_mean_descriptor"]


def test_identity_loss_has_gradients_and_save_load_round_trips(packaged, engine, tmp_path):
    spec = engine.spec
    x = spec.defaults().continuous_vector(spec)[None].clone().requires_grad_(True)
    probs = {k: v[None] for k, v in spec.defaults().discrete_one_hot(spec).items()}
    photo = torch.randn(1, 128)
    loss = identity_loss(packaged, photo)(x, probs)
    loss.sum().backward()
    assert loss.shape == (1,) and float(x.grad.abs().sum()) > 0
    path = tmp_path / "s.npz"
    packaged.save(path)
    again = IdentitySurrogate.load(path)
    assert torch.allclose(again(x.detach(), probs), packaged(x.detach(), probs), atol=1e-5)
    assert again.metrics == packaged.metrics


def test_a_surrogate_for_other_parameters_or_a_bad_file_is_refused(packaged, engine, tmp_path):
    other = dataclasses.replace(packaged, continuous_names=packaged.continuous_names[:-1] + ["other"])
    path = tmp_path / "other.npz"
    other.save(path)
    with pytest.raises(IdentitySurrogateUnavailableError, match="other engine parameters"):
        load_for_engine(str(path), engine.spec, "cpu")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a numpy file")
    with pytest.raises(IdentitySurrogateUnavailableError, match="not an identity surrogate"):
        load_for_engine(str(bad), engine.spec, "cpu")
    with pytest.raises(IdentitySurrogateUnavailableError, match="avatar train face2param --identity"):
        load_for_engine(str(tmp_path / "missing.npz"), engine.spec, "cpu")


def _true_cosine(engine, params, photo_embedding) -> float:
    from face2param.translator.samples import render_embedding

    image = as_numpy_image(engine.render(params, 160))
    points = engine.landmarks(params, 160, "ibug68").points2d.cpu().numpy()
    render = render_embedding(image, points)
    return float(render @ photo_embedding / np.linalg.norm(render) / np.linalg.norm(photo_embedding))


def test_packaged_surrogate_moves_a_real_photos_fit_closer_in_dlibs_real_identity_space(engine, astronaut_target):
    assert PACKAGED.is_file(), "the packaged identity surrogate is missing"
    photo = np.asarray(astronaut_target.embedding)
    cosines, nmes = {}, {}
    for weight in (0.0, 0.01):
        config = Face2ParamConfig()
        config.iterative.identity_weight = weight
        config.iterative.identity_surrogate = str(PACKAGED)
        result = fit(astronaut_target, "iterative", engine, config)
        cosines[weight], nmes[weight] = _true_cosine(engine, result.params, photo), result.losses["landmark_nme"]
    mean_cosine = _true_cosine(engine, engine.spec.defaults(), photo)
    assert cosines[0.01] > max(cosines[0.0], mean_cosine) + 0.01
    assert nmes[0.01] < nmes[0.0] + 0.03  # the landmarks stay fitted


def test_a_named_surrogate_that_does_not_exist_fails_the_fit_with_the_fix(engine, astronaut_target, tmp_path):
    config = Face2ParamConfig()
    config.iterative.identity_weight = 0.01
    config.iterative.identity_surrogate = str(tmp_path / "nowhere.npz")
    with pytest.raises(IdentitySurrogateUnavailableError, match="--identity"):
        fit(astronaut_target, "iterative", engine, config)
