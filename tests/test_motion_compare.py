"""motion/compare.py: artifact sets measured on the same held-out clips and prompts (the README's
procedural vs procedural + Bandai table); here the packaged set, a tiny corpus, few iterations."""
from __future__ import annotations

import json
import shutil

from avatarclip_core.motion.compare import PROMPT_CHECKS, _Body, compare, held_out_external_clips
from avatarclip_core.motion.corpus import make_clip
from avatarclip_core.motion.generate import PACKAGED_DIR


def test_prompt_checks_pass_on_the_generators_they_name(anny_mesh):
    skeleton = anny_mesh.skeleton
    for prompt, generator in (("walk forward", "walk"), ("raise both arms", "raise_both_arms"), ("wave", "wave"),
                              ("bow", "bow"), ("kick", "kick"), ("punch", "punch"), ("squat", "squat"),
                              ("jump", "jump")):
        ok, detail = PROMPT_CHECKS[prompt](_Body(make_clip(generator, skeleton, seed=987).motion, skeleton))
        assert ok, (prompt, detail)
    ok, _ = PROMPT_CHECKS["raise both arms"](_Body(make_clip("squat", skeleton, seed=0).motion, skeleton))
    assert not ok


def test_compare_measures_each_set_on_the_same_clips_and_prompts(tmp_path, anny_mesh, one_torch_thread):
    packaged = tmp_path / "packaged"
    shutil.copytree(PACKAGED_DIR / "preview", packaged)
    assert held_out_external_clips(packaged, anny_mesh.skeleton) == ([], "")  # trained without a corpus
    result = compare([packaged], ["walk forward", "shrug"], skeleton=anny_mesh.skeleton, iterations=2)
    held = result["held_out"]["packaged"]["procedural_fresh"]
    assert held["clips"] > 50 and 0 < held["pose_vae_deg"] < 10 and 0 < held["motion_vae_deg"] < 10
    walk, shrug = result["prompts"]["packaged"]["walk forward"], result["prompts"]["packaged"]["shrug"]
    assert walk["match"] == "walk" and walk["init"].startswith("label:") and walk["check"] in (True, False)
    assert shrug["check"] is None and shrug["foot_skating_m_s"] >= 0
    json.dumps(result)  # what --output writes


def test_held_out_external_clips_are_the_ones_a_joined_set_kept_out(tmp_path, anny_mesh):
    from test_motion_bandai import write_bandai_bvh

    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(4):
        write_bandai_bvh(folder / f"walk_{k}.bvh", T=21, travel_cm=40.0 * (k + 1))
    art = tmp_path / "joined"
    art.mkdir()
    (art / "meta.json").write_text(json.dumps({
        "config": {"corpus": str(folder), "corpus_mode": "join", "corpus_fps": 30.0},
        "report": {"clip_sources": {"procedural": 3, "external": 4}, "held_out_clip_ids": [1, 4, 6]}}))
    clips, corpus = held_out_external_clips(art, anny_mesh.skeleton)  # library 4 and 6: files 1 and 3
    assert corpus == str(folder) and [c.variation["source"] for c in clips] == ["walk_1.bvh", "walk_3.bvh"]
