"""Built-in procedural motions (idle, wave, walk) for any rig with a known role map.

Motions are authored as rotations about world axes (avatar faces +Z, Y up, +X is the avatar's
left), applied at each joint as if its parents were at rest, which is the BVH convention; each is
turned into the joint's local rest frame with R_local = R_rest^T R_world R_rest. Feet are settled
as the corpus clips' are (`corpus.feet.settle_feet` on the canonical clip): the planted feet drive the
root's travel, so they do not slide, and the lowest foot stands on the floor; a walk's stride follows
from the leg length of the skeleton.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Callable, Literal

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.config import limits
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import ROLE_MAPS, ROLES, CanonicalMotion, to_motion
from avatarclip_core.config.ranges import Count, NonNegative, Positive, Range

__all__ = ["BUILTIN_MOTIONS", "ROLE_MAPS", "MotionConfig", "UnknownMotionError", "make_motion"]

X_AXIS, Y_AXIS, Z_AXIS = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


class UnknownMotionError(UserInputError):
    pass


@dataclass
class MotionConfig:
    name: str = ""  # "" (none) | idle | wave | walk
    fps: Positive = 30.0
    cycles: Count = 2  # repetitions of the motion's cycle (walk: strides, wave: waves)
    speed: Positive = 1.0  # playback speed multiplier (a walk also covers more ground)
    amplitude: NonNegative = 1.0  # scales every joint angle
    # a described motion matching nothing the motion models know (matching.py): "warn" (make the
    # nearest, say so in the job's warnings) or "fail" (stop with that sentence before any work)
    on_unknown: Literal["warn", "fail"] = "warn"
    # game-ready clips (game_clip.py). seconds: the clip's length, 0 = as made (a built-in one: `cycles`);
    # a loop repeats whole cycles re-timed to land on it, a one-shot clip is re-timed
    seconds: Annotated[float, Range(ge=0, le=limits.MAX_CLIP_SECONDS)] = 0.0
    # auto: locomotion cycles and idles loop (last pose = first, root travel carried on), others not
    loop: Literal[limits.CLIP_LOOPS] = "auto"  # type: ignore[valid-type]  (the names: config.limits)
    loop_blend: Annotated[float, Range(gt=0, le=2)] = 0.3  # seconds over which a loop's end turns into its start


def _roles_for(skeleton: Skeleton) -> dict[str, int]:
    for mapping in ROLE_MAPS.values():
        if all(name in skeleton.names for name in mapping.values()):
            return {role: skeleton.index(name) for role, name in mapping.items()}
    raise UnknownMotionError("built-in motions need a game_engine or SMPL skeleton")


class _Builder:
    """Accumulates world-axis rotations per role, then converts them to local rotations."""

    def __init__(self, skeleton: Skeleton, frames: int) -> None:
        self.skeleton = skeleton
        self.roles = _roles_for(skeleton)
        self.frames = frames
        eye = torch.eye(3).expand(frames, 3, 3)
        self.world_rot = {role: eye.clone() for role in self.roles}
        self.root_translation = torch.zeros(frames, 3)

    def rotate(self, role: str, axis: tuple[float, float, float], angle: torch.Tensor) -> None:
        """Compose a rotation about a world axis (radians, per frame) after the existing ones."""
        rotvec = torch.tensor(axis).expand(self.frames, 3) * angle.reshape(-1, 1)
        self.world_rot[role] = axis_angle_to_matrix(rotvec) @ self.world_rot[role]

    def motion(self, fps: float, name: str) -> Motion:
        """The clip with its feet settled (root_translation: x/z the authored travel, used only while
        no foot touches the ground; y the height above the ground, 0 here: always standing)."""
        from avatarclip_core.motion.corpus.feet import settle_feet  # the corpus package loads its generators

        rotations = torch.stack([self.world_rot[role] for role in ROLES], 1)
        canonical = settle_feet(CanonicalMotion(fps, rotations, self.root_translation), self.skeleton)
        return to_motion(canonical, self.skeleton, name)


def _time(config: MotionConfig, period: float) -> tuple[torch.Tensor, int]:
    period = period / config.speed
    frames = max(2, int(round(config.cycles * period * config.fps)) + 1)
    return torch.arange(frames, dtype=torch.float32) / config.fps, frames


def _deg(x: float, config: MotionConfig) -> float:
    return math.radians(x) * config.amplitude


def idle(skeleton: Skeleton, config: MotionConfig) -> Motion:
    """Relaxed standing: arms lowered from the A-pose, breathing, a slow weight shift."""
    t, frames = _time(config, period=3.0)
    phase = 2 * math.pi * t * config.speed / 3.0
    b = _Builder(skeleton, frames)
    b.rotate("left_shoulder", Z_AXIS, torch.full_like(t, -_deg(30, config)))
    b.rotate("right_shoulder", Z_AXIS, torch.full_like(t, _deg(30, config)))
    b.rotate("left_elbow", X_AXIS, torch.full_like(t, -_deg(10, config)))
    b.rotate("right_elbow", X_AXIS, torch.full_like(t, -_deg(10, config)))
    b.rotate("spine2", X_AXIS, _deg(2, config) * torch.sin(phase))
    b.rotate("head", Y_AXIS, _deg(6, config) * torch.sin(0.5 * phase))
    b.rotate("pelvis", Z_AXIS, _deg(2, config) * torch.sin(0.5 * phase))  # settled feet: the hips shift over them
    return b.motion(config.fps, "idle")


def wave(skeleton: Skeleton, config: MotionConfig) -> Motion:
    """Right arm raised, forearm waving side to side; the left arm relaxed."""
    t, frames = _time(config, period=1.0)
    phase = 2 * math.pi * t * config.speed
    raise_in = torch.clamp(t * config.speed / 0.4, max=1.0)  # lift the arm over the first 0.4 s
    b = _Builder(skeleton, frames)
    b.rotate("left_shoulder", Z_AXIS, torch.full_like(t, -_deg(30, config)))
    b.rotate("right_shoulder", Z_AXIS, -_deg(105, config) * raise_in)
    b.rotate("right_elbow", Z_AXIS, (-_deg(25, config) + _deg(25, config) * torch.sin(phase)) * raise_in)
    b.rotate("head", Y_AXIS, -_deg(8, config) * raise_in)
    return b.motion(config.fps, "wave")


def walk(skeleton: Skeleton, config: MotionConfig) -> Motion:
    """A walk cycle moving forward (+Z): the corpus walk's gait (`corpus.locomotion._gait`: each foot
    half a cycle in stance, its thigh sweeping back at a constant rate, so the settled body advances
    at a steady 1.2-1.5 m/s instead of lurching as a sine-shaped stance did, 0.1-2.1 m/s); stride
    and pelvis drop follow from the leg length, `cycles` strides of 1.1 s at speed 1."""
    from avatarclip_core.motion.corpus.builder import BodyDims, ClipBuilder  # loads the corpus generators
    from avatarclip_core.motion.corpus.feet import settle_feet
    from avatarclip_core.motion.corpus.locomotion import _gait
    from avatarclip_core.motion.limits import clamp_to_limits

    _roles_for(skeleton)  # a rig with a role map, or the built-in motions' error
    period = 1.1
    b = ClipBuilder(config.cycles * period, config.fps, config.speed, config.amplitude,
                    BodyDims.from_skeleton(skeleton))
    _gait(b, period, 22, 55, 15, 2)
    canonical = settle_feet(clamp_to_limits(b.canonical()), skeleton)  # as the corpus walk is made
    return to_motion(canonical, skeleton, "walk")


# names: avatarclip_core.config.limits (checked without torch at submit); each is a generator here
BUILTIN_MOTIONS: dict[str, Callable[[Skeleton, MotionConfig], Motion]] = {
    name: globals()[name] for name in limits.BUILTIN_MOTIONS}


def make_motion(skeleton: Skeleton, config: MotionConfig) -> Motion:
    if config.name not in BUILTIN_MOTIONS:
        raise UnknownMotionError(
            f"unknown motion '{config.name}' (built-in: {', '.join(sorted(BUILTIN_MOTIONS))})"
        )
    if config.fps <= 0 or config.cycles < 1 or config.speed <= 0:
        raise UnknownMotionError("motion needs fps > 0, cycles >= 1 and speed > 0")
    return BUILTIN_MOTIONS[config.name](skeleton, config)
