"""Game-ready clips (motion/game_clip.py): loops whose last pose is the first and whose seam moves no
faster than the rest of the clip, a length in seconds, in place, names that say what the clip is."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from avatarclip_core.body.lbs import matrix_to_axis_angle
from avatarclip_core.motion.game_clip import (clip_name, find_cycle, fit_length, game_clip, in_place, make_loop,
                                              repeat_cycle, wants_loop)
from avatarclip_core.motion.procedural import MotionConfig, make_motion


def joint_speeds(motion) -> torch.Tensor:
    """(T-1, J) radians each joint turns from one frame to the next."""
    r = motion.rotations.double()
    return matrix_to_axis_angle(r[1:] @ r[:-1].transpose(-1, -2)).norm(dim=-1)


def seam_and_elsewhere(cycle, blend_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per joint: the fastest step across the seam of two copies of `cycle` (the blend window before it
    and two steps after it) and the fastest step elsewhere in the two copies."""
    two = repeat_cycle(cycle, 2)
    speeds = joint_speeds(two)
    seam = cycle.num_frames - 1  # the frame where the second copy starts
    near = torch.zeros(speeds.shape[0], dtype=torch.bool)
    near[seam - blend_frames - 1:seam + 2] = True
    return speeds[near].amax(0), speeds[~near].amax(0)


@pytest.fixture(scope="module")
def walk_cut(anny_mesh):
    """Three built-in walk strides cut off mid-stride: first and last poses 48 degrees apart."""
    walk = make_motion(anny_mesh.skeleton, MotionConfig(name="walk", cycles=3))
    return replace(walk, rotations=walk.rotations[:-11], root_translation=walk.root_translation[:-11])


def test_a_loop_ends_on_its_first_pose_and_its_seam_does_not_pop(walk_cut):
    raw_gap = matrix_to_axis_angle(walk_cut.rotations[0] @ walk_cut.rotations[-1].transpose(-1, -2)).norm(dim=-1)
    assert float(raw_gap.max()) > 0.5  # the cut clip does not loop as it is

    loop, info = game_clip(walk_cut, "walk", loop="auto")
    assert info["loop"] and info["category"] == "locomotion" and loop.name == "walk_loop"
    start, end = info["cycle"]["start_frame"], info["cycle"]["end_frame"]
    cycle = make_loop(walk_cut, start, end)
    for clip in (loop, cycle):
        assert torch.allclose(clip.rotations[0], clip.rotations[-1], atol=1e-6)
        assert abs(float(clip.root_translation[0, 1] - clip.root_translation[-1, 1])) < 1e-6
    # root motion carries on: a cycle travels forward and so does the next one
    travel = cycle.root_translation[-1, 2] - cycle.root_translation[0, 2]
    assert float(travel) > 0.5
    two = repeat_cycle(cycle, 2)
    assert torch.allclose(two.root_translation[-1, 2] - two.root_translation[0, 2], 2 * travel)
    # no joint turns faster across the seam (blend window included) than it does elsewhere
    seam, elsewhere = seam_and_elsewhere(cycle, blend_frames=9)
    assert bool((seam <= elsewhere + 1e-3).all()), (seam - elsewhere).max()
    # whereas tiling the cut clip as it is pops by tens of degrees in one frame
    pop, rest = seam_and_elsewhere(walk_cut, blend_frames=0)
    assert float((pop - rest).max()) > 0.3


def test_the_loop_blend_corrects_a_mismatch_smoothly(walk_cut):
    """A deliberately bad cut (frames 0..40, a fifth of a stride off, poses up to 53 degrees apart) still
    ends on its first pose, and no joint turns much faster than it does in the clip itself."""
    loop = make_loop(walk_cut, 0, 40, blend=0.3)
    assert torch.allclose(loop.rotations[0], loop.rotations[-1], atol=1e-6)
    own, blended = joint_speeds(walk_cut).amax(0), joint_speeds(loop).amax(0)
    assert bool((blended <= 1.25 * own + 0.02).all()), (blended - own).max()  # measured: at most +0.6 degrees a frame


def test_find_cycle_keeps_whole_cycles(anny_mesh):
    idle = make_motion(anny_mesh.skeleton, MotionConfig(name="idle", cycles=2))  # exactly periodic
    start, end, cost = find_cycle(idle)
    assert (start, end) == (0, idle.num_frames - 1) and cost < 1e-6


def test_seconds_repeat_cycles_or_retime(anny_mesh, walk_cut):
    loop, info = game_clip(walk_cut, "walk", seconds=5.0)
    assert loop.num_frames == 151 and abs(loop.duration - 5.0) < 1e-9 and info["seconds"] == 5.0
    assert torch.allclose(loop.rotations[0], loop.rotations[-1], atol=1e-5)
    assert float(loop.root_translation[-1, 2] - loop.root_translation[0, 2]) > 4.0  # ~1.3 m/s for 5 s
    wave = make_motion(anny_mesh.skeleton, MotionConfig(name="wave"))
    slow, info = game_clip(wave, "wave", seconds=3.0)
    assert not info["loop"] and slow.name == "wave" and slow.num_frames == 91
    assert torch.allclose(slow.rotations[[0, -1]], wave.rotations[[0, -1]], atol=1e-6)  # same start and end pose
    short = fit_length(wave, 0.5, looped=False)
    assert short.num_frames == 16
    assert fit_length(wave, 0.0, looped=False) is wave


