"""`avatar bench --only photo`: photo -> parameters speed on a real photo (scikit-image's astronaut):
photos per second end to end (load, detection, landmarks, embedding, fit) per method, and seconds
per iterative fit alone."""
from __future__ import annotations

import statistics
import time


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_photo(repeats: int = 3) -> dict:
    """On the photo job's torch threads (preview: 1); the iterative fit also with the paper's steps
    (configs/paper.yaml's line_search / stop_tolerance / colour_probe) as a reference from the same run."""
    from avatarclip_core.device import torch_threads
    from avatar_studio.pipelines.photo import load_photo_config

    config = load_photo_config("preview")
    with torch_threads(config.threads):
        results = _bench_photo(config, repeats)
    return {**results, "threads": config.threads}


def _bench_photo(config, repeats: int) -> dict:
    import dataclasses

    from skimage import data

    from face2param.faces import analyse_face
    from face2param.engines.registry import load_engine
    from face2param.methods.fit import fit
    from face2param.methods.target import target_from_analysis

    engine = load_engine(config)
    photo = data.astronaut()
    fit(photo, "mean", engine, config)  # warm every model once (detectors, engine tables)
    results: dict = {"photo": "skimage.data.astronaut (512x512)", "repeats": repeats}
    analysis_s = _median_s(lambda: analyse_face(photo, config.faces), repeats)
    results["face_analysis_s"] = round(analysis_s, 4)
    target = target_from_analysis(analyse_face(photo, config.faces), photo)
    for method in ("mean", "oneshot", "iterative"):
        last = {}

        def end_to_end():
            last["result"] = fit(photo, method, engine, config)

        seconds = _median_s(end_to_end, repeats)
        fit_only = _median_s(lambda: fit(target, method, engine, config), repeats)
        results[method] = {"photos_per_s_end_to_end": round(1.0 / seconds, 3), "end_to_end_s": round(seconds, 4),
                           "fit_only_s": round(fit_only, 4), "ran_as": last["result"].method,
                           "landmark_nme": round(last["result"].losses["landmark_nme"], 4)}
    paper = dataclasses.replace(config, iterative=dataclasses.replace(
        config.iterative, line_search=False, stop_tolerance=0.0, colour_probe=False))
    results["iterative"]["fit_only_paper_steps_s"] = round(_median_s(lambda: fit(target, "iterative", engine, paper),
                                                                     repeats), 4)
    return results


# ---- the photo job's memory -------------------------------------------------------------------------
# Measured in a fresh child process per case (the job process of a worker), as the resident high-water
# mark: tracemalloc misses what Pillow, libjpeg, numpy and torch allocate. The job's StageTimer resets
# the kernel's high-water mark at every stage (avatarclip_core.memory: /proc/self/clear_refs), which
# getrusage's ru_maxrss reads too, so ru_maxrss alone is only the peak since the last stage began:
# the job's peak is the largest of it and every stage's peak (peak_stage names where it was).
_PHOTO_JOB_CHILD = r"""
import json, resource, sys, tempfile
from pathlib import Path
import face2param.faces.images as images
if sys.argv[2] == "full":  # the photo decoded at full resolution, as before the early reduction
    images.load_image.__kwdefaults__["work_max_pixels"] = None
from avatar_studio.pipelines.photo import load_photo_config, run_photo_job
def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
out = Path(tempfile.mkdtemp()) / "job"
run_photo_job(sys.argv[1], load_photo_config("preview"), out)
prov = json.loads((out / "provenance.json").read_text())
stages = {k: v.get("rss_mb") for k, v in prov["peak_memory_mb"].items()}
since_last_stage = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
peak_stage = max(stages, key=stages.get)
print(json.dumps({"peak_rss_mb": max(since_last_stage, stages[peak_stage]),
                  "peak_stage": peak_stage if stages[peak_stage] >= since_last_stage else "end of the job",
                  "end_rss_anon_mb": status_mb("RssAnon"), "end_rss_file_mb": status_mb("RssFile"),
                  "stage_peaks_mb": stages}))
"""


def _photo_job_peak(photo: str, resolution: str) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PHOTO_JOB_CHILD, photo, resolution],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the photo job child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_test_photos(folder) -> dict[str, str]:
    """A 40 MP JPEG (7300 x 5475, scikit-image's astronaut enlarged, with sensor-like noise so it
    compresses like a photo: ~5.6 MB, under the 10 MB upload cap) and the 0.26 MP original."""
    from pathlib import Path

    import numpy as np
    from PIL import Image
    from skimage import data

    folder = Path(folder)
    small, big = folder / "astronaut_512.jpg", folder / "astronaut_40mp.jpg"
    Image.fromarray(data.astronaut()).save(small, quality=90)
    enlarged = np.asarray(Image.fromarray(data.astronaut()).resize((7300, 5475), Image.BICUBIC), dtype=np.int16)
    enlarged += np.random.default_rng(0).integers(-6, 7, size=enlarged.shape, dtype=np.int16)
    Image.fromarray(np.clip(enlarged, 0, 255).astype(np.uint8)).save(big, quality=90)
    return {"small": str(small), "40mp": str(big)}


def bench_photo_memory() -> dict:
    """Peak resident memory of one photo job process (preview preset, auto method) for a 40 MP JPEG,
    reduced while decoding (the default) and at full resolution (as before), and for a 0.26 MP photo:
    what is left over the small photo is the photo's own cost; the rest is the job's fixed cost:
    ~0.63 GB of file-backed library pages shared with every other process (torch and the CUDA
    libraries it loads, Warp, cv2, mediapipe, dlib; triton until roma was imported without
    torch._dynamo, lbs.import_roma) and ~0.85 GB private (the imported modules ~0.37 GB, the face models ~0.2 GB,
    the body model's float32 blend shapes 0.1 GB, the engine's head tables, the fit's caches)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        photos = write_test_photos(tmp)
        results = {"40mp_jpeg": _photo_job_peak(photos["40mp"], "work"),
                   "40mp_jpeg_full_resolution": _photo_job_peak(photos["40mp"], "full"),
                   "small_jpeg_512": _photo_job_peak(photos["small"], "work")}
    results["photo_cost_40mp_mb"] = round(results["40mp_jpeg"]["peak_rss_mb"] - results["small_jpeg_512"]["peak_rss_mb"], 1)
    return results
