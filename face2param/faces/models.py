"""Per-process caches of the mediapipe graphs and dlib models (construction is slow: ~0.6 s for
the 68-point predictor; dlib's HOG detector is loaded from a saved copy in the user cache folder),
each with its own lock because neither library promises that one instance may run in two threads at
once. Caches are keyed by process id so a forked worker builds its own instead of sharing a parent's
native state.

Model files come with the installed packages (mediapipe's bundled .tflite graphs,
face_recognition_models' .dat files); nothing is ever downloaded.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from avatarclip_core.errors import UserInputError


class FaceModelsMissingError(UserInputError):
    pass


@dataclass
class LockedModel:
    """A native model and the lock to hold while calling it.

    chatty: a mediapipe graph, which writes TFLite/absl lines to file descriptor 2 when it is built
    and on its first real inference (Face Mesh: "Using NORM_RECT without IMAGE_DIMENSIONS" on its first
    face). Its calls run with fd 2 silenced (avatarclip_core.native_stderr) until one has answered, so a
    batch terminal or a worker log shows none of it and later calls pay nothing."""

    model: Any
    lock: threading.Lock
    chatty: bool = False

    def process(self, image, answered: Callable[[Any], bool] = lambda result: True):
        """``model.process(image)`` under the lock; ``answered(result)`` says when a chatty model has
        said what it says once (default: after its first call)."""
        with self.lock:
            if not self.chatty:
                return self.model.process(image)
            from avatarclip_core.native_stderr import silenced

            with silenced():
                result = self.model.process(image)
            self.chatty = not answered(result)
            return result


_cache: dict[tuple[int, str], LockedModel] = {}
_cache_lock = threading.Lock()


def _cached(key: str, build: Callable[[], Any], chatty: bool = False) -> LockedModel:
    full_key = (os.getpid(), key)
    with _cache_lock:
        entry = _cache.get(full_key)
        if entry is None:
            if chatty:
                import numpy as np

                from avatarclip_core.native_stderr import silenced

                with silenced():
                    model = build()
                    # the graph opens its calculators (which log) on threads of its own: one call on a
                    # blank image waits for them, inside the silence
                    model.process(np.full((64, 64, 3), 128, dtype=np.uint8))
            else:
                model = build()
            entry = _cache[full_key] = LockedModel(model, threading.Lock(), chatty)
        return entry


def dlib_models_dir() -> Path:
    """face_recognition_models' models/ folder, found without importing the package (its
    __init__ needs pkg_resources, which setuptools >= 81 no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissingError(
            "dlib's face models are missing: pip install face_recognition_models==0.3.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not folder.is_dir():
        raise FaceModelsMissingError(f"face_recognition_models has no models/ folder at {folder}")
    return folder


def _dlib_file(name: str) -> str:
    path = dlib_models_dir() / name
    if not path.is_file():
        raise FaceModelsMissingError(f"{path} is missing: reinstall face_recognition_models")
    return str(path)


def _forget_mediapipe_import_frames() -> None:
    """Drop the traceback of the import error mediapipe keeps. Importing mediapipe imports its audio
    module, which keeps why sounddevice could not be loaded (no sounddevice, or no PortAudio, as on
    servers) in `audio_record.sd_error`, traceback and all; that traceback's frames reach back through
    every caller of the first mediapipe import, which happens on a job's first detection: the
    analysed photo (36 MB at 12 MP) stayed referenced for the life of the process. Raising the error
    (recording audio, which nothing here does) gives it a new traceback."""
    audio = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
    error = getattr(audio, "sd_error", None)
    if isinstance(error, BaseException):
        error.__traceback__ = None


def _mediapipe_solutions():
    """mediapipe.python.solutions, imported without matplotlib: mediapipe's package import loads its
    drawing helpers, which import matplotlib.pyplot (0.6-1.1 s of a cold start, measured) for a 3-D
    plot nothing here draws. matplotlib stands in while mediapipe is imported (avatarclip_core.lazy);
    the drawing helpers' `plt` imports the real one if it is ever used."""
    if "mediapipe" not in sys.modules:
        from avatarclip_core.lazy import DeferredModule, stand_ins

        with stand_ins({"matplotlib": DeferredModule("matplotlib"),
                        "matplotlib.pyplot": DeferredModule("matplotlib.pyplot")}):
            import mediapipe.python.solutions  # noqa: F401
    import mediapipe.python.solutions as solutions

    _forget_mediapipe_import_frames()

    return solutions


def mediapipe_face_detector(model: str, min_confidence: float) -> LockedModel:
    """model: 'short_range' (faces within ~2 m: selfies) or 'full_range' (up to ~5 m)."""
    face_detection = _mediapipe_solutions().face_detection
    selection = {"short_range": 0, "full_range": 1}[model]
    return _cached(f"mp_detect:{model}:{min_confidence}", lambda: face_detection.FaceDetection(
        model_selection=selection, min_detection_confidence=min_confidence), chatty=True)


def mediapipe_face_mesh(min_confidence: float) -> LockedModel:
    face_mesh = _mediapipe_solutions().face_mesh
    return _cached(f"mp_mesh:{min_confidence}", lambda: face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True,
        min_detection_confidence=min_confidence), chatty=True)


