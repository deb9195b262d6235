"""The labelled procedural library: variation sampling, style noise, limits and foot contact.

make_clip: generator script (one side) -> style noise (smooth, low frequency, upper body) ->
mirror for the other hand -> clamp to joint limits -> feet settled on the skeleton -> labels.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Iterator

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Skeleton
from avatarclip_core.device import torch_threads
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, mirror
from avatarclip_core.motion.corpus.builder import REGISTRY, BodyDims, ClipBuilder, GeneratorSpec
from avatarclip_core.motion.corpus.feet import settle_body, settle_feet
from avatarclip_core.motion.limits import clamp_to_limits

# Importing the families registers their generators.
from avatarclip_core.motion.corpus import (  # noqa: F401,E402
    actions, arms, combat, dance, floor, gestures, idles, locomotion, sports, whole_body)

NOISE_ROLES = [ROLE_INDEX[r] for r in (
    "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")]
NOISE_COMPONENTS = 3  # sinusoids per role and axis
NOISE_BAND_HZ = (0.15, 0.8)  # low frequency: a style drift, not a tremor
STYLE_RANGE_DEG = (0.0, 3.0)  # amplitude of each sinusoid
VARIATION_KEYS = ("speed", "amplitude", "handedness", "style")


class UnknownGeneratorError(UserInputError):
    pass


@dataclass
class LabelledClip:
    motion: CanonicalMotion
    labels: list[str]  # paraphrases, first is the canonical label
    generator: str  # e.g. "walk"
    category: str  # e.g. "locomotion"
    variation: dict  # the variation values used


def generator_names() -> list[str]:
    return sorted(REGISTRY)


def default_skeleton() -> Skeleton:
    from avatarclip_core.body import create_body_model

    return create_body_model().rigged_mesh({}).skeleton


def _spec(name: str) -> GeneratorSpec:
    if name not in REGISTRY:
        raise UnknownGeneratorError(f"unknown motion generator '{name}' (known: {', '.join(generator_names())})")
    return REGISTRY[name]


def _uniform(rng: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=rng))


def sample_variation(spec: GeneratorSpec, rng: torch.Generator, given: dict | None = None) -> dict:
    """Random variation values for `spec`, overridden by `given` (validated)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(VARIATION_KEYS))
    if unknown:
        raise UserInputError(f"unknown motion variation keys {unknown} (known: {', '.join(VARIATION_KEYS)})")
    variation = {
        "speed": _uniform(rng, *spec.speed_range),
        "amplitude": _uniform(rng, *spec.amplitude_range),
        "style": _uniform(rng, *STYLE_RANGE_DEG),
    }
    if spec.handed:
        variation["handedness"] = "right" if float(torch.rand((), generator=rng)) < 0.5 else "left"
    variation.update(given)
    if spec.handed and variation["handedness"] not in ("left", "right"):
        raise UserInputError(f"handedness must be 'left' or 'right', got {variation['handedness']!r}")
    if not spec.handed:
        variation.pop("handedness", None)
    if not (variation["speed"] > 0 and variation["amplitude"] > 0 and variation["style"] >= 0):
        raise UserInputError("motion variation needs speed > 0, amplitude > 0 and style >= 0")
    return variation


def style_noise(frames: int, fps: float, degrees: float, rng: torch.Generator) -> torch.Tensor:
    """(T, len(NOISE_ROLES), 3, 3) smooth rotations: a few random low-frequency sinusoids per axis."""
    shape = (NOISE_COMPONENTS, len(NOISE_ROLES), 3)
    lo, hi = NOISE_BAND_HZ
    freq = lo + (hi - lo) * torch.rand(shape, generator=rng)
    phase = 2 * math.pi * torch.rand(shape, generator=rng)
    weight = torch.rand(shape, generator=rng)
    t = torch.arange(frames, dtype=torch.float32).reshape(-1, 1, 1, 1) / fps
    rotvec = (torch.sin(2 * math.pi * freq * t + phase) * weight).sum(1) * math.radians(degrees) / NOISE_COMPONENTS
    return axis_angle_to_matrix(rotvec)


def _labels(spec: GeneratorSpec, variation: dict) -> list[str]:
    if not spec.handed:
        return list(spec.labels)
    left_word, right_word = spec.side_words
    side, other = (left_word, right_word) if variation["handedness"] == "left" else (right_word, left_word)
    return [label.format(side=side, other=other) for label in spec.labels]


def side_labels(generator: str, handedness: str) -> list[str]:
    """The labels of `generator`'s `handedness` ("left" / "right") version."""
    return _labels(_spec(generator), {"handedness": handedness})


def generator_labels(generator: str) -> list[str]:
    """Every label of `generator` as a corpus of it holds them (both hands' wordings of a handed one)."""
    spec = _spec(generator)
    hands = ("left", "right") if spec.handed else ("right",)
    return list(dict.fromkeys(label for hand in hands for label in _labels(spec, {"handedness": hand})))


def make_clip(generator: str, skeleton: Skeleton | None = None, variation: dict | None = None, seed: int = 0,
              fps: float = 30.0) -> LabelledClip:
    """One labelled canonical clip of `generator` on `skeleton` (default: the default Anny body)."""
    # clips are many small tensor ops: intra-op threads only add hand-off costs (measured: 15 ms per clip on
    # one thread, 10x more with two threads on a loaded 2-core machine)
    with torch_threads(1):
        return _make_clip(generator, skeleton, variation, seed, fps)


def _make_clip(generator: str, skeleton: Skeleton | None, variation: dict | None, seed: int,
               fps: float) -> LabelledClip:
    spec = _spec(generator)
    if not fps > 0:
        raise UserInputError(f"fps must be positive, got {fps}")
    skeleton = skeleton if skeleton is not None else default_skeleton()
    rng = torch.Generator().manual_seed(int(seed))
    variation = sample_variation(spec, rng, variation)
    b = ClipBuilder(spec.duration, fps, variation["speed"], variation["amplitude"], BodyDims.from_skeleton(skeleton))
    spec.fn(b)
    if variation["style"] > 0:
        b.rotations[:, NOISE_ROLES] = style_noise(b.frames, fps, variation["style"], rng) @ b.rotations[:, NOISE_ROLES]
    clip = b.canonical()
    support = spec.support
    if spec.handed and variation["handedness"] != spec.authored_side:
        clip = mirror(clip)
        support = {"left": "right", "right": "left"}.get(support) if support else None
    clip = clamp_to_limits(clip)
    clip = settle_body(clip, skeleton) if spec.ground == "body" else settle_feet(clip, skeleton, support)
    return LabelledClip(motion=clip, labels=_labels(spec, variation), generator=spec.name,
                        category=spec.category, variation=variation)


def clip_seed(seed: int, generator: str, index: int) -> int:
    """A per-clip seed that does not depend on which other generators exist."""
    return zlib.crc32(f"{seed}:{generator}:{index}".encode())


def iter_corpus(skeleton: Skeleton | None = None, clips_per_generator: int = 50, seed: int = 0,
                fps: float = 30.0) -> Iterator[LabelledClip]:
    """Every generator `clips_per_generator` times with sampled variations; deterministic given `seed`.
    Handed generators alternate right/left so both hands are equally represented."""
    skeleton = skeleton if skeleton is not None else default_skeleton()
    for name in generator_names():
        spec = REGISTRY[name]
        for k in range(clips_per_generator):
            given = {"handedness": ("right", "left")[k % 2]} if spec.handed else None
            yield make_clip(name, skeleton, given, seed=clip_seed(seed, name, k), fps=fps)
