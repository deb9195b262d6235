"""load_corpus: the procedural library, or a real corpus (CMU BVH, AMASS .npz, Bandai-Namco) plugged in by path.

A folder is searched recursively for `.bvh` and `.npz` files (sorted, so the order is stable).
Labels come from `labels.json` at the folder's top ({"relative/path.bvh" or "stem": "label" or
["label", "paraphrase", ...]}), else, in a Bandai-Namco dataset folder (bandai.py: its cfg/ label
files), from the action and style in the file name ("walk forward angrily", ...), else from the
file stem ("02_01_walk" -> "02 01 walk").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from avatarclip_core.body.types import Skeleton
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.corpus import bandai
from avatarclip_core.motion.corpus.amass_import import import_amass
from avatarclip_core.motion.corpus.bvh_import import MotionFileError, import_bvh
from avatarclip_core.motion.corpus.library import LabelledClip, default_skeleton, iter_corpus
from avatarclip_core.motion.corpus.retarget import resample
from avatarclip_core.motion.corpus.rig_rest import shared_rest_orientations

MOTION_SUFFIXES = {".bvh": "bvh", ".npz": "amass"}
LABELS_FILE = "labels.json"


def _read_labels(folder: Path) -> dict[str, list[str]]:
    path = folder / LABELS_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: must map file names to a label or a list of labels")
    labels = {}
    for key, value in raw.items():
        value = [value] if isinstance(value, str) else value
        if not (isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value)):
            raise UserInputError(f"{path}: labels of '{key}' must be a non-empty string or list of strings")
        labels[key] = [v.strip() for v in value]
    return labels


def _stem_label(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").replace("-", " ").split())


def load_corpus(path: Path | str | None, skeleton: Skeleton | None = None, clips_per_generator: int = 50,
                seed: int = 0, fps: float | None = 30.0, face_forward: bool | None = None) -> Iterator[LabelledClip]:
    """None: the procedural corpus (`iter_corpus`). A folder (or one file) of .bvh / .npz: each file
    retargeted to `skeleton` and resampled to `fps` (None keeps the file's rate). Files are checked
    lazily: a bad one raises a UserInputError naming it when the iteration reaches it. face_forward
    None: each clip's first frame is turned to face +Z, except in a Bandai-Namco folder, whose labels
    ("walk to the left") are relative to its capture stage's front."""
    skeleton = skeleton if skeleton is not None else default_skeleton()
    if path is None:
        return iter_corpus(skeleton, clips_per_generator, seed, fps if fps else 30.0)
    root = Path(path)
    if root.is_file():
        files, labels, base = [root], _read_labels(root.parent), root.parent
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MOTION_SUFFIXES and p.is_file())
        labels, base = _read_labels(root), root
        if not files:
            raise UserInputError(f"{root}: no .bvh or .npz motion files in this folder")
    else:
        raise UserInputError(f"{root}: no such motion corpus folder or file")
    vocabulary = bandai.read_vocabulary(base)
    if face_forward is None:
        face_forward = vocabulary is None
    return _iter_files(files, labels, base, skeleton, fps, face_forward, vocabulary)


def _iter_files(files: list[Path], labels: dict[str, list[str]], base: Path, skeleton: Skeleton,
                fps: float | None, face_forward: bool, vocabulary: bandai.Vocabulary | None) -> Iterator[LabelledClip]:
    rests = shared_rest_orientations(files)  # clips of one rig that does not stand at rest share a rest
    for file in files:
        kind = MOTION_SUFFIXES.get(file.suffix.lower())
        if kind is None:
            raise MotionFileError(f"{file}: unsupported motion file type (use .bvh or .npz)")
        if kind == "bvh":
            clip = import_bvh(file, skeleton, face_forward=face_forward, rest_orientations=rests.get(file))
        else:
            clip = import_amass(file, skeleton, face_forward=face_forward)
        source_fps = clip.fps
        if fps:
            clip = resample(clip, fps)
        relative = file.relative_to(base).as_posix()
        variation = {"source": relative, "source_fps": source_fps}
        generator, names = kind, labels.get(relative) or labels.get(file.name) or labels.get(file.stem)
        parsed = bandai.parse_name(file.stem, vocabulary) if vocabulary else None
        if parsed:  # one group per action, so matching reports "bandai:walk", whatever the style
            generator, variation = f"bandai:{parsed[0]}", {**variation, "action": parsed[0], "style": parsed[1]}
            names = names or bandai.describe(*parsed)
        yield LabelledClip(motion=clip, labels=list(names or [_stem_label(file)]), generator=generator,
                           category="imported", variation=variation)