def mediapipe_selfie_segmentation() -> LockedModel:
    selfie_segmentation = _mediapipe_solutions().selfie_segmentation
    # model 0 (general, 256x256 input) suits portrait crops better than the landscape model
    return _cached("mp_selfie", lambda: selfie_segmentation.SelfieSegmentation(model_selection=0), chatty=True)


def dlib_hog_detector() -> LockedModel:
    return _cached("dlib_hog", _frontal_face_detector)


def _frontal_face_detector():
    """dlib's frontal-face HOG detector, loaded from a copy saved in the user cache folder
    (avatarclip_core.paths): building it from dlib's built-in text costs ~0.65 s CPU on every cold
    start, loading the saved copy ~2 ms. The copy is dlib's own serialisation of the same detector
    (the same boxes and scores); a missing or unreadable copy is rebuilt, an unwritable folder only
    costs the time."""
    import dlib

    from avatarclip_core.paths import user_cache_dir_path

    path = user_cache_dir_path() / "dlib" / f"frontal_face_detector-{dlib.__version__}.svm"
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except Exception:  # a damaged copy (dlib raises its own serialisation errors): built again below
            pass
    detector = dlib.get_frontal_face_detector()
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        detector.save(str(partial))
        os.replace(partial, path)  # whole or absent, across processes
    except Exception:  # a read-only or full cache folder
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
    return detector


def dlib_shape_predictor_68() -> LockedModel:
    import dlib

    return _cached("dlib_sp68", lambda: dlib.shape_predictor(
        _dlib_file("shape_predictor_68_face_landmarks.dat")))


def dlib_face_recognition() -> LockedModel:
    """dlib's own descriptor network: only for jittered descriptors (faces.embedding_jitters > 0)."""
    import dlib

    return _cached("dlib_frec", lambda: dlib.face_recognition_model_v1(
        _dlib_file("dlib_face_recognition_resnet_model_v1.dat")))


def dlib_face_resnet() -> LockedModel:
    """The same network and file run by OpenCV (faces.dlib_resnet): same descriptors, ~7x faster."""
    from face2param.faces.dlib_resnet import DlibFaceResNet

    return _cached("dlib_resnet", lambda: DlibFaceResNet(_dlib_file("dlib_face_recognition_resnet_model_v1.dat")))


def warm_up() -> None:
    """Build every model now (a worker calls this at start so the first job is not slower)."""
    from face2param.faces.analysis import FaceAnalysisConfig

    config = FaceAnalysisConfig()
    for model in config.detection.mediapipe_models:
        mediapipe_face_detector(model, config.detection.min_confidence)
    mediapipe_face_mesh(config.landmarks.mesh_min_confidence)
    mediapipe_selfie_segmentation()
    dlib_hog_detector()
    dlib_shape_predictor_68()
    dlib_face_resnet()