def skating(motion, skeleton) -> float:
    from avatarclip_core.motion.canonical import to_canonical
    from avatarclip_core.motion.corpus.feet import foot_skating

    return foot_skating(to_canonical(motion, skeleton), skeleton)


def assert_loops(clip):
    assert torch.equal(clip.rotations[0], clip.rotations[-1])
    assert abs(float(clip.root_translation[0, 1] - clip.root_translation[-1, 1])) < 1e-6


@pytest.mark.parametrize("generator", ["walk_cut", "jog", "walk"])
def test_a_loop_skates_no_more_than_its_clip(anny_mesh, walk_cut, generator):
    """The loop blend turns the legs after the clip's feet were settled; game_clip settles them again
    (feet_settler), so planted feet do not slide in the loop. Measured (m/s, un-looped -> looped
    unsettled -> looped): the cut built-in walk 0 -> 0.011 -> 0, the corpus jog 0.011 -> 0.055 ->
    0.005, the corpus walk 0 -> 0.011 -> 0."""
    from avatarclip_core.motion.canonical import to_motion
    from avatarclip_core.motion.corpus.library import make_clip
    from avatarclip_core.motion.game_clip import feet_settler

    skeleton = anny_mesh.skeleton
    clip = walk_cut if generator == "walk_cut" else to_motion(make_clip(generator, skeleton, seed=0).motion, skeleton)
    name = "walk" if generator == "walk_cut" else generator
    own = skating(clip, skeleton)
    unsettled, _ = game_clip(clip, name, loop="on")
    loop, info = game_clip(clip, name, loop="on", settle=feet_settler(skeleton))
    assert info["loop"]
    assert_loops(loop)
    assert skating(loop, skeleton) <= own + 0.005, (own, skating(unsettled, skeleton), skating(loop, skeleton))
    if generator == "jog":  # what it was with the blend after the settling
        assert skating(unsettled, skeleton) > own + 0.02
    assert torch.equal(loop.rotations, unsettled.rotations)  # settling moves the root only


def test_a_generated_jog_loop_skates_no_more_than_the_generated_clip(anny_mesh):
    """The jog a job makes (text -> motion, grounded by generate.ground_feet) looped as it is exported,
    with and without a length: measured (m/s) 0.001 un-looped, 0.17-0.18 looped before the clip was
    settled again, 0.002 / 0.004 (3 s) now."""
    from avatarclip_core.motion.game_clip import feet_settler
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.generate import text_to_motion

    skeleton = anny_mesh.skeleton
    clip, _ = text_to_motion("a person jogs", skeleton, MotionGenConfig(iterations=5, query_method="offline"))
    own = skating(clip, skeleton)
    for seconds in (0.0, 3.0):
        loop, info = game_clip(clip, "jog", seconds=seconds, settle=feet_settler(skeleton))
        assert info["loop"] and loop.name == "jog_loop"
        assert_loops(loop)
        assert skating(loop, skeleton) <= own + 0.005, (seconds, own, skating(loop, skeleton))


def test_loop_off_keeps_the_clip(walk_cut):
    clip, info = game_clip(walk_cut, "walk", loop="off")
    assert not info["loop"] and clip.name == "walk" and clip.num_frames == walk_cut.num_frames
    assert torch.equal(clip.rotations, walk_cut.rotations)


@pytest.mark.parametrize("generator,loops", [
    ("walk", True), ("idle", True), ("jog", True), ("walk_backwards", True), ("idle_bored", True),
    ("turn_around", False), ("jump", False), ("wave", False), ("raise_both_arms", False),
    ("walk forward angrily", True), ("play the guitar", False)])
def test_auto_loops_locomotion_cycles_and_idles(generator, loops):
    assert wants_loop("auto", generator) is loops
    assert wants_loop("on", generator) and not wants_loop("off", generator)


def test_clip_names_are_stable_and_engine_safe():
    assert clip_name("walk", True) == "walk_loop" and clip_name("jump", False) == "jump"
    assert clip_name("Play the Guitar!", False) == "play_the_guitar"
    assert clip_name("  ", False) == "motion"
    assert len(clip_name("x" * 80, True)) == 45


def test_in_place_drops_horizontal_travel_keeps_height(walk_cut):
    lifted = replace(walk_cut, root_translation=walk_cut.root_translation + torch.tensor([0.0, 0.05, 0.0]))
    still = in_place(lifted)
    assert float(still.root_translation[:, [0, 2]].abs().max()) == 0.0
    assert torch.equal(still.root_translation[:, 1], lifted.root_translation[:, 1])
    assert torch.equal(still.rotations, lifted.rotations)


# ---- through the jobs: what the written files say ------------------------------------------------------

