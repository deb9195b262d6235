"""`avatar bench --only photo` (batch part): photos per second of `avatar photo DIR -o OUT` (one-shot,
params.json only) beside a reference measured in the same run on the same photos: the bare face
analysis (detector, Face Mesh, 68 points, dlib descriptor, colour cues) one photo after another in
this process, i.e. the part of the work that does not depend on our fitting code. The ratio
batch / reference survives a loaded machine; the absolute figures do not.

A batch pays a fixed start (its analysis processes start and load the face models) and then a rate:
the photos `repeat` times over give the rate (steady photos/s: the photos done after the first quarter
of that batch over the time they took), and the batch of the photos once gives the start (what its
time leaves over at that rate).

Photos: $AVATAR_BENCH_PHOTOS (a folder) when set, else scikit-image's astronaut saved `count` times.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def _photo_folder(tmp: Path, count: int) -> Path:
    folder = os.environ.get("AVATAR_BENCH_PHOTOS")
    if folder:
        return Path(folder)
    from PIL import Image
    from skimage import data

    out = tmp / "photos"
    out.mkdir()
    Image.fromarray(data.astronaut()).save(out / "photo-000.png")
    for i in range(1, count):
        shutil.copyfile(out / "photo-000.png", out / f"photo-{i:03d}.png")
    return out


def _repeated(photos: list[Path], repeat: int, tmp: Path) -> list[Path]:
    """The photos `repeat` times over, as links with names of their own (one output folder each)."""
    out = tmp / "repeated"
    out.mkdir()
    links = []
    for r in range(repeat):
        for photo in photos:
            link = out / f"{r}-{photo.name}"
            link.symlink_to(photo.resolve())
            links.append(link)
    return links


def bench_photo_batch(count: int = 20, method: str = "oneshot", repeat: int = 4) -> dict:
    from avatar_studio.pipelines.photo import load_photo_config
    from avatar_studio.pipelines.photo_batch import collect_photos, run_photo_batch
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import load_image

    config = load_photo_config("preview", {"method": method})
    with tempfile.TemporaryDirectory() as tmp:
        photos = collect_photos([_photo_folder(Path(tmp), count)])
        many = _repeated(photos, repeat, Path(tmp))
        # a warm run: engine tables, and the asset renders of every skin and hair colour pair these photos
        # need (0.6-0.9 s a pair, once per user and code version) as a user's second batch finds them
        run_photo_batch(photos, config, Path(tmp) / "warm", processes=0)
        cpu = _cpu_s()
        started = time.perf_counter()
        for photo in photos:  # the reference: bare analysis, sequential, models already loaded
            try:
                analyse_face(load_image(photo), config.faces)
            except Exception:  # noqa: BLE001 - a bad photo costs what it costs in the batch too
                pass
        reference_s, reference_cpu = time.perf_counter() - started, _cpu_s() - cpu
        summary = run_photo_batch(photos, config, Path(tmp) / "out")  # processes: one per core but one
        finished: list[float] = []  # when each photo of the larger batch was done
        larger = run_photo_batch(many, config, Path(tmp) / "out-many",
                                 on_photo=lambda *_: finished.append(time.perf_counter()))
        cpu = _cpu_s()
        in_process = run_photo_batch(photos, config, Path(tmp) / "out0", processes=0)
        in_process_cpu = _cpu_s() - cpu
    n = len(photos)
    from avatarclip_core.device import usable_cores

    cores = usable_cores()  # what the batch sizes its pool by
    # the rate once the larger batch runs: its photos after the first quarter over the time they took (a
    # long batch also analyses in this process when the pool is behind, which a short one does not)
    first = len(finished) // 4
    steady = (len(finished) - 1 - first) / max(finished[-1] - finished[first], 1e-9)
    return {
        "photos": n, "method": method, "failed": len(summary.failed),
        "batch_photos_per_s": round(n / summary.seconds, 3),
        "batch_steady_photos_per_s": round(steady, 3),
        "batch_start_s": round(max(0.0, summary.seconds - n / steady), 3),
        "batch_larger": {"photos": len(many), "seconds": round(larger.seconds, 3), "failed": len(larger.failed)},
        "batch_one_process_photos_per_s": round(n / in_process.seconds, 3),
        "analysis_processes": summary.workers,
        "reference_bare_analysis_photos_per_s": round(n / reference_s, 3),
        "batch_over_reference": round(reference_s / summary.seconds, 3),
        "steady_over_reference": round(steady * reference_s / n, 3),
        # CPU seconds per photo (this process, which a loaded machine inflates far less than wall)
        "batch_one_process_cpu_s_per_photo": round(in_process_cpu / n, 4),
        "reference_bare_analysis_cpu_s_per_photo": round(reference_cpu / n, 4),
        # the most this machine's cores could give: each busy all the time on a photo's CPU seconds (one
        # process, no hand-offs). steady / bound near 1: the batch is CPU-bound, only cheaper photos go faster
        "cpu_bound_photos_per_s": round(cores * n / max(in_process_cpu, 1e-9), 3),
        "steady_over_cpu_bound": round(steady * in_process_cpu / (cores * n), 3),
        "note": "batch_photos_per_s includes the analysis processes' start and writing params.json/provenance"
                ".json; batch_steady_photos_per_s is the rate once they run (the larger batch's photos after its "
                "first quarter)",
    }


def _cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
