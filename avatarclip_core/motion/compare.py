"""Compare motion artifact sets on the same held-out clips and the same prompts
(``python -m avatarclip_core.motion.compare SET [SET ...] [--corpus PATH] [--prompts ...]``).

Every set is measured on the same data, whatever it was trained on:

- reconstruction (pose VAE: every 6th frame; motion VAE: up to 4 consecutive windows per clip) of
  fresh procedural clips (one per generator, seed 987: no set trained on these variations) and, with
  ``--corpus``, of the external corpus's clips that a set trained with it held out (its metrics.json
  ``held_out_clip_ids``; the corpus is loaded as that training loaded it), so a set trained without
  the corpus is measured on clips no set saw either;
- per prompt, offline text to motion (the sentence-encoder query; deterministic, so one run per
  prompt): the closest known motion and its score (matching.py), the clip the latent starts from,
  a check of what the prompt asks for (``PROMPT_CHECKS``, the rules of tests/test_motion_generate.py),
  foot skating (m/s of the planted foot) and joint-limit violations.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import torch

from avatarclip_core.motion.canonical import (ROLE_INDEX, CanonicalMotion, canonical_joint_positions, foot_clearance,
                                              role_joint_indices)

FRESH_SEED = 987  # tests/test_motion_models.py's fresh clips: another seed than any training's
WINDOWS_PER_CLIP = 4


class _Body:
    """Joint positions (T, 20, 3) of a canonical motion on the skeleton, by role name (Y up, +Z ahead)."""

    def __init__(self, canonical: CanonicalMotion, skeleton) -> None:
        self.motion, self.skeleton = canonical, skeleton
        self.p = canonical_joint_positions(canonical, skeleton)

    def y(self, role: str) -> torch.Tensor:
        return self.p[:, ROLE_INDEX[role], 1]


def _rest_height(body: _Body, role: str) -> float:
    """Height of a role's joint in the skeleton's rest (standing) pose."""
    return float(body.skeleton.rest_positions[role_joint_indices(body.skeleton)[ROLE_INDEX[role]], 1])


def _travel(body: _Body) -> torch.Tensor:
    return body.motion.root_translation[-1] - body.motion.root_translation[0]


def _walks_forward(body: _Body) -> tuple[bool, str]:
    from avatarclip_core.motion.corpus.feet import foot_skating

    t = _travel(body)
    skating = foot_skating(body.motion, body.skeleton)
    ok = float(t[2]) > 0.4 and abs(float(t[0])) < 0.5 * float(t[2]) and skating < 0.15
    return ok, f"travel +Z {float(t[2]):.2f} m, X {float(t[0]):.2f} m"


def _both_arms_up(body: _Body) -> tuple[bool, str]:
    head = body.y("head")
    up = float(((body.y("left_wrist") > head) & (body.y("right_wrist") > head)).float().mean())
    return up > 0.25, f"both wrists above the head {up:.0%} of frames"


def _waves(body: _Body) -> tuple[bool, str]:
    """A hand above its shoulder for a quarter of the clip, moving side to side there by 8 cm or more."""
    best = (0.0, 0.0)
    for side in ("left", "right"):
        up = body.y(f"{side}_wrist") > body.y(f"{side}_shoulder")
        x = body.p[:, ROLE_INDEX[f"{side}_wrist"], 0][up]
        sway = float(x.max() - x.min()) if x.numel() else 0.0
        best = max(best, (float(up.float().mean()), sway), key=lambda b: min(b[0] / 0.25, b[1] / 0.08))
    return best[0] >= 0.25 and best[1] >= 0.08, f"hand up {best[0]:.0%} of frames, side to side {best[1]:.2f} m"


def _bows(body: _Body) -> tuple[bool, str]:
    """The head 15 cm or more below its standing height, ahead of the pelvis (a bow, not a squat)."""
    head = body.p[:, ROLE_INDEX["head"]]
    t = int(head[:, 1].argmin())
    drop = _rest_height(body, "head") - float(head[t, 1])
    ahead = float(head[t, 2] - body.p[t, ROLE_INDEX["pelvis"], 2])
    return drop > 0.15 and ahead > 0.1, f"head down {drop:.2f} m, {ahead:.2f} m ahead of the pelvis"


def _kicks(body: _Body) -> tuple[bool, str]:
    lift = max(float(body.y(f"{s}_ankle").max()) for s in ("left", "right"))
    return lift > 0.35, f"highest ankle {lift:.2f} m"


def _punches(body: _Body) -> tuple[bool, str]:
    reach = max(float((body.p[:, ROLE_INDEX[f"{s}_wrist"], 2] - body.p[:, ROLE_INDEX["spine3"], 2]).max())
                for s in ("left", "right"))
    return reach > 0.4, f"wrist {reach:.2f} m ahead of the chest"


def _squats(body: _Body) -> tuple[bool, str]:
    drop = _rest_height(body, "pelvis") - float(body.y("pelvis").min())
    below = float(foot_clearance(body.motion, body.skeleton).amin(1).min())
    return drop > 0.2 and below > -0.02, f"pelvis down {drop:.2f} m"


def _jumps(body: _Body) -> tuple[bool, str]:
    air = float(foot_clearance(body.motion, body.skeleton).amin(1).max())
    return air > 0.08, f"both feet {air:.2f} m off the ground"


# prompt -> what its motion must do (a walk's style is not checked, only that it walks)
PROMPT_CHECKS: dict[str, Callable[[_Body], tuple[bool, str]]] = {
    "walk forward": _walks_forward, "walk angrily": _walks_forward, "raise both arms": _both_arms_up,
    "wave": _waves, "bow": _bows, "kick": _kicks, "punch": _punches, "squat": _squats, "jump": _jumps,
}


def fresh_procedural_clips(skeleton, generators: list[str] | None = None) -> list:
    from avatarclip_core.motion.corpus import generator_names, make_clip

    return [make_clip(name, skeleton, seed=FRESH_SEED) for name in (generators or generator_names())]


def held_out_external_clips(artifact_dir: Path, skeleton) -> tuple[list, str]:
    """The external corpus clips a set trained with one held out, and the corpus path ([] when none)."""
    from avatarclip_core.motion.corpus import load_corpus

    meta = json.loads((artifact_dir / "meta.json").read_text())
    config, report = meta["config"], meta["report"]
    if not config.get("corpus") or "held_out_clip_ids" not in report:
        return [], ""
    first = report.get("clip_sources", {}).get("procedural", 0)
    wanted = {i - first for i in report["held_out_clip_ids"] if i >= first}
    clips = load_corpus(Path(config["corpus"]).expanduser(), skeleton, fps=config.get("corpus_fps", 30.0))
    return [c for i, c in enumerate(clips) if i in wanted], config["corpus"]


def reconstruction(art, clips: list) -> dict:
    """Pose VAE and motion VAE reconstruction errors of ``clips`` through one artifact set."""
    from avatarclip_core.motion.motion_vae import crop, motion_reconstruction_error, resample, to_features
    from avatarclip_core.motion.pose_vae import pose_reconstruction_error

    with torch.no_grad():
        poses = torch.cat([c.motion.rotations[::6] for c in clips]).float()
        pose = pose_reconstruction_error(art.pose_model, poses)
        vae, windows = art.motion_vae, []
        for clip in clips:
            rot, root = resample(clip.motion.rotations.float(), clip.motion.root_translation.float(),
                                 clip.motion.fps, art.fps)
            starts = range(0, max(1, rot.shape[0] - vae.frames + 1), vae.frames)
            for s in list(starts)[:WINDOWS_PER_CLIP]:
                windows.append(to_features(*(x[None] for x in crop(rot, root, s, vae.frames)))[0])
        motion = motion_reconstruction_error(vae, torch.stack(windows))
    return {"clips": len(clips), "pose_vae_deg": pose["recon_deg_mean"], "pose_vae_deg_p95": pose["recon_deg_p95"],
            "motion_vae_deg": motion["recon_deg_mean"], "motion_vae_root_m": motion["root_error_m_mean"],
            "windows": motion["held_out_windows"]}


def prompt_results(artifact_dir: Path, skeleton, prompts: list[str], iterations: int | None = None) -> dict:
    from avatarclip_core.motion.canonical import to_canonical
    from avatarclip_core.motion.corpus.feet import foot_skating
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.generate import text_to_motion
    from avatarclip_core.motion.limits import check_limits

    out = {}
    for text in prompts:
        config = MotionGenConfig(artifacts_dir=str(artifact_dir), query_method="offline", seed=0)
        if iterations is not None:
            config.iterations = iterations
        motion, info = text_to_motion(text, skeleton, config)
        body = _Body(to_canonical(motion, skeleton), skeleton)
        check = PROMPT_CHECKS.get(text)
        ok, detail = check(body) if check else (None, "")
        best = info["matches"]["matches"][0]
        out[text] = {"check": ok, "detail": detail, "foot_skating_m_s": round(foot_skating(body.motion, skeleton), 3),
                     "limit_violations": len(check_limits(body.motion)), "match": best["generator"],
                     "match_label": best["label"], "match_score": best["score"], "init": info["init"]}
    return out


def compare(artifact_dirs: list[Path], prompts: list[str], corpus_from: Path | None = None, skeleton=None,
            iterations: int | None = None) -> dict:
    """{"held_out": {set name: {"procedural_fresh": ..., "external_held_out": ...}}, "prompts": {...}}."""
    from avatarclip_core.motion.generate import load_motion_artifacts

    if skeleton is None:
        from avatarclip_core.body import create_body_model

        skeleton = create_body_model().rigged_mesh({}).skeleton
    fresh = fresh_procedural_clips(skeleton)
    external, corpus = [], ""
    for folder in ([corpus_from] if corpus_from else artifact_dirs):
        external, corpus = held_out_external_clips(Path(folder), skeleton)
        if external:
            break
    result: dict = {"fresh_seed": FRESH_SEED, "external_corpus": corpus, "held_out": {}, "prompts": {}}
    for folder in map(Path, artifact_dirs):
        art = load_motion_artifacts(folder)
        held = {"procedural_fresh": reconstruction(art, fresh)}
        if external:
            held["external_held_out"] = reconstruction(art, external)
        result["held_out"][folder.name] = held
        result["prompts"][folder.name] = prompt_results(folder, skeleton, prompts, iterations)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="motion artifact folders (meta.json + motion_models.npz)")
    parser.add_argument("--corpus-from", help="the set whose held-out external clips to use (default: the first "
                                              "set trained with an external corpus)")
    parser.add_argument("--prompts", nargs="*", default=list(PROMPT_CHECKS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", help="write the result as JSON here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = compare([Path(s) for s in args.sets], args.prompts, Path(args.corpus_from) if args.corpus_from else None)
    text = json.dumps(result, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
