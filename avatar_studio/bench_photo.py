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
    from skimage import data

    from face2param.faces import analyse_face
    from face2param.engines.registry import load_engine
    from face2param.methods.fit import fit
    from face2param.methods.target import target_from_analysis
    from avatar_studio.pipelines.photo import load_photo_config

    config = load_photo_config("preview")
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
    return results
