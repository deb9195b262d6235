"""`avatar bench --only text`: time and peak memory per stage of the text job, per preset.

Two runs per preset: the shape alone (offline sentence-encoder query, rig, export) and shape +
appearance (NeuS stage 1 uncached, CLIP sculpting, extraction, texture bake, rig). No CLIP weights can
be downloaded on every machine, so the sculpting run uses the preset's CLIP *architecture* with random
weights: the same compute per step as the real model, scores that mean nothing. The entry says so.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

SHAPE_PROMPT = "a very tall heavy man"
APPEARANCE_PROMPT = "Iron Man"


def _job_record(folder: Path, wall_s: float) -> dict:
    provenance = json.loads((folder / "provenance.json").read_text())
    params = json.loads((folder / "params.json").read_text())
    record = {
        "wall_s": round(wall_s, 2),
        "stages_s": provenance["timings_s"],
        "stages_peak_memory_mb": provenance["peak_memory_mb"],
    }
    sculpt = params.get("sculpt") or {}
    if sculpt.get("sculpted"):
        record["sculpt_substages_s"] = sculpt.get("timings_s", {})
        record["sculpted_vertices"] = sculpt.get("vertices")
    return record


def bench_text_preset(preset: str, sculpt: bool = True) -> dict:
    from avatarclip_core.clip.scorer import random_weights_scorer
    from avatarclip_core.device import resolve_device
    from avatar_studio.pipelines.text import load_text_config, run_text_job

    config = load_text_config(preset, {"neus.cache": "false"})
    results: dict = {"preset": preset}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_text_job(SHAPE_PROMPT, None, config, Path(tmp) / "shape", force=True)
        results["shape_only"] = _job_record(Path(tmp) / "shape", time.perf_counter() - started)
        if sculpt:
            scorer = random_weights_scorer(config.clip.model, device=resolve_device(config.clip.device),
                                           render_size=config.clip.image_size)
            started = time.perf_counter()
            run_text_job(SHAPE_PROMPT, APPEARANCE_PROMPT, config, Path(tmp) / "sculpt", force=True, scorer=scorer)
            record = _job_record(Path(tmp) / "sculpt", time.perf_counter() - started)
            record["clip"] = f"{scorer.name}: timing only, real weights give the same compute"
            results["shape_and_appearance"] = record
    return results


def bench_text(presets: tuple[str, ...] = ("preview", "standard")) -> dict:
    return {preset: bench_text_preset(preset) for preset in presets}
