"""A folder (or list) of photos -> one photo job folder each, plus summary.json.

    OUT/<photo name>/params.json (+ provenance.json; face.png and avatar.glb when asked for)
    OUT/summary.json          photos, succeeded, failed [{photo, error}], seconds, photos_per_s, results

Face analysis (detection, landmarks, dlib descriptor, colour cues: numpy/mediapipe/dlib, no torch)
runs in a pool of processes, each loading the face models once, while this process loads the engine
once and fits and writes each analysed photo as it arrives (in a long batch it also analyses the next
photo itself whenever the pool is behind); a small window of photos in flight keeps memory flat for
any number of photos. One bad photo (not an image, no face, too small, a fit that
fails) is listed in summary.json with its one-line reason and never stops the batch.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from avatarclip_core.errors import UserInputError
from avatarclip_core.jobfolder import check_output_folder

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
SUMMARY_NAME = "summary.json"


@dataclass
class BatchFiles:
    """Which files each photo's folder gets besides params.json and provenance.json."""

    face_png: bool = False
    avatar_glb: bool = False


@dataclass
class BatchSummary:
    output: Path
    photos: int
    succeeded: list[dict] = field(default_factory=list)  # {photo, folder, method, landmark_nme}
    failed: list[dict] = field(default_factory=list)  # {photo, error}
    seconds: float = 0.0
    workers: int = 1

    def to_json(self) -> dict:
        return {"photos": self.photos, "succeeded": len(self.succeeded), "failed": self.failed,
                "seconds": round(self.seconds, 3),
                "photos_per_s": round(self.photos / self.seconds, 3) if self.seconds > 0 else None,
                "analysis_processes": self.workers, "results": self.succeeded}


