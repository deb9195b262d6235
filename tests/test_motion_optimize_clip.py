"""The CLIP schedule of the motion-latent optimisation (optimize.py: clip_every, clip_hold) and the presets
that use it. Random-weight CLIP (tiny_test_scorer): the checks are about the optimiser lowering its own
CLIP loss, not about what the scores mean."""
from __future__ import annotations

import pytest
import torch

from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.generate import PACKAGED_DIR, load_motion_artifacts
from avatarclip_core.motion.optimize import clip_eval_loss, optimize_latent
from avatarclip_core.motion.pose_codebook import PosedBody

TEXT = "a person raises both arms"


@pytest.fixture(scope="module")
def setup(anny_body):
    from avatarclip_core.clip import tiny_test_scorer

    art = load_motion_artifacts(PACKAGED_DIR / "preview")
    return art, tiny_test_scorer(), PosedBody(anny_body)


def _run(setup, **overrides):
    art, scorer, posed = setup
    values = dict(iterations=30, clip_frames=2, clip_azimuths=[0.0], pose_weight=0.0, delta_weight=0.0,
                  anchor_weight=0.0)
    config = MotionGenConfig(**{**values, **overrides})
    z0 = torch.zeros(art.motion_vae.latent_dim)
    result = optimize_latent(art.motion_vae, art.codebook.poses[:3], config, z0, scorer=scorer, text=TEXT, posed=posed)
    return result, clip_eval_loss(scorer, posed, result.rotations, result.root_translation, TEXT, [0.0])


def test_clip_runs_every_kth_step_and_on_the_final_pass(setup):
    before = torch.get_num_threads()
    result, _ = _run(setup, iterations=12, clip_every=5, clip_hold=True, threads=1)
    assert torch.get_num_threads() == before  # motion_gen.threads applies inside the optimisation only
    clip = result.losses["clip"]
    assert len(clip) == 13
    # steps 0, 5, 10 and the final pass (12) evaluate L_clip (1 - cos > 0); the others record none
    assert [i for i, c in enumerate(clip) if c != 0.0] == [0, 5, 10, 12]
    assert all(c > 0 for c in (clip[0], clip[5], clip[10], clip[12]))


def test_clip_term_lowers_the_clip_loss_and_the_held_gradient_keeps_pushing(setup, one_torch_thread):
    art, scorer, posed = setup
    with torch.no_grad():
        rot, root = art.motion_vae.decode_motion(torch.zeros(1, art.motion_vae.latent_dim))
    start = clip_eval_loss(scorer, posed, rot[0], root[0], TEXT, [0.0])
    # 60 steps at lr 0.01: with the preview set retrained on 92 generators, 30 at the default 0.03 overshoot
    # the tiny scorer's landscape (effects ~1e-3): start 0.49457 -> sparse 0.49399, held 0.49450
    _, none = _run(setup, clip_weight=0.0, lr=0.01, iterations=60)
    _, sparse = _run(setup, clip_every=5, clip_hold=False, lr=0.01, iterations=60)
    held_result, held = _run(setup, clip_every=5, clip_hold=True, lr=0.01, iterations=60)
    assert none == pytest.approx(start, abs=1e-6)  # no term moves the latent from 0 here
    assert sparse < start and held < start - 5e-4  # measured (tiny scorer): 0.49457 -> 0.49435 sparse, 0.49375 held
    # between CLIP steps the held gradient keeps moving the latent along L_clip: it gets further
    assert held < sparse
    assert torch.isfinite(held_result.rotations).all()


def test_presets_keep_the_paper_schedule_except_preview():
    from avatar_studio.pipelines.text import load_text_config

    preview = load_text_config("preview").motion_gen
    assert preview.clip_every > 1 and preview.clip_hold and preview.threads == 1
    for preset in ("standard", "paper"):
        gen = load_text_config(preset).motion_gen
        assert gen.clip_every == 1 and not gen.clip_hold, preset
    again = load_text_config("preview", {"motion_gen.clip_every": "1", "motion_gen.clip_hold": "false"}).motion_gen
    assert again.clip_every == 1 and not again.clip_hold


def test_bench_checkpoint_loads_as_a_user_checkpoint(tmp_path):
    """`avatar bench`'s random-weight CLIP file goes through clip.checkpoint like a user's weights file."""
    from avatar_studio.bench_motion_clip import write_random_checkpoint
    from avatarclip_core.clip import ClipConfig, load_scorer
    from avatarclip_core.clip.scorer import TINY_TEST_MODEL, random_weights_scorer

    path = write_random_checkpoint(tmp_path / "tiny.pt", model=TINY_TEST_MODEL, seed=3)
    loaded = load_scorer(ClipConfig(model=TINY_TEST_MODEL, checkpoint=str(path), device="cpu"))
    same = random_weights_scorer(TINY_TEST_MODEL, seed=3)
    other = random_weights_scorer(TINY_TEST_MODEL, seed=4)
    assert loaded.real and TINY_TEST_MODEL in loaded.name
    texts = ["a person jumps", "a person waves"]
    a, b, c = (s.encode_text(texts) for s in (loaded, same, other))
    assert torch.allclose(a, b, atol=2e-2)  # the same weights, stored in half precision
    assert not torch.allclose(a, c, atol=2e-2)


def test_the_bench_cold_run_cache_links_the_users_caches_but_the_codebook_features(tmp_path, monkeypatch):
    from avatar_studio.bench_motion_clip import cache_without_motion_features

    user = tmp_path / "user"
    for name in ("anny", "warp", "motion_clip"):
        (user / name).mkdir(parents=True)
        (user / name / "x").write_text(name)
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(user))
    cold = cache_without_motion_features(tmp_path / "cold")
    assert sorted(p.name for p in cold.iterdir()) == ["anny", "warp"]
    assert (cold / "anny" / "x").read_text() == "anny" and (cold / "anny").is_symlink()
