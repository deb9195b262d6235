"""Shape VAE, code-book and text -> shape queries (offline), on the packaged preview artifacts
plus small seeded training runs."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from avatarclip_core.errors import UserInputError
from avatarclip_core.shape import (
    PACKAGED_DIR,
    CodebookConfig,
    ShapeArtifactsMissingError,
    ShapeConfig,
    ShapeQuery,
    ShapeVAEConfig,
    default_space,
    describe,
    load_artifacts,
    train_shape_artifacts,
)
from avatarclip_core.shape.train import held_out_samples
from avatarclip_core.shape.vae import evaluate

NEUTRAL = {"gender": 0.5, "age": 0.67, "muscle": 0.5, "weight": 0.5, "height": 0.5}


@pytest.fixture(scope="module", autouse=True)
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        try:
            from huggingface_hub import constants

            mp.setattr(constants, "HF_HUB_OFFLINE", True)
        except ImportError:
            pass
        yield


@pytest.fixture(scope="module")
def preview():
    return load_artifacts(PACKAGED_DIR / "preview")


@pytest.fixture(scope="module")
def text_encoder():
    from avatarclip_core.clip import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="module")
def query(preview, text_encoder, anny_body):
    return ShapeQuery(preview, text_encoder=text_encoder, body=anny_body)


# --- shape space --------------------------------------------------------------------------------


def test_space_sliders_exist_on_the_body_and_round_trip(anny_body):
    space = default_space()
    space.check_body(anny_body)
    x = space.sample(5, np.random.default_rng(0))
    for row in x:
        sliders = space.to_sliders(row)
        assert sliders["l-upperleg-fat-incr"] == sliders["r-upperleg-fat-incr"]  # tied pair
        anny_body.shape_vector(sliders)  # names and ranges accepted
        assert np.allclose(space.from_sliders(sliders), row, atol=1e-4)
    assert space.to_sliders(space.neutral)["age"] == pytest.approx(0.67)


def test_training_distribution_covers_what_the_brief_asks():
    x = default_space().sample(20000, np.random.default_rng(1))
    gender, age, muscle, weight, height = (x[:, i] for i in range(5))
    assert (gender < 0.2).mean() > 0.35 and (gender > 0.8).mean() > 0.35
    adults = (age >= 0.6) & (age <= 0.9)
    assert adults.mean() > 0.6
    for v in (muscle, weight, height):
        assert v.min() < 0.02 and v.max() > 0.98


def test_check_body_rejects_a_body_without_the_sliders():
    class Fake:
        name = "smpl"

        def sliders(self):
            return []

    with pytest.raises(UserInputError, match="Anny"):
        default_space().check_body(Fake())


# --- VAE and code-book --------------------------------------------------------------------------


def test_packaged_vae_reconstructs_held_out_bodies(preview):
    space = preview.space
    data = held_out_samples(space, 2000, seed=123)  # a stream training never saw
    rmse, rmse_pheno, _ = evaluate(preview.vae, data, space.num_phenotypes)
    assert rmse_pheno < 0.04, rmse_pheno  # slider units; phenotypes span [0, 1]
    assert rmse < 0.05, rmse  # all 37 coordinates (local changes span [-1, 1])
    assert preview.vae.latent_dim == 16


def test_packaged_codebook_entries_are_valid(preview, anny_body):
    space = preview.space
    assert preview.size == 256
    assert preview.entries.shape == (256, space.dim)
    assert (preview.entries >= space.lo - 1e-6).all() and (preview.entries <= space.hi + 1e-6).all()
    assert len({tuple(np.round(e, 4)) for e in preview.entries}) == 256  # no duplicates
    specs = {s.name: s for s in anny_body.sliders()}
    for i in range(preview.size):
        sliders = preview.sliders(i)
        for name, value in sliders.items():
            assert specs[name].minimum <= value <= specs[name].maximum
    anny_body.shape_vector(preview.sliders(0))
    pheno = preview.entries[:, [0, 2, 3, 4]]  # gender, muscle, weight, height
    assert pheno.min(0).max() < 0.2 and pheno.max(0).min() > 0.8  # spread over every phenotype
    age = preview.entries[:, 1]
    assert age.min() >= 0.45 and age.min() < 0.55 and age.max() > 0.9  # teenagers to elderly
    assert len(preview.descriptions) == 256 and all(len(d) >= 3 for d in preview.descriptions)


def test_train_shape_artifacts_is_seeded_and_round_trips(tmp_path, text_encoder):
    config = ShapeConfig(name="tiny", seed=3, vae=ShapeVAEConfig(train_samples=1500, held_out=300, epochs=3),
                         codebook=CodebookConfig(samples=400, size=12, kmeans_iters=10))
    stages = []
    a = load_artifacts(train_shape_artifacts(config, tmp_path / "a", text_encoder=text_encoder,
                                             progress=lambda stage, fraction, message="": stages.append(fraction)))
    b = load_artifacts(train_shape_artifacts(config, tmp_path / "b", text_encoder=text_encoder))
    assert stages[-1] == pytest.approx(1.0)
    assert a.size == 12 and np.array_equal(a.entries, b.entries)
    assert a.descriptions == b.descriptions
    assert a.desc_emb.shape == (12, 384)
    for key, value in a.vae.state_dict().items():
        assert torch.equal(value, b.vae.state_dict()[key]), key
    assert (a.entries >= a.space.lo).all() and (a.entries <= a.space.hi).all()
    # rewriting the folder replaces it atomically
    train_shape_artifacts(config, tmp_path / "a", text_encoder=text_encoder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    other = dataclasses.replace(config, seed=4)
    c = load_artifacts(train_shape_artifacts(other, tmp_path / "c", text_encoder=text_encoder))
    assert not np.array_equal(a.entries, c.entries)


def test_missing_artifacts_say_how_to_build_them(tmp_path):
    with pytest.raises(ShapeArtifactsMissingError, match="avatar train shape"):
        load_artifacts(tmp_path)
    from avatarclip_core.shape import resolve_artifacts_dir

    with pytest.raises(ShapeArtifactsMissingError, match="no-such-set"):
        resolve_artifacts_dir("", "no-such-set")


# --- descriptions and queries -------------------------------------------------------------------


def test_descriptions_say_what_differs_from_the_neutral_body():
    space = default_space()
    assert describe(space, space.neutral)[0] == "a person"
    x = space.from_sliders({"gender": 0.05, "age": 0.95, "height": 0.9, "weight": 0.8, "muscle": 0.5})
    words = " ".join(describe(space, x))
    assert "very tall" in words and "heavy" in words and "old man" in words and "muscular" not in words
    y = space.from_sliders({"gender": 0.95, "age": 0.7, "height": 0.1, "weight": 0.1, "muscle": 0.9})
    assert describe(space, y)[0] == "a very short, very thin, very muscular woman"


def _top(query, text, method="text"):
    (match,) = query.matches(text, k=1, method=method)
    assert match.method == "text"
    return match.sliders


def test_text_query_tall(query):
    s = _top(query, "a very tall person")
    assert s["height"] > NEUTRAL["height"] + 0.15


def test_text_query_heavy(query):
    for text in ("a very heavy person", "a fat person"):
        s = _top(query, text)
        assert s["weight"] > NEUTRAL["weight"] + 0.15, text


def test_text_query_old_man(query):
    s = _top(query, "an old man")
    assert s["age"] > NEUTRAL["age"] + 0.1
    assert s["gender"] < 0.5


def test_text_query_muscular_woman(query):
    s = _top(query, "a muscular woman")
    assert s["gender"] > 0.5
    assert s["muscle"] > NEUTRAL["muscle"] + 0.15


def test_text_query_short_thin(query):
    s = _top(query, "a short thin person")
    assert s["height"] < NEUTRAL["height"] - 0.1
    assert s["weight"] < NEUTRAL["weight"] - 0.1


def test_query_returns_k_distinct_bodies_best_first(query):
    matches = query.matches("a tall thin woman", k=5)
    assert len(matches) == 5
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert len({m.index for m in matches}) == 5
    dicts = query.query_shape("a tall thin woman", k=5)
    assert dicts == [m.sliders for m in matches]
    assert set(dicts[0]) >= {"gender", "age", "muscle", "weight", "height", "proportions", "l-upperarm-fat-incr"}


def test_query_input_errors(query):
    with pytest.raises(UserInputError, match="empty"):
        query.query_shape("   ")
    with pytest.raises(UserInputError, match="method"):
        query.query_shape("a tall man", method="magic")
    with pytest.raises(UserInputError, match="k must"):
        query.query_shape("a tall man", k=0)


def test_neutral_text_gives_the_body_nearest_neutral(query, preview):
    s = query.query_shape("a person")[0]
    x = preview.space.from_sliders(s)
    w = np.asarray(preview.meta["clustering_weights"])
    dists = np.linalg.norm((preview.entries - preview.space.neutral) * w, axis=1)
    assert np.linalg.norm((x - preview.space.neutral) * w) == pytest.approx(dists.min(), abs=1e-3)


def test_auto_never_uses_the_test_clip(query):
    from avatarclip_core.clip import tiny_test_scorer

    assert query.resolve_method("auto", tiny_test_scorer()) == "text"
    assert query.resolve_method("auto", None) == "text"
    assert query.matches("a tall man", method="auto", scorer=tiny_test_scorer())[0].method == "text"


def test_clip_method_without_weights_is_a_clear_error(preview, text_encoder, anny_body, tmp_path, monkeypatch):
    from avatarclip_core.clip import ClipUnavailableError

    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path))
    q = ShapeQuery(preview, text_encoder=text_encoder, body=anny_body)
    with pytest.raises(ClipUnavailableError, match="offline"):
        q.query_shape("a tall man", method="clip")


def test_clip_query_with_the_tiny_clip_renders_and_caches(preview, anny_body, tmp_path, monkeypatch):
    """Mechanics only (random weights): renders, Eq. 4 scores, on-disk feature cache."""
    from avatarclip_core.clip import tiny_test_scorer
    from avatarclip_core.shape import query as query_module

    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path / "user"))
    n = 12
    small = dataclasses.replace(preview, entries=preview.entries[:n], latents=preview.latents[:n],
                                counts=preview.counts[:n], descriptions=preview.descriptions[:n],
                                desc_emb=preview.desc_emb[:n], _fingerprint="")
    scorer = tiny_test_scorer()
    q = ShapeQuery(small, body=anny_body)
    matches = q.matches("a very tall man", k=3, method="clip", scorer=scorer)
    assert [m.method for m in matches] == ["clip"] * 3
    assert all(-1.0 <= m.score <= 1.0 for m in matches)
    feats, neutral = q.clip_features(scorer)
    assert feats.shape == (n, 64) and neutral.shape == (64,)
    assert not torch.allclose(feats[0], feats[1])  # different bodies, different renders
    cached = list((tmp_path / "user" / "shape_clip").glob("*.npz"))  # one per user, not per data folder
    assert len(cached) == 1 and small.fingerprint in cached[0].name
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "another-data-folder"))

    def no_render(*args, **kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(query_module, "render_bodies", no_render)
    again = ShapeQuery(small, body=anny_body).matches("a very tall man", k=3, method="clip", scorer=scorer)
    assert [m.index for m in again] == [m.index for m in matches]


def test_render_bodies_keeps_height_visible(anny_body):
    from avatarclip_core.shape import render_bodies

    space = default_space()
    short = space.to_sliders(space.from_sliders({"height": 0.1}))
    tall = space.to_sliders(space.from_sliders({"height": 0.9}))
    (images,) = list(render_bodies(anny_body, [short, tall], size=96))
    assert images.shape == (2, 96, 96, 3)
    rows = [(img.min(-1).values < 0.95).any(-1).nonzero() for img in images]
    extent = [int(r.max() - r.min()) for r in rows]
    assert extent[1] > extent[0] * 1.3  # fixed camera: the tall body covers more rows