def collect_photos(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given (any name: a bad one fails in the batch with its reason) and the photos of each
    folder (by suffix, sorted, not recursive). Nothing found or a missing path: one UserInputError."""
    photos: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            photos += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        elif path.exists():
            photos.append(path)
        else:
            raise UserInputError(f"no photo or folder {path}")
    if not photos:
        raise UserInputError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in {', '.join(str(i) for i in inputs)}")
    return photos


def folder_names(photos: list[Path]) -> list[str]:
    """One sub-folder name per photo: its stem made filesystem-safe, '-2', '-3' ... on repeats."""
    seen: dict[str, int] = {}
    names = []
    for photo in photos:
        stem = re.sub(r"[^\w.-]+", "_", photo.stem).strip("._") or "photo"
        count = seen.get(stem.lower(), 0) + 1
        seen[stem.lower()] = count
        names.append(stem if count == 1 else f"{stem}-{count}")
    return names


def default_analysis_processes(photos: int, cores: int | None = None) -> int:
    """Analysis processes beside this one, which fits: one per core but one (at most one per photo),
    none on one core. Measured on 2 cores, `avatar photo DIR --method oneshot`, wall from the shell:
    61 photos 9.2 s with one analysis process, 11.1 s with none; 3 photos 3.3 s and 3.8 s (the child
    loads the face models while this process loads the engine). `cores`: avatarclip_core.device.usable_cores
    (a container's CPU limit, not the host's count)."""
    if not cores:
        from avatarclip_core.device import usable_cores

        cores = usable_cores()
    return 0 if cores < 2 or photos < 2 else min(cores - 1, photos)


def _warm_analysis_process() -> None:
    os.environ.setdefault("WARP_QUIET", "1")
    import cv2

    cv2.setNumThreads(1)  # one busy process per core (device.opencv_threads says why)
    from face2param.faces.models import warm_up

    warm_up()


def _analyse(path: str, faces_config, keep_pixels: bool = True) -> tuple:
    """In an analysis process: (analysis, pixels or None, their sha256), or (None, one-line reason, None).
    Without `keep_pixels` (a fit that does not read them) only their digest travels back: a photo's
    pixels are megabytes to pickle, send and unpickle (~3 ms CPU on each side for a 5.6 MB one)."""
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import image_pixels_sha256, load_image

    try:
        pixels = load_image(path)
        return analyse_face(pixels, faces_config), pixels if keep_pixels else None, image_pixels_sha256(pixels)
    except UserInputError as exc:
        return None, str(exc), None
    except Exception as exc:  # a bug must not stop the other photos; the summary names it
        return None, f"internal error ({type(exc).__name__}: {exc})", None


_NOT_FORKED_WITH = ("torch", "cv2", "mediapipe", "dlib")  # in-process callers (tests, bench) analyse there


class ForkedAnalysis:
    """One photo's face analysis (decoding, detection, landmarks, descriptor, colour cues) in a child
    forked before this process imports torch and builds the engine, so that on two cores the two
    overlap (a cold `avatar photo`: the child loads mediapipe and dlib's models and analyses while
    this process imports torch and builds the engine; the child is a fork, so it shares what was
    imported and costs no second interpreter). The child analyses with the default FaceAnalysisConfig.

    `result(faces_config)` -> (analysis, pixels), or None whenever the child cannot give them: another
    faces config than the one it used, a bad photo (the caller analyses in its own process, which
    raises the photo's own error), a child that died, no fork on this platform."""

    def __init__(self, path: str | Path):
        from face2param.faces.config import FaceAnalysisConfig

        self.config = FaceAnalysisConfig()
        self._conn = self._process = None
        self._answered = False
        from avatarclip_core.device import usable_cores

        if ("fork" not in multiprocessing.get_all_start_methods() or usable_cores() < 2
                or any(name in sys.modules for name in _NOT_FORKED_WITH)):
            return  # a fork is only safe (and only saves time) before the native libraries start their threads
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe(duplex=False)
        self._process = context.Process(target=_analyse_in_child, args=(child_end, str(path), self.config),
                                        daemon=True, name="photo-analysis")
        self._process.start()
        child_end.close()

    def result(self, faces_config) -> tuple | None:
        try:
            if self._conn is None or faces_config != self.config:
                return None
            ok, value = self._conn.recv()
            self._answered = True
            return value if ok else None
        except Exception:  # EOF (the child died), a value that does not unpickle: analysed here instead
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Ends the child: after its answer it is exiting anyway; before (an error elsewhere), at once."""
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=5 if self._answered else 0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._conn = self._process = None


def _analyse_in_child(conn, path: str, faces_config) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to answer (it ends this child)
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import load_image

    try:
        pixels = load_image(path)
        answer = (True, (analyse_face(pixels, faces_config), pixels))
    except Exception:  # the parent analyses again and raises the error itself
        answer = (False, None)
    try:
        conn.send(answer)
    except OSError:  # the parent is gone
        pass
    finally:
        conn.close()


def run_photo_batch(inputs: Iterable[str | Path], config=None, output_dir: Path | str = "photo_batch",
                    force: bool = False, files: BatchFiles = BatchFiles(), processes: int | None = None,
                    fixed: dict | None = None, engine=None,
                    on_photo: Callable[[int, int, str, str], None] | None = None) -> BatchSummary:
    """Fit every photo; returns the summary (also written to OUT/summary.json). `processes`: analysis
    processes (None: default_analysis_processes; 0: analyse here). `on_photo(done, total, photo, error or '')`
    reports each finished photo. Bad arguments (no photos, OUT exists without force) fail before
    anything is written; a bad photo only lands in the summary's `failed` list."""
    photos = collect_photos(inputs)
    output_dir = check_output_folder(Path(output_dir), force)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = folder_names(photos)
    processes = default_analysis_processes(len(photos)) if processes is None else max(0, int(processes))
    summary = BatchSummary(output_dir, len(photos), workers=processes)
    started = time.perf_counter()
    pool = None
    if processes:  # started before torch loads here: spawned children import only the face analysis
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_warm_analysis_process)
    try:
        from avatar_studio.pipelines.photo import PhotoJobConfig, photo_stage_timer, write_photo_job
        from avatarclip_core.device import opencv_threads, torch_threads
        from avatarclip_core.provenance import write_json

        config = config or PhotoJobConfig()
        from face2param.methods.fit import reads_photo_pixels

        keep_pixels = reads_photo_pixels(config.method, config)
        analyses = _analysed_in_order(photos, config.faces, pool, 2 * max(processes, 1), keep_pixels)
        # the fits on one thread, as a single photo job; OpenCV on one beside the analysis processes
        with torch_threads(config.threads), opencv_threads(1) if pool is not None else contextlib.nullcontext():
            for index, (photo, name, (analysis, pixels_or_error, digest)) in enumerate(zip(photos, names, analyses)):
                error = ""
                if analysis is None:
                    error = pixels_or_error
                else:
                    try:
                        if engine is None:
                            from face2param.engines.registry import load_engine

                            engine = load_engine(config)  # once for the whole batch
                        timer = photo_stage_timer(config, None, files.face_png, files.avatar_glb)
                        folder = write_photo_job(analysis, pixels_or_error, photo.name, config, output_dir / name,
                                                 force, timer, engine=engine, fixed=fixed,
                                                 with_face=files.face_png, with_avatar=files.avatar_glb,
                                                 pixels_sha256=digest)
                        params = json.loads((folder / "params.json").read_text())
                        summary.succeeded.append({"photo": str(photo), "folder": name, "method": params.get("method"),
                                                  "landmark_nme": (params.get("losses") or {}).get("landmark_nme")})
                    except UserInputError as exc:
                        error = str(exc)
                    except Exception as exc:  # a bug in one fit must not lose the other photos
                        error = f"internal error ({type(exc).__name__}: {exc})"
                if error:
                    summary.failed.append({"photo": str(photo), "error": error})
                if on_photo is not None:
                    on_photo(index + 1, len(photos), str(photo), error)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        from avatarclip_core.provenance import write_json

        summary.seconds = time.perf_counter() - started
        write_json(output_dir / SUMMARY_NAME, summary.to_json())
    return summary


# A batch at least this long lets this process analyse photos itself whenever the next analysis is not
# ready (it would otherwise wait): its first one loads the face models here (~1.2 s of CPU, 0.3 GB),
# which pays off only over many photos (measured on 2 cores: ~0.01 s a photo gained).
STEAL_MIN_PHOTOS = 50


def _analysed_in_order(photos: list[Path], faces_config, pool: ProcessPoolExecutor | None, window: int,
                       keep_pixels: bool = True, steal: bool | None = None):
    """`_analyse`'s (analysis, pixels or None, sha256) or (None, reason, None) per photo, in order. With a
    pool: at most `window` photos in the pool's hands and 2 `window` sent or analysed but not yet taken.
    `steal` (None: `STEAL_MIN_PHOTOS` or more photos): when the next photo's analysis is not ready, this
    process analyses the next photo not yet sent instead of waiting. On 2 cores the analysis process is
    the slower stage (CPU a photo: real photos ~85 ms against ~70 ms to fit, the bench's photo 58
    against 30), so this process waited; 183 faces-identity photos 10.0 -> 10.0-11.9 photos/s, the
    bench's photo 200 times 13.8-15.5 -> 16.3-16.8."""
    if pool is None:
        for photo in photos:
            yield _analyse(str(photo), faces_config, keep_pixels)
        return
    if steal is None:
        steal = len(photos) >= STEAL_MIN_PHOTOS

    def submit(photo: Path) -> Future:
        try:
            return pool.submit(_analyse, str(photo), faces_config, keep_pixels)
        except Exception as exc:  # a broken pool: the photo fails with the reason, the loop goes on
            failed: Future = Future()
            failed.set_exception(exc)
            return failed

    def here(photo: Path) -> Future:
        done: Future = Future()
        done.set_result(_analyse(str(photo), faces_config, keep_pixels))
        return done

    pending: deque[Future] = deque()  # in photo order: the pool's, and those analysed here (done)
    unsent = deque(photos)
    held = 2 * window  # analyses sent or done but not yet fitted, at most (pixels can be megabytes each)
    while pending or unsent:
        in_flight = sum(not f.done() for f in pending)
        while in_flight < window and len(pending) < held and unsent:  # the pool keeps `window` photos
            pending.append(submit(unsent.popleft()))
            in_flight += 1
        if steal and unsent and not pending[0].done() and len(pending) < held:  # this process would wait
            pending.append(here(unsent.popleft()))
            continue
        try:
            result = pending.popleft().result()
        except Exception as exc:  # the analysis process died (e.g. out of memory): this photo fails
            result = (None, f"the analysis process failed ({type(exc).__name__}: {exc})", None)
        yield result