@pytest.fixture(scope="module")
def walk_in_place_job(tmp_path_factory):
    import contextlib
    import io

    from avatar_studio.cli import main

    out = tmp_path_factory.mktemp("game_clip") / "walk"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["body", "--motion", "walk", "--seconds", "4", "--root", "in_place", "--formats", "glb,vrm,bvh",
                     "--set", "preview.enabled=false", "-q", "-o", str(out)]) == 0
    assert "motion clip: walk_loop, 4 s, 121 frames, in_place" in err.getvalue()
    return out


def test_a_four_second_in_place_walk_loop_in_the_glb(walk_in_place_job):
    import json

    from gltf_validation import validate_glb

    from avatarclip_core.export.gltf_read import read_glb

    assert validate_glb(walk_in_place_job / "avatar.glb")["issues"]["numErrors"] == 0
    _, motion = read_glb(walk_in_place_job / "avatar.glb")
    assert motion.name == "walk_loop" and motion.num_frames == 121 and abs(motion.duration - 4.0) < 1e-6
    assert torch.allclose(motion.rotations[0], motion.rotations[-1], atol=1e-4)  # quaternions in float32
    assert float(motion.root_translation[:, [0, 2]].abs().max()) < 1e-6  # in place
    params = json.loads((walk_in_place_job / "params.json").read_text())
    assert params["motion"]["seconds"] == 4.0 and params["motion"]["loop"] == "auto"
    clip = params["motion_source"]["clip"]
    assert clip["name"] == "walk_loop" and clip["loop"] and clip["seconds"] == 4.0 and clip["frames"] == 121
    assert params["export"]["animation"] == {"name": "walk_loop", "seconds": 4.0, "frames": 121,
                                             "root_motion": "in_place"}


def test_the_vrma_animation_has_the_clip_name(walk_in_place_job):
    import pygltflib as gl

    gltf = gl.GLTF2.load_binary(str(walk_in_place_job / "motion.vrma"))
    assert [a.name for a in gltf.animations] == ["walk_loop"]


def test_a_generated_locomotion_is_named_after_its_match_and_loops(tmp_path):
    import json

    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job
    from avatarclip_core.export.gltf_read import read_glb

    config = load_sliders_config("preview", {"motion.name": "a person jogs", "motion.seconds": "3",
                                             "motion_gen.iterations": "5", "preview.enabled": "false"})
    out = run_sliders_job({}, config, tmp_path / "jog")
    _, motion = read_glb(out / "avatar.glb")
    assert motion.name == "jog_loop" and motion.num_frames == 91
    assert torch.allclose(motion.rotations[0], motion.rotations[-1], atol=1e-4)
    assert float(motion.root_translation[-1, 2] - motion.root_translation[0, 2]) > 1.0  # root motion: jogs forward
    params = json.loads((out / "params.json").read_text())
    assert params["motion_source"]["clip"]["loop"] and params["export"]["animation"]["root_motion"] == "root_motion"


def test_a_one_shot_keeps_its_name_and_does_not_loop(tmp_path):
    import json

    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    config = load_sliders_config("preview", {"motion.name": "wave", "motion.seconds": "1.5", "export.formats": "glb",
                                             "preview.enabled": "false"})
    params = json.loads((run_sliders_job({}, config, tmp_path / "wave") / "params.json").read_text())
    assert params["motion_source"]["clip"]["name"] == "wave" and not params["motion_source"]["clip"]["loop"]
    assert params["export"]["animation"]["frames"] == 46


@pytest.mark.parametrize("args,message", [
    (["--seconds", "100"], "motion.seconds must be >= 0 and <= 60"),
    (["--seconds", "-1"], "motion.seconds must be >= 0 and <= 60"),
    (["--set", "motion.loop=always"], "motion.loop must be one of auto, on, off"),
])
def test_bad_clip_options_fail_at_the_boundary(tmp_path, capsys, args, message):
    from avatar_studio.cli import main

    assert main(["body", "--motion", "walk", *args, "-q", "-o", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_rest_callers_may_set_the_clip_options():
    from avatar_studio.config_schema import check_rest_overrides
    from avatarclip_core.errors import UserInputError

    ok = {"motion.seconds": 4, "motion.loop": "on", "export.root_motion": "in_place"}
    assert check_rest_overrides("sliders", "preview", ok) == ok
    with pytest.raises(UserInputError, match="motion.seconds"):
        check_rest_overrides("text", "preview", {"motion.seconds": 61})


@pytest.mark.slow
def test_the_fbx_take_has_the_clip_name(walk_in_place_job, tmp_path):
    from conftest import require_blender

    from avatarclip_core.export import inspect_in_blender
    from avatarclip_core.export.fbx import glb_to_fbx

    require_blender()
    fbx = glb_to_fbx(walk_in_place_job / "avatar.glb", tmp_path / "avatar.fbx")
    info = inspect_in_blender(fbx)
    assert info["frames"] == 121 and any("walk_loop" in name for name in info["action_names"]), info["action_names"]
