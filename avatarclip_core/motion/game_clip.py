"""Game-ready clips: a length in seconds, seamless loops for cycles, root motion or in place, and a
name that says what the clip is.

Applied by `select.build_motion` to every clip a job makes (built-in or generated), on the rig's
local rotations (`Motion`). The clip arrives with its feet settled; whatever is changed here (the
loop blend turns the legs over its last frames, re-timing moves the samples) is settled again at the
end (`feet_settler`: the root re-grounded as text -> motion grounds its clips, rotations untouched),
so planted feet do not slide in a loop (foot_skating, m/s, un-looped / looped with the blend after
the settling / settled again, a preview job's generated clip: "a person jogs" 0.000 / 0.056 / 0.000,
"a person walks" 0.011 / 0.029 / 0.010, "a person runs" 0.025 / 0.21 / 0.054, the rest of that from
the frames the cycle keeps; the corpus jog 0.011 / 0.055 / 0.005):

- loop (`motion.loop`: auto | on | off; auto loops locomotion cycles and idles, `clip_category`):
  `find_cycle` picks the frame pair (i, j) whose poses, joint velocities, root height and root
  velocity agree best (at least `min_cycle` of the clip apart), `make_loop` crops to it and blends
  the end into the start over `blend` seconds (smoothstep of the rotation from the last pose to the
  first, added per joint; the root height likewise), so the last pose equals the first and the
  horizontal root travel of one cycle carries on into the next (root motion);
- length (`motion.seconds`, 0 = as made; `fit_length`): a loop repeats whole cycles, re-timed to
  land on the length exactly; a one-shot clip is re-timed (slerp, `motion_vae.resample`);
- in place (`in_place`): the horizontal root travel removed, the height kept: the export profiles'
  `root_motion: in_place` (`export.root_motion`, `avatar ... --root in_place`) calls it;
- name (`clip_name`): the built-in name or the matched generator ("walk", "jump"), "_loop" added to
  a loop; an out-of-vocabulary description keeps its own words. The GLB, VRMA and FBX animation is
  named so (BVH has no name field).
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Callable

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix, matrix_to_axis_angle
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.config import limits

# corpus categories whose clips are cycles (`motion.loop=auto` loops them); generators of those
# categories that are one-shot changes (a turn ends facing elsewhere) are listed in ONE_SHOT
LOOP_CATEGORIES = ("locomotion", "idle")
ONE_SHOT = frozenset({"turn", "turn_around"})
BUILTIN_CATEGORIES = {"walk": "locomotion", "idle": "idle", "wave": "gesture"}
_LOCOMOTION_WORDS = ("walk", "jog", "run", "sprint", "march", "step", "strut", "stroll", "limp")


def clip_category(generator: str) -> str:
    """The category of a built-in motion or corpus generator (procedural: its registered category;
    an imported clip group, e.g. Bandai's "walk forward angrily": by its words); "" if unknown."""
    if generator in BUILTIN_CATEGORIES:
        return BUILTIN_CATEGORIES[generator]
    from avatarclip_core.motion.corpus.builder import REGISTRY  # the corpus package registers the generators

    if generator in REGISTRY:
        return REGISTRY[generator].category
    words = set(re.findall(r"[a-z]+", generator.lower()))
    if "idle" in words:
        return "idle"
    return "locomotion" if words & set(_LOCOMOTION_WORDS) else ""


def wants_loop(loop: str, generator: str) -> bool:
    """motion.loop resolved: on / off, or auto = a locomotion cycle or an idle."""
    if loop in ("on", "off"):
        return loop == "on"
    if loop != "auto":
        raise ValueError(f"motion.loop must be one of {', '.join(limits.CLIP_LOOPS)}, got {loop!r}")
    return clip_category(generator) in LOOP_CATEGORIES and generator not in ONE_SHOT


def clip_name(base: str, looped: bool) -> str:
    """A stable, engine-safe animation name: lower-case words joined by "_" (at most 40 characters),
    "_loop" added to a loop; "motion" when nothing is left."""
    name = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_")[:40].strip("_") or "motion"
    return f"{name}_loop" if looped else name


def in_place(motion: Motion) -> Motion:
    """The clip without horizontal root travel (x, z); the vertical bob is kept."""
    travel = motion.root_translation.clone()
    travel[:, [0, 2]] = 0.0
    return replace(motion, root_translation=travel)


def _velocities(x: torch.Tensor) -> torch.Tensor:
    """Central differences along frames (one-sided at the ends), same shape as x."""
    v = torch.empty_like(x)
    v[1:-1] = (x[2:] - x[:-2]) / 2
    v[0], v[-1] = x[1] - x[0], x[-1] - x[-2]
    return v


def find_cycle(motion: Motion, min_cycle: float = 0.4, velocity_weight: float = 4.0) -> tuple[int, int, float]:
    """(i, j, cost): the frames that best close a loop, j - i >= min_cycle of the clip. Cost: squared
    rotation-matrix differences of every joint + velocity_weight x those of their per-frame velocities
    (so the motion carries on across the seam) + root height and horizontal root velocity (metres,
    x 10); a small term prefers longer cycles, so a clip of whole cycles keeps all of them."""
    T = motion.num_frames
    if T < 4:
        return 0, T - 1, 0.0
    pose = motion.rotations.reshape(T, -1).double()
    root = motion.root_translation.double()
    feats = [pose, math.sqrt(velocity_weight) * _velocities(pose), 10.0 * root[:, 1:2],
             10.0 * _velocities(root[:, [0, 2]])]
    f = torch.cat(feats, 1)
    cost = torch.cdist(f, f).square()
    idx = torch.arange(T)
    gap = idx[None, :] - idx[:, None]  # j - i
    shortest = max(2, int(math.ceil(min_cycle * (T - 1))))
    cost = cost + 0.01 * cost.mean() * (1.0 - gap.double() / (T - 1))
    cost[gap < shortest] = float("inf")
    flat = int(torch.argmin(cost))
    i, j = divmod(flat, T)
    return i, j, float(cost[i, j])


def make_loop(motion: Motion, start: int, end: int, blend: float = 0.3) -> Motion:
    """Frames start..end with the end blended into the start: the last frame's rotations and root
    height equal the first's; over the last `blend` seconds (at most half the cycle) each joint turns
    by smoothstep(w) of the rotation from its pose at `end` to its pose at `start`. Horizontal root
    travel is kept (the next cycle continues from where this one ends)."""
    rot = motion.rotations[start:end + 1].clone()
    root = motion.root_translation[start:end + 1].clone()
    N = rot.shape[0]
    window = min(max(2, int(round(blend * motion.fps))), (N - 1) // 2 or 1)
    t = torch.arange(N, dtype=rot.dtype)
    w = ((t - (N - 1 - window)) / window).clamp(0, 1)
    w = w * w * (3 - 2 * w)  # smoothstep: no added velocity where the window starts or at the seam
    delta = matrix_to_axis_angle(rot[0] @ rot[-1].transpose(-1, -2))  # (J, 3): last pose -> first pose
    rot = axis_angle_to_matrix(delta[None] * w[:, None, None]) @ rot
    rot[-1] = rot[0]  # exact, not within float error
    root[:, 1] = root[:, 1] + (root[0, 1] - root[-1, 1]) * w.to(root.dtype)
    return replace(motion, rotations=rot, root_translation=root)


def _retime(motion: Motion, frames: int) -> Motion:
    """The clip resampled to `frames` frames over the same first and last pose (slerp, linear root)."""
    from avatarclip_core.motion.motion_vae import resample

    T = motion.num_frames
    if frames == T:
        return motion
    rot, root = resample(motion.rotations, motion.root_translation, float(T - 1), float(frames - 1))
    rot, root = rot[:frames].clone(), root[:frames].clone()
    rot[-1], root[-1] = motion.rotations[-1], motion.root_translation[-1]
    return replace(motion, rotations=rot, root_translation=root)


def repeat_cycle(cycle: Motion, times: int) -> Motion:
    """`times` copies of a loop (last frame = first), each continuing the root travel of the last."""
    rot, root = [cycle.rotations], [cycle.root_translation]
    travel = cycle.root_translation[-1] - cycle.root_translation[0]
    travel = torch.stack([travel[0], travel.new_zeros(()), travel[2]])
    for k in range(1, times):
        rot.append(cycle.rotations[1:])
        root.append(cycle.root_translation[1:] + k * travel)
    return replace(cycle, rotations=torch.cat(rot), root_translation=torch.cat(root))


def fit_length(motion: Motion, seconds: float, looped: bool) -> Motion:
    """The clip lasting `seconds` (0: as it is): a loop as whole cycles (the count nearest the
    length), re-timed to land on it exactly; a one-shot clip re-timed."""
    if seconds <= 0:
        return motion
    frames = max(2, int(round(seconds * motion.fps)) + 1)
    if looped:
        cycles = max(1, int(round(seconds / max(motion.duration, 1e-6))))
        motion = repeat_cycle(motion, cycles)
    return _retime(motion, frames)


def feet_settler(skeleton: Skeleton) -> Callable[[Motion], Motion]:
    """settle(motion) -> the clip on its feet again, as text -> motion grounds its clips
    (`generate.ground_feet`: the planted feet drive the horizontal root travel, the lowest foot on
    the floor, a flight above GROUND_HOVER kept); only the root translation changes, so a loop's last
    pose stays exactly its first."""
    def settle(motion: Motion) -> Motion:
        from avatarclip_core.motion.canonical import to_canonical
        from avatarclip_core.motion.generate import ground_feet

        canonical = to_canonical(motion, skeleton)
        grounded = ground_feet(canonical, skeleton)
        shift = (grounded.root_translation - canonical.root_translation).to(motion.root_translation)
        return replace(motion, root_translation=motion.root_translation + shift)  # the pelvis moves as the root

    return settle


def game_clip(motion: Motion, generator: str, loop: str = "auto", seconds: float = 0.0,
              blend: float = 0.3, settle: Callable[[Motion], Motion] | None = None) -> tuple[Motion, dict]:
    """The clip as games take it (module docstring) and what params.json records of it.

    settle: how the clip's feet were settled (`feet_settler(skeleton)`), run again on a clip this
    changed (looped or re-timed) after the blend and the re-timing, never before them; None: as it is."""
    looped = wants_loop(loop, generator)
    info: dict = {"category": clip_category(generator), "loop": looped}
    if looped:
        start, end, cost = find_cycle(motion)
        own = motion.duration
        motion = make_loop(motion, start, end, blend)
        info["cycle"] = {"start_frame": start, "end_frame": end, "seconds": round(motion.duration, 4),
                         "seam_cost": round(cost, 4)}
        if seconds <= 0 and motion.duration > 0:  # as many cycles as fill the clip's own length
            motion = repeat_cycle(motion, max(1, int(round(own / motion.duration))))
    motion = fit_length(motion, seconds, looped)
    if settle is not None and (looped or seconds > 0):
        motion = settle(motion)
    motion = replace(motion, name=clip_name(generator, looped))
    info.update(name=motion.name, seconds=round(motion.duration, 4), frames=motion.num_frames, fps=motion.fps)
    return motion, info
