"""`avatar bench --only text`: time and peak memory per stage of the text job, per preset.

Two runs per preset: the shape alone (offline sentence-encoder query, rig, export) and shape +
appearance (NeuS stage 1 uncached, CLIP sculpting, extraction, texture bake, rig). No CLIP weights can
be downloaded on every machine, so the sculpting run uses the preset's CLIP *architecture* with random
weights: the same compute per step as the real model, scores that mean nothing. The entry says so.

Beside each sculpting run sits a reference measured in the same process just before and after it: one
bare forward + backward of the CLIP image encoder (one 224 px image, the job's thread count). A stage-2
step is dominated by two such passes plus the NeuS render, so ``stage2_step_over_reference`` survives a
loaded machine where the absolute seconds do not.
"""
from __future__ import annotations

import json
import os
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


def _step_reference(record: dict, iterations: int, before_s: float, after_s: float) -> dict:
    """A stage-2 step's seconds beside the bare CLIP forward + backward measured around the run."""
    reference = (before_s + after_s) / 2
    stage2 = record.get("sculpt_substages_s", {}).get("stage2")
    step = stage2 / max(1, iterations) if stage2 is not None else None
    return {"reference_clip_forward_backward_s": [before_s, after_s],
            "stage2_s_per_step": None if step is None else round(step, 3),
            "stage2_step_over_reference": None if step is None else round(step / reference, 2),
            "load_avg_after": round(os.getloadavg()[0], 2)}


def bench_text_preset(preset: str, sculpt: bool = True) -> dict:
    from avatarclip_core.clip.scorer import random_weights_scorer
    from avatarclip_core.device import resolve_device
    from avatar_studio.bench_motion_clip import reference_vit
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
            reference_before = reference_vit(0, model=config.clip.model)  # 0: torch's threads, as the job
            started = time.perf_counter()
            run_text_job(SHAPE_PROMPT, APPEARANCE_PROMPT, config, Path(tmp) / "sculpt", force=True, scorer=scorer)
            record = _job_record(Path(tmp) / "sculpt", time.perf_counter() - started)
            record["clip"] = f"{scorer.name}: timing only, real weights give the same compute"
            record.update(_step_reference(record, config.neus.iterations, reference_before,
                                          reference_vit(0, model=config.clip.model)))
            results["shape_and_appearance"] = record
    return results


def bench_text(presets: tuple[str, ...] = ("preview", "standard")) -> dict:
    return {preset: bench_text_preset(preset) for preset in presets}
