"""`avatar bench --only motion` (clip_motion_preview): one text -> motion run with CLIP, as a user runs it.

Each run is a fresh `avatar text --motion PROMPT --clip-checkpoint FILE --set motion_gen.query_method=clip
--preset preview` process. No CLIP weights can be downloaded on every machine, so FILE holds a ViT-B-32
(the preset's architecture) with random weights, saved in half precision like OpenAI's ViT-B-32.pt: the
same loading, renders and compute per step as the real model, scores that mean nothing. Recorded:
- cold: a user's first CLIP motion with this model: the code-book poses are rendered and encoded once
  (motion_gen.clip_azimuths views each, motion_gen.codebook_precision) and cached in the user cache folder
  (here a temporary one that links the user's other caches, the body model's included, so only that
  encoding is cold and nothing is left behind);
- warm: the next run, cache filled (what every later motion costs);
- paper_schedule: a warm run with L_clip on every step (clip_every=1, 3 frames, the schedule before the
  preview preset thinned it) for a few iterations, extrapolated to the preset's iteration count;
- reference_s: a bare ViT-B-32 forward + backward of one 224 px image in this process, measured in the
  same bench run, so ratios (warm / reference) survive a busy machine (the job runs motion_gen.threads, preview 1);
- wall_s and cpu_s (the child's user + system seconds) per run, the motion stage, the latent
  optimisation's own seconds (params.json) and the 1-minute load average before and after.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a person jumps"
MODEL = "ViT-B-32"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_random_checkpoint(path: Path, model: str = MODEL, seed: int = 0) -> Path:
    """A state dict of ``model`` with random weights (fp16, as OpenAI ships ViT-B-32.pt), loadable by clip.checkpoint."""
    import open_clip
    import torch

    from avatarclip_core.clip.scorer import _quiet_open_clip, _register_project_configs

    _register_project_configs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with _quiet_open_clip():
            net = open_clip.create_model(model, pretrained=None)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path)
    return path


def cache_without_motion_features(folder: Path) -> Path:
    """`folder`, made a user cache folder that links every entry of the user's own except the code-book's
    CLIP features (motion_clip): a run with it encodes the code-book as a user's first would."""
    from avatarclip_core.paths import user_cache_dir_path

    folder.mkdir(parents=True, exist_ok=True)
    own = user_cache_dir_path()
    if own.is_dir():
        for entry in own.iterdir():
            if entry.name != "motion_clip":
                (folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return folder


def run_motion_once(checkpoint: Path, out: Path, data_dir: Path, sets: list[str] = (), timeout: float = 1800.0,
                    cache_dir: Path | None = None) -> dict:
    """One fresh `avatar text --motion` process with CLIP; wall and CPU seconds, stage timings. `cache_dir`:
    its user cache folder (AVATAR_CACHE_DIR; None: the user's)."""
    argv = [sys.executable, "-m", "avatar_studio.cli", "text", "--motion", PROMPT, "--clip-checkpoint", str(checkpoint),
            "--preset", "preview", "--set", "motion_gen.query_method=clip", "--formats", "glb",
            "-o", str(out), "--force", "-q"]
    for s in sets:
        argv += ["--set", s]
    env = {**os.environ, "AVATAR_DATA_DIR": str(data_dir), "WARP_QUIET": "1"}
    if cache_dir is not None:
        env["AVATAR_CACHE_DIR"] = str(cache_dir)
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_children()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"avatar text --motion failed: {done.stderr.strip()[-600:]}")
    stages = json.loads((out / "provenance.json").read_text())["timings_s"]
    source = json.loads((out / "params.json").read_text())["motion_source"]
    if source.get("method") != "clip":
        raise RuntimeError(f"the motion did not use CLIP: {source.get('method')}")
    return {"wall_s": round(wall, 2), "cpu_s": round(_cpu_children() - cpu_before, 2),
            "motion_stage_s": stages.get("motion"), "load_models_s": stages.get("load models"),
            "optimisation_s": source.get("optimisation_seconds"), "iterations": source.get("iterations"),
            "clip_steps": sum(1 for c in source["losses"]["clip"] if c != 0.0),
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def reference_vit(threads: int, repeats: int = 5, model: str = MODEL) -> float:
    """Median seconds of one CLIP image-encoder forward + backward (to the pixels) of one 224 px image
    (ViT-B-32 unless ``model`` names another), this process, on ``threads`` torch threads (the job's
    motion_gen.threads; 0 = torch's default)."""
    import torch

    from avatarclip_core.clip.scorer import random_weights_scorer
    from avatarclip_core.device import torch_threads

    scorer = random_weights_scorer(model)
    text = scorer.encode_text(["a person"])
    image = torch.rand(1, 224, 224, 3)
    times = []
    with torch_threads(threads):
        for _ in range(repeats + 1):
            x = image.clone().requires_grad_(True)
            started = time.perf_counter()
            (scorer.encode_image(x) * text).sum().backward()
            times.append(time.perf_counter() - started)
    return round(statistics.median(times[1:]), 4)  # the first call warms up


def bench_motion_clip(paper_iterations: int = 3) -> dict:
    from avatar_studio.pipelines.text import load_text_config

    preset = load_text_config("preview").motion_gen
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = write_random_checkpoint(tmp / f"{MODEL}-random.pt")
        data = tmp / "data"
        cache = cache_without_motion_features(tmp / "cache")
        out: dict = {"prompt": PROMPT, "clip": f"{MODEL} random weights from a checkpoint file: timing only",
                     "preset": {k: getattr(preset, k) for k in ("iterations", "clip_every", "clip_hold", "clip_frames",
                                                                 "clip_azimuths", "codebook_precision", "threads")},
                     "cpus": os.cpu_count()}
        out["reference_s"] = reference_vit(preset.threads)
        out["cold"] = run_motion_once(checkpoint, tmp / "cold", data, cache_dir=cache)
        out["warm"] = run_motion_once(checkpoint, tmp / "warm", data, cache_dir=cache)
        paper = run_motion_once(checkpoint, tmp / "paper", data, cache_dir=cache, sets=[
            "motion_gen.clip_every=1", "motion_gen.clip_hold=false", "motion_gen.clip_frames=3",
            f"motion_gen.iterations={paper_iterations}"])
        per_step = paper["optimisation_s"] / (paper_iterations + 1)
        paper["seconds_per_iteration"] = round(per_step, 3)
        paper["optimisation_s_estimated_for_preset_iterations"] = round(per_step * (preset.iterations + 1), 1)
        paper["wall_s_estimated"] = round(paper["wall_s"] - paper["optimisation_s"]
                                          + paper["optimisation_s_estimated_for_preset_iterations"], 1)
        out["paper_schedule"] = paper
        out["warm_over_reference"] = round(out["warm"]["wall_s"] / out["reference_s"], 1)
        out["reference_after_s"] = reference_vit(preset.threads)
    return out
