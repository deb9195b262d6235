"""The full text -> motion path on held-out paraphrases, checked against each generator's semantic
signature (avatarclip_core.motion.signatures). Not a test (30-50 s a prompt on a shared CPU): an
evaluation to run by hand after retraining the motion artifacts; the slow test
test_generated_motion_of_a_held_out_paraphrase_does_what_it_says runs a passing subset.

    .venv/bin/python tests/eval_generated_motion.py [GENERATOR ...] [--artifacts-dir DIR] [--jsonl OUT]

One held-out paraphrase per generator (the first of tests/data/motion_heldout_paraphrases.json, or
--paraphrase N); the issue's game actions first when none are named.
Prints one line per prompt (PASS/FAIL, the best match, the label-matched clip that started the
optimisation, speed, flight, the first stage whose motion fails the signature) and appends it as JSON
to --jsonl. The stages, each settled on the floor as the job settles its motion: the procedural clip's
first window at the motion VAE's rate and length ("window"), the VAE's reconstruction of that window
("vae"), the decoded latent of the generator's first library clip, where init=label starts ("init"),
and the generated motion ("optimisation": the latent optimisation and the feet settling).

Then the job's own motion for the same text (motion.select.build_motion: the quality check replaces a
generated motion that fails its matched generator's signature with that generator's procedural clip):
"job" PASS/FAIL and its source (generated / procedural). Handed generators are checked on either hand.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("AVATAR_DATA_DIR", str(HERE.parent / "data"))
os.environ.setdefault("WARP_QUIET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(HERE))


def main(argv: list[str] | None = None) -> int:
    import torch

    from avatarclip_core.body import create_body_model
    from avatarclip_core.motion.canonical import CanonicalMotion, to_canonical
    from avatarclip_core.motion.corpus import generator_names, make_clip
    from avatarclip_core.motion.corpus.builder import REGISTRY
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.generate import get_motion_artifacts, ground_feet, text_to_motion
    from avatarclip_core.motion.limits import clamp_to_limits
    from avatarclip_core.motion.motion_vae import crop, resample, to_features
    from avatarclip_core.motion.signatures import DEFAULT_VARIATION as STILL
    from avatarclip_core.motion.procedural import MotionConfig
    from avatarclip_core.motion.select import build_motion
    from avatarclip_core.motion.signatures import SIGNATURES, JointTrack, _flight, _speed, does_what_it_says
    from test_motion_vocabulary import GAME_ACTIONS, GENERATED, HELD_OUT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("generators", nargs="*", help="default: all, the game actions first")
    parser.add_argument("--artifacts-dir", default="", help="motion artifact folder (default: the preview set)")
    parser.add_argument("--paraphrase", type=int, default=0, help="which held-out paraphrase of each generator")
    parser.add_argument("--jsonl", help="append one JSON line per prompt here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    paraphrases = json.loads(HELD_OUT.read_text())["paraphrases"]
    by_generator = {g: t for t, g in GENERATED.items()}  # the slow test's wording where it has one
    names = args.generators or generator_names()
    unknown = sorted(set(names) - set(paraphrases))
    if unknown:
        parser.error(f"unknown generators: {', '.join(unknown)}")
    if not args.generators:  # the game actions first
        names = sorted(names, key=lambda g: (g not in GAME_ACTIONS, g))
    skeleton = create_body_model().rigged_mesh({}).skeleton
    art = get_motion_artifacts(MotionGenConfig(artifacts_dir=args.artifacts_dir))
    vae, library = art.motion_vae, [c["generator"] for c in art.meta["library"]]

    def passes(name: str, rot, root) -> bool:
        canonical = ground_feet(clamp_to_limits(CanonicalMotion(art.fps, rot, root)), skeleton)
        return bool(SIGNATURES[name](JointTrack(canonical, skeleton)))

    @torch.no_grad()
    def first_failing_stage(name: str) -> str:
        variation = dict(STILL, **({"handedness": "right"} if REGISTRY[name].handed else {}))
        clip = make_clip(name, skeleton, variation).motion
        rot, root = crop(*resample(clip.rotations.float(), clip.root_translation.float(), clip.fps, art.fps), 0,
                         vae.frames)
        if not passes(name, rot, root):
            return "window"
        rot, root = vae.decode_motion(vae.encode(to_features(rot[None], root[None]))[0])
        if not passes(name, rot[0], root[0]):
            return "vae"
        if name in library:
            rot, root = vae.decode_motion(art.library_latents[library.index(name)][None])
            if not passes(name, rot[0], root[0]):
                return "init"
        return "optimisation"

    passed, job_passed, fails_from = 0, 0, {}
    for i, name in enumerate(names, 1):
        texts = paraphrases[name]
        text = by_generator.get(name) if args.paraphrase == 0 and name in by_generator else \
            texts[min(args.paraphrase, len(texts) - 1)]
        started = time.perf_counter()
        motion, info = text_to_motion(text, skeleton, MotionGenConfig(artifacts_dir=args.artifacts_dir))
        clip = JointTrack(to_canonical(motion, skeleton), skeleton)
        ok = bool(SIGNATURES[name](clip))
        passed += ok
        best = info["matches"]["matches"][0]
        row = {"generator": name, "text": text, "pass": ok, "match": best["generator"], "score": best["score"],
               "init": info["init"], "speed_m_s": round(_speed(clip), 3), "flight_m": round(_flight(clip), 3),
               "seconds": round(time.perf_counter() - started, 1),
               "fails_from": None if ok else first_failing_stage(name)}
        gen_config = MotionGenConfig(artifacts_dir=args.artifacts_dir)
        job_clip, job_info = build_motion(skeleton, MotionConfig(name=text), gen_config)
        job_ok = does_what_it_says(name, to_canonical(job_clip, skeleton), skeleton,
                                   "either" if REGISTRY[name].handed else "right")
        job_passed += job_ok
        row.update(job_pass=job_ok, job_source=job_info.get("quality_check", {}).get("source", "generated"))
        print(f"[{i}/{len(names)}] {'PASS' if ok else 'FAIL'} {name:18s} {text!r} -> match {best['generator']} "
              f"{best['score']:.2f}, init {info['init']}, {row['speed_m_s']} m/s, flight {row['flight_m']} m, "
              f"{row['seconds']} s{'' if ok else ', fails from: ' + row['fails_from']}; job "
              f"{'PASS' if job_ok else 'FAIL'} ({row['job_source']})", flush=True)
        if not ok:
            fails_from.setdefault(row["fails_from"], []).append(name)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"{passed} of {len(names)} generated motions pass their generator's signature; the job's motion "
          f"(with its quality check) passes for {job_passed}", flush=True)
    for stage, failed in fails_from.items():
        print(f"  failing from the {stage} stage: {len(failed)} ({', '.join(failed)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
