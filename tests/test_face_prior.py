"""The face prior (methods/face_prior.py): left/right pairs tied, no slider pinned at a bound on an
adversarial target, the mesh check catching inverted triangles and stretched edges, and the one-shot
path through the same prior."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from face2param.config import Face2ParamConfig
from face2param.engines.base import engine_memo
from face2param.methods.face_prior import HeadMeshCheck, face_prior_for, plausibility, slider_pairs
from face2param.methods.iterative import EngineFaceModel, BatchTarget, search


@pytest.fixture(scope="module")
def config():
    config = Face2ParamConfig()
    # landmarks only: the colour term renders every iteration (seconds), and plays no part in the prior
    return dataclasses.replace(config, iterative=dataclasses.replace(
        config.iterative, color_weight=0.0, identity_weight=0.0, relaxed_slots=()))


@pytest.fixture(scope="module")
def engine(config):
    from face2param.methods.fit import load_engine

    return load_engine(config)


@pytest.fixture(scope="module")
def prior(engine, config):
    return face_prior_for(engine, config.face_prior)


def test_pairs_are_found_by_name():
    names = ["gender", "l-ear-flap-incr", "nose-scale-incr", "r-ear-flap-incr", "l-eye-only"]
    assert slider_pairs(names) == [(1, 3)]


def test_the_priors_whitening_is_cached_bit_for_bit(engine, config, prior, tmp_path, monkeypatch):
    """The prior's SVD whitening (~1 s of CPU per fitting process) is read from the user cache folder
    once computed: the same P as whitening_projection's, and the same prior."""
    from face2param.methods import face_prior as fp
    from face2param.translator.prior import whitening_projection

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    samples = torch.randn(64, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    computed = fp._whitening(samples, 5)
    assert len(list((tmp_path / "face2param").glob("face_prior_whitening_*.pt"))) == 1
    assert torch.equal(computed, whitening_projection(samples, 5)[1])
    assert torch.equal(fp._whitening(samples, 5), computed)
    # the module's prior may have been read from the user's cache, written by a process on another torch
    # thread count (the last bits of an SVD differ): compare a fresh computation with its read-back
    priors = engine_memo(engine, "face_priors")
    saved = dict(priors)
    priors.clear()
    fresh = face_prior_for(engine, config.face_prior)  # computed into tmp_path, not read
    priors.clear()
    read = face_prior_for(engine, config.face_prior)  # read from tmp_path
    priors.clear()
    priors.update(saved)
    assert read is not fresh and torch.equal(read.P, fresh.P) and torch.equal(read.precision, fresh.precision)
    assert torch.allclose(fresh.precision, prior.precision, rtol=1e-6, atol=1e-8)


def test_engine_pairs_mirror_each_other(engine, prior):
    """Every l-/r- pair moves the head by the same amount (mirrored targets): tying them is sound."""
    assert len(prior.pairs) >= 20
    S0 = len(engine.head.phenotype_labels)
    size = engine.head.plus.norm(dim=-1).amax(-1)
    for left, right in prior.pairs:
        a, b = float(size[left - S0]), float(size[right - S0])
        assert abs(a - b) <= 0.05 * max(a, b) + 1e-6, engine.spec.continuous_names[left]


def _extreme_face(engine, seed=0):
    """Every slider at 0 or 1 (pairs to opposite extremes), phenotypes at the mean: an implausible face."""
    g = torch.Generator().manual_seed(seed)
    spec = engine.spec
    x = spec.defaults().continuous_vector(spec, engine.device)
    P = len(engine.head.phenotype_labels)
    x[P:] = (torch.rand(len(x) - P, generator=g) > 0.5).float().to(x.device)
    return x


def test_constrain_ties_pairs_the_data_cannot_tell_apart_and_keeps_what_it_sees(prior):
    N = prior.mean.shape[0]
    left, right = prior.pairs[0]
    x = prior.mean.clone()[None]
    x[0, left], x[0, right] = 0.9, 0.1
    blind = prior.constrain(x, torch.zeros(N, N))
    assert abs(float(blind[0, left] - blind[0, right])) < 0.05
    seen = torch.zeros(N, N)  # the data term sees the pair's difference clearly
    seen[left, left] = seen[right, right] = 10.0
    kept = prior.constrain(x, seen)
    assert float(kept[0, left] - kept[0, right]) > 0.6


def test_constrain_with_the_mesh_term_is_not_chaotic(engine, prior):
    """Far-off heads whose projection fails the mesh check run its mesh pass; a 1e-7 change of the input
    (the float rounding of another identity network, say) must not move the result. With full Newton steps
    (the mesh term has no curvature in the step's matrix) 6 of 8 such heads moved sliders by up to 1.0, and
    photos' one-shot fits with them (5 of 61 faces-identity photos)."""
    from face2param.methods.face_prior import landmark_hessian

    H = landmark_hessian(engine)
    generator = torch.Generator().manual_seed(0)
    N = prior.mean.shape[0]
    moved, mesh_passes = [], 0
    for _ in range(8):
        x = (prior.mean + 0.5 * torch.randn(N, generator=generator)).clamp(0, 1)[None]
        mesh_passes += not all(check.ok for check in prior.mesh(prior._constrain(x, x, H, mesh=False)))
        nudged = x + 1e-7 * torch.randn(1, N, generator=generator)
        moved.append(float((prior.constrain(x, H) - prior.constrain(nudged, H)).abs().max()))
    assert mesh_passes >= 5  # the heads do exercise the mesh pass
    assert max(moved) < 1e-3, moved


def test_the_projection_stops_once_converged_with_the_fit_it_would_reach(engine, prior):
    """The projection stops when a step moves no slider more than `constrain_tolerance` (the plain pass
    converges in 2-3 Newton steps; a rejected damped step would be rejected again from the same point):
    fewer objective evaluations, and the fits of all `constrain_iterations` steps to within 1e-4."""
    from face2param.methods.face_prior import FacePrior, landmark_hessian

    H = landmark_hessian(engine)
    generator = torch.Generator().manual_seed(1)
    N = prior.mean.shape[0]
    every_step = FacePrior.__new__(FacePrior)
    every_step.__dict__.update(prior.__dict__)
    every_step.config = dataclasses.replace(prior.config, constrain_tolerance=0.0)
    calls = {"stopping": 0, "every step": 0}
    for name, projection in (("stopping", prior), ("every step", every_step)):
        original = projection.penalty

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        projection.penalty = counted
    try:
        for _ in range(6):  # far-off heads: most of them run the mesh pass too
            x = (prior.mean + 0.5 * torch.randn(N, generator=generator)).clamp(0, 1)[None]
            difference = (prior.constrain(x, H) - every_step.constrain(x, H)).abs().max()
            assert float(difference) < 1e-4
    finally:
        del prior.penalty, every_step.penalty
    assert calls["stopping"] < 0.7 * calls["every step"], calls


def test_a_mesh_check_of_the_same_fit_is_measured_once(engine, prior):
    """The one-shot fit checks its projection and the back-off checks the same fit again: the second
    check is the first's result, not a second pair of rasterisations."""
    check = prior.mesh
    x = _extreme_face(engine, seed=3)[None] * 0.3 + prior.mean * 0.7
    vertices = engine.head.vertices
    counted = []
    engine.head.vertices = lambda *args: counted.append(1) or vertices(*args)
    try:
        first = check(x)
        again = check(x.clone())
        other = check(x + 0.01)
    finally:
        del engine.head.vertices
    assert [c.to_json() for c in first] == [c.to_json() for c in again]
    assert len(counted) == 2  # the head of x once, of x + 0.01 once
    assert other[0].max_edge_ratio != first[0].max_edge_ratio


def test_landmarks_reuse_one_vertex_set_per_scheme(engine):
    """The vertices under the landmarks are one tensor per scheme, so the head's subset of them is built
    once, not on every evaluation (~1.7 ms each)."""
    spec = engine.spec
    x = spec.defaults().continuous_vector(spec, engine.device)[None]
    first = engine.uncalibrated_landmarks_tensor(x)
    subsets = dict(engine.head.__dict__.get("_subsets", {}))
    second = engine.uncalibrated_landmarks_tensor(x + 0.01)
    assert engine.head.__dict__["_subsets"].keys() == subsets.keys()
    assert not torch.equal(first, second)


def test_search_on_an_adversarial_target_pins_no_slider_and_passes_the_mesh_check(engine, config, prior):
    """The landmarks of a face with every slider at a bound: without the prior the fit follows them to
    the bounds and breaks the mesh; with it, at most 10 % of the sliders end at a bound."""
    model = EngineFaceModel(engine, 256)
    truth = _extreme_face(engine)[None]
    with torch.no_grad():
        target = BatchTarget({s: p for s, p in model.landmarks(truth).items()}, {})
    start = prior.mean[None].clone()
    # the control on the paper's schedule (fixed full steps): the default line search within the [0, 1] box
    # alone pins fewer here (0.07), which would say nothing about the prior
    paper = dataclasses.replace(config.iterative, line_search=False, stop_tolerance=0.0, colour_probe=False)
    free = search(model, target, paper, start)
    held = search(model, target, config.iterative, start, prior=prior)
    # the adversary works without the prior: it breaks the 10 % rule (measured 0.18 on this session's
    # install, 0.2+ on the previous one: the control is the rule itself, not a margin over it)
    assert float(prior.at_bound(free.continuous)[0]) > 0.10
    assert float(prior.at_bound(held.continuous)[0]) <= 0.10
    x, report = prior.check_and_back_off(held.continuous, prior.mean)
    assert report[0]["mesh"]["ok"] and report[0]["at_bound_fraction"] <= 0.10
    assert report[0]["max_pair_difference"] < float(prior.pair_difference(free.continuous)[0])


def test_mesh_check_catches_an_inverted_triangle_and_a_stretched_edge(engine, prior):
    head = engine.head
    check = prior.mesh
    assert check(prior.mean[None])[0].ok
    # one vertex of a well-shaped triangle mirrored across its opposite edge: that triangle flips
    v = head.neutral
    f = head.faces[check.valid.nonzero()[len(check.valid.nonzero()) // 2, 0]]
    a, b, c = v[f[0]], v[f[1]], v[f[2]]
    foot = b + ((a - b) @ (c - b)) / ((c - b) @ (c - b)) * (c - b)
    moved = v.clone()
    moved[f[0]] = 2 * foot - a
    flipped = HeadMeshCheck(dataclasses.replace(head, neutral=moved), prior.mean, 2.5)
    flipped.normal, flipped.valid, flipped.reference = check.normal, check.valid, check.reference
    inverted, _, _ = flipped.measure(prior.mean[None])
    assert int(inverted[0]) >= 1
    # every slider at a bound stretches and folds the head; backing off finds a face that passes
    x = _extreme_face(engine)[None]
    bad = check(x)[0]
    assert not bad.ok and bad.max_edge_ratio > 2.5
    fixed, checks = check.back_off(x, prior.mean, steps=8)
    assert checks[0].ok and 0 < checks[0].backoff < 1 and checks[0].found


# 8 sliders of a real identity-weighted fit (faces-identity img5, identity_weight 0.05): the nose moved out
# and the mouth pushed back under it, so the dark mouth cavity showed through the philtrum as a spot
# beside the nostril; no triangle flipped and no edge passed 2.5x
MOUTH_THROUGH_PHILTRUM = {"nose-trans-out": 0.97, "mouth-trans-forward": 0.067, "mouth-scale-horiz-incr": 0.82,
                          "nose-width3-incr": 0.188, "nose-nostrils-width-incr": 0.23, "mouth-scale-vert-incr": 0.246,
                          "nose-trans-up": 0.247, "nose-trans-forward": 0.247}


def test_mesh_check_sees_the_mouth_interior_through_the_skin_and_backs_it_off(engine, prior):
    names = engine.spec.continuous_names
    x = prior.mean.clone()
    for name, value in MOUTH_THROUGH_PHILTRUM.items():
        x[names.index(name)] = value
    assert prior.mesh(prior.mean[None])[0].interior_pixels == 0
    bad = prior.mesh(x[None])[0]
    assert not bad.ok and bad.inverted == 0 and bad.max_edge_ratio < 2.5
    assert bad.interior_pixels >= 20 and "interior" in bad.describe()
    responsible = prior.mesh.responsible(x)
    assert responsible[names.index("mouth-trans-forward")]
    fixed, checks = prior.mesh.back_off(x[None], prior.mean, steps=8)
    assert checks[0].ok and checks[0].interior_pixels <= prior.config.max_interior_pixels and 0 < checks[0].backoff < 1
    assert checks[0].to_json()["found"].endswith(f"on {bad.interior_pixels} pixels")


def test_back_off_moves_only_the_sliders_that_break_the_mesh(engine, prior):
    """An ear slider at its extreme stretches ear edges past the limit (Anny's own range does); backing off
    moves that slider and its neighbours only: a nose change elsewhere in the fit is kept as found."""
    names = engine.spec.continuous_names
    ear, nose = names.index("l-ear-shape-triangle"), names.index("nose-scale-horiz-incr")
    x = prior.mean.clone()
    x[ear], x[nose] = 1.0, float(prior.mean[nose]) + 0.2
    assert not prior.mesh(x[None])[0].ok
    responsible = prior.mesh.responsible(x)
    assert responsible[ear] and not responsible[nose]
    fixed, checks = prior.mesh.back_off(x[None], prior.mean, steps=8)
    assert checks[0].ok and 0 < checks[0].backoff < 1 and checks[0].sliders < len(names) // 4
    assert float(fixed[0, nose]) == pytest.approx(float(x[nose]))
    assert float(fixed[0, ear]) < 1.0
    moved = (fixed[0] != x).nonzero()[:, 0].tolist()
    assert all(responsible[i] for i in moved)


def test_search_with_the_prior_does_not_diverge_and_its_mesh_term_is_zero_on_the_mean(engine, config, prior):
    """The barrier switches on between preconditioner refreshes; its curvature must join every step, else
    the step overshoots (measured: total loss 0.016 -> 1.5 after 5 iterations, NME 0.033 -> 0.148 on real
    photos: worse than the start). On the adversarial target the landmark loss ends far below the start, and
    the mesh term is 0 at the mean head."""
    assert float(prior.mesh.penalty(prior.mean[None])[0]) == 0.0
    model = EngineFaceModel(engine, 256)
    with torch.no_grad():
        target = BatchTarget({s: p for s, p in model.landmarks(_extreme_face(engine, seed=2)[None]).items()}, {})
    held = search(model, target, config.iterative, prior.mean[None].clone(), prior=prior)
    total, landmarks = held.history["total"], held.history["landmarks"]
    # the total carries the barrier, which flicks on and off between iterations (last 10 here: 0.009-0.11), so
    # its last value depends on floating-point detail (0.008 here, 0.027 on the CI machine): judge the level
    # it settles at; the landmark term descends smoothly
    settled = sorted(total[-10:])[5]
    assert settled < 0.25 * total[0] and landmarks[-1] < 0.2 * landmarks[0]


def test_oneshot_output_goes_through_the_prior(engine, config):
    """T's output is constrained and checked like an iterative fit (losses['face_prior'])."""
    import numpy as np

    from face2param.methods.oneshot import fit_oneshot
    from face2param.methods.target import FitTarget

    model = EngineFaceModel(engine, 256)
    with torch.no_grad():
        pts = model.landmarks(_extreme_face(engine, seed=1)[None])
    target = FitTarget(landmarks_68=pts["ibug68"][0].cpu().numpy().astype(np.float64),
                       landmarks_478=pts["mediapipe478"][0].cpu().numpy().astype(np.float64))
    params, losses, _ = fit_oneshot(target, engine, config, engine.device)
    report = losses["face_prior"]
    assert report["mesh"]["ok"] and report["at_bound_fraction"] <= 0.10
    # attributes the photo fixed (held sliders) are in place before the mesh check, and stay where held
    gender = engine.spec.continuous_names[0]
    held = dataclasses.replace(target, fixed_continuous={gender: 1.0})
    params, losses, _ = fit_oneshot(held, engine, config, engine.device)
    assert params.continuous[gender] == pytest.approx(1.0, abs=1e-3)
    assert losses["face_prior"]["mesh"]["ok"] and plausibility(engine, params)["mesh"]["ok"]


def test_an_engine_memo_dies_with_its_engine_and_a_new_engine_at_its_address_starts_empty():
    """Caches worked out from an engine live on it: a module dict keyed by id(engine) handed a collected
    engine's landmark matrix to the next engine Python put at the same address."""
    import gc

    class Engine:
        pass

    old = Engine()
    engine_memo(old, "landmark_hessian")["mean face"] = "the old engine's matrix"
    address = id(old)
    del old
    gc.collect()
    new = next((e for e in (Engine() for _ in range(10000)) if id(e) == address), Engine())
    assert engine_memo(new, "landmark_hessian") == {}


@pytest.mark.parametrize("key, value", [("face_prior.constrain_tolerance", -1), ("face_prior.constrain_tolerance", "x"),
                                        ("face_prior.constrain_halvings", -2)])
def test_bad_projection_settings_are_refused_by_name(key, value):
    """The projection's stopping and damping knobs are checked where a config is built (CLI, API, worker):
    one error naming the key, before any photo is read."""
    from avatar_studio.pipelines.photo import load_photo_config
    from avatarclip_core.config.core import ConfigError

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_photo_config("preview", {key: value})
