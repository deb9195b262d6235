"""BVH and AMASS import: retargeting by joint names, rest-pose alignment, leg-ratio scaling, errors.
Every test writes its own small files."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.export.bvh import write_bvh
from avatarclip_core.motion.canonical import ROLE_INDEX, canonical_joint_positions, to_motion
from avatarclip_core.motion.corpus import MotionFileError, import_amass, import_bvh, load_corpus, make_clip
from avatarclip_core.motion.corpus.amass_import import SMPL_JOINTS, SMPL_REST_JOINTS

R = ROLE_INDEX
CMU_TPOSE = {  # name: (parent, position in metres), Y up, facing +Z, arms horizontal
    "Hips": (None, (0, 1.0, 0)), "LowerBack": ("Hips", (0, 1.1, 0)), "Spine": ("LowerBack", (0, 1.25, 0)),
    "Spine1": ("Spine", (0, 1.4, 0)), "Neck": ("Spine1", (0, 1.55, 0)), "Neck1": ("Neck", (0, 1.6, 0)),
    "Head": ("Neck1", (0, 1.7, 0)),
    "LeftShoulder": ("Spine1", (0.05, 1.5, 0)), "LeftArm": ("LeftShoulder", (0.2, 1.5, 0)),
    "LeftForeArm": ("LeftArm", (0.5, 1.5, 0)), "LeftHand": ("LeftForeArm", (0.75, 1.5, 0)),
    "RightShoulder": ("Spine1", (-0.05, 1.5, 0)), "RightArm": ("RightShoulder", (-0.2, 1.5, 0)),
    "RightForeArm": ("RightArm", (-0.5, 1.5, 0)), "RightHand": ("RightForeArm", (-0.75, 1.5, 0)),
    "LeftUpLeg": ("Hips", (0.1, 0.95, 0)), "LeftLeg": ("LeftUpLeg", (0.1, 0.5, 0)),
    "LeftFoot": ("LeftLeg", (0.1, 0.08, 0)), "LeftToeBase": ("LeftFoot", (0.1, 0.02, 0.14)),
    "RightUpLeg": ("Hips", (-0.1, 0.95, 0)), "RightLeg": ("RightUpLeg", (-0.1, 0.5, 0)),
    "RightFoot": ("RightLeg", (-0.1, 0.08, 0)), "RightToeBase": ("RightFoot", (-0.1, 0.02, 0.14)),
}
CMU_LEG = 0.87  # hip to ankle


def _cmu_skeleton(prefix: str = "") -> Skeleton:
    names = list(CMU_TPOSE)
    parents = [names.index(p) if p else -1 for p, _ in CMU_TPOSE.values()]
    rest = torch.eye(4).repeat(len(names), 1, 1)
    rest[:, :3, 3] = torch.tensor([pos for _, pos in CMU_TPOSE.values()], dtype=torch.float32)
    return Skeleton(names=[prefix + n for n in names], parents=parents, rest_transforms=rest)


def _write(skeleton: Skeleton, rotations: torch.Tensor, translation: torch.Tensor, path, fps=120.0, scale=1.0):
    motion = Motion(fps, list(skeleton.names), rotations, translation)
    return write_bvh(skeleton, motion, path, scale=scale)


def _raise_left_arm(skeleton: Skeleton, frames: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    rotations = torch.eye(3).repeat(frames, skeleton.num_joints, 1, 1)
    angle = torch.linspace(0, math.pi / 2, frames)  # about +Z: the left arm (+X) turns up to +Y
    rotations[:, 8] = lbs.axis_angle_to_matrix(torch.stack([0 * angle, 0 * angle, angle], 1))
    return rotations, torch.zeros(frames, 3)


def _direction(p: torch.Tensor, frame: int, a: str, b: str) -> torch.Tensor:
    d = p[frame, R[b]] - p[frame, R[a]]
    return d / d.norm()


def test_cmu_tpose_bvh_raising_the_left_arm_raises_our_left_wrist(tmp_path, anny_mesh):
    source = _cmu_skeleton()
    assert source.names[8] == "LeftArm"
    path = _write(source, *_raise_left_arm(source), tmp_path / "raise.bvh")
    clip = import_bvh(path, anny_mesh.skeleton)
    assert clip.fps == 120.0 and clip.num_frames == 9
    p = canonical_joint_positions(clip, anny_mesh.skeleton)
    # frame 0 is the source's T-pose: our A-pose arm is aligned to it (horizontal), then points up
    assert torch.allclose(_direction(p, 0, "left_shoulder", "left_elbow"), torch.tensor([1.0, 0, 0]), atol=0.02)
    assert torch.allclose(_direction(p, 0, "left_elbow", "left_wrist"), torch.tensor([1.0, 0, 0]), atol=0.02)
    assert torch.allclose(_direction(p, -1, "left_shoulder", "left_elbow"), torch.tensor([0, 1.0, 0]), atol=0.02)
    assert float(p[-1, R["left_wrist"], 1]) > float(p[-1, R["head"], 1])
    assert float(p[-1, R["right_wrist"], 1]) < float(p[-1, R["head"], 1])  # the other arm stays (T-pose)
    assert torch.allclose(_direction(p, -1, "left_hip", "left_knee"), torch.tensor([0, -1.0, 0]), atol=0.02)


def test_bvh_root_travel_is_scaled_by_the_leg_ratio_whatever_the_units(tmp_path, anny_mesh):
    source = _cmu_skeleton()
    frames = 11
    rotations = torch.eye(3).repeat(frames, source.num_joints, 1, 1)
    translation = torch.zeros(frames, 3)
    translation[:, 2] = torch.linspace(0, 1.0, frames)  # 1 m forward
    ours = float((anny_mesh.skeleton.rest_positions[anny_mesh.skeleton.index("thigh_l")]
                  - anny_mesh.skeleton.rest_positions[anny_mesh.skeleton.index("foot_l")]).norm())
    for scale in (1.0, 100.0):  # metres and centimetres
        path = _write(source, rotations, translation, tmp_path / f"walk_{scale}.bvh", scale=scale)
        clip = import_bvh(path, anny_mesh.skeleton)
        travel = clip.root_translation[-1] - clip.root_translation[0]
        assert math.isclose(float(travel[2]), ours / CMU_LEG, rel_tol=2e-3), (scale, travel)
        assert abs(float(travel[0])) < 1e-4 and abs(float(travel[1])) < 1e-4
        assert float(clip.root_translation[0, 2]) == 0.0


def test_mixamo_names_and_our_own_bvh_export_round_trip(tmp_path, anny_mesh):
    skeleton = anny_mesh.skeleton
    # our own export (game_engine names, our rest pose): importing gives back the same clip
    clip = make_clip("wave", skeleton, {"style": 0.0}, seed=2)
    path = write_bvh(skeleton, to_motion(clip.motion, skeleton), tmp_path / "wave.bvh")
    back = import_bvh(path, skeleton)
    assert torch.allclose(back.rotations, clip.motion.rotations, atol=1e-4)
    assert torch.allclose(back.root_translation, clip.motion.root_translation, atol=1e-4)
    # Mixamo: namespaced names, Spine/Spine1/Spine2 instead of CMU's LowerBack/Spine/Spine1
    mixamo = _cmu_skeleton("mixamorig:")
    mixamo.names[1:4] = ["mixamorig:Spine", "mixamorig:Spine1", "mixamorig:Spine2"]
    path = _write(mixamo, *_raise_left_arm(mixamo), tmp_path / "mixamo.bvh")
    p = canonical_joint_positions(import_bvh(path, skeleton), skeleton)
    assert torch.allclose(_direction(p, -1, "left_shoulder", "left_elbow"), torch.tensor([0, 1.0, 0]), atol=0.02)


def _amass(tmp_path, name: str, poses: np.ndarray, trans: np.ndarray, **extra) -> str:
    path = tmp_path / name
    np.savez(path, poses=poses, trans=trans, **extra)
    return path


def _standing(T: int, yaw: float = 0.0) -> np.ndarray:
    """SMPL+H poses standing upright in AMASS's Z-up world (facing -Y, turned `yaw` about Z)."""
    poses = np.zeros((T, 156), dtype=np.float32)
    upright = lbs.axis_angle_to_matrix(torch.tensor([math.pi / 2, 0.0, 0.0]))
    turn = lbs.axis_angle_to_matrix(torch.tensor([0.0, 0.0, yaw]))
    poses[:, :3] = lbs.matrix_to_axis_angle(turn @ upright).numpy()
    return poses


def test_amass_npz_z_up_is_converted_and_retargeted(tmp_path, anny_mesh):
    skeleton = anny_mesh.skeleton
    T = 6
    poses = _standing(T)
    arm = 3 * SMPL_JOINTS.index("left_shoulder")
    poses[:, arm + 2] = np.linspace(0, math.pi / 2, T)  # about +Z in the body frame: left arm up
    trans = np.zeros((T, 3), dtype=np.float32)
    trans[:, 1] = -np.linspace(0, 1.0, T)  # 1 m along -Y: forward for a body facing -Y
    trans[:, 2] = 0.95
    clip = import_amass(_amass(tmp_path, "raise.npz", poses, trans, mocap_framerate=60.0), skeleton)
    assert clip.fps == 60.0 and clip.num_frames == T
    p = canonical_joint_positions(clip, skeleton)
    assert float(p[0, R["head"], 1]) > float(p[0, R["pelvis"], 1]) + 0.5  # upright in Y-up
    # our upper arm points exactly where the SMPL one does: its rest direction turned 90 degrees about Z
    bone = SMPL_REST_JOINTS[SMPL_JOINTS.index("left_elbow")] - SMPL_REST_JOINTS[SMPL_JOINTS.index("left_shoulder")]
    expected = lbs.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2])) @ (bone / bone.norm())
    assert torch.allclose(_direction(p, -1, "left_shoulder", "left_elbow"), expected, atol=1e-3)
    assert float(expected[1]) > 0.99
    smpl_leg = float((SMPL_REST_JOINTS[1] - SMPL_REST_JOINTS[7]).norm() + (SMPL_REST_JOINTS[2] - SMPL_REST_JOINTS[8]).norm()) / 2
    ours = float((skeleton.rest_positions[skeleton.index("thigh_l")] - skeleton.rest_positions[skeleton.index("foot_l")]).norm())
    assert math.isclose(float(clip.root_translation[-1, 2]), ours / smpl_leg, rel_tol=0.01)
    lowest = canonical_joint_positions(clip, skeleton)[:, [R["left_ankle"], R["right_ankle"]], 1].min()
    assert 0.0 < float(lowest) < 0.15  # on the ground, not at AMASS's 0.95 m


def test_amass_clip_turned_away_is_faced_forward(tmp_path, anny_mesh):
    T = 4
    trans = np.zeros((T, 3), dtype=np.float32)
    trans[:, 0] = np.linspace(0, 0.5, T)  # facing +X after a 90-degree turn about Z: walking along +X
    clip = import_amass(_amass(tmp_path, "turned.npz", _standing(T, math.pi / 2), trans, mocap_framerate=30), anny_mesh.skeleton)
    facing = clip.rotations[0, R["pelvis"]] @ torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(facing, torch.tensor([0.0, 0.0, 1.0]), atol=1e-4)
    assert float(clip.root_translation[-1, 2]) > 0.4 and abs(float(clip.root_translation[-1, 0])) < 1e-3


def test_bad_files_raise_specific_errors(tmp_path, anny_mesh):
    skeleton = anny_mesh.skeleton
    junk = tmp_path / "junk.bvh"
    junk.write_text("this is not a motion file\n")
    with pytest.raises(MotionFileError, match="not a readable BVH"):
        import_bvh(junk, skeleton)
    odd = Skeleton(names=["A", "B", "C"], parents=[-1, 0, 1], rest_transforms=torch.eye(4).repeat(3, 1, 1))
    path = _write(odd, torch.eye(3).repeat(2, 3, 1, 1), torch.zeros(2, 3), tmp_path / "odd.bvh")
    with pytest.raises(MotionFileError, match=r"cannot map its skeleton.*LeftUpLeg"):
        import_bvh(path, skeleton)
    with pytest.raises(MotionFileError, match=r"missing keys \['trans', 'mocap_framerate'\]"):
        import_amass(_nokeys(tmp_path), skeleton)
    with pytest.raises(MotionFileError, match=r"\(T, 72 \| 156 \| 165\)"):
        import_amass(_amass(tmp_path, "wide.npz", np.zeros((2, 100)), np.zeros((2, 3)), mocap_framerate=30), skeleton)
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"not a zip")
    with pytest.raises(MotionFileError, match="not a readable .npz"):
        import_amass(fake, skeleton)
    with pytest.raises(MotionFileError, match="no such BVH file"):
        import_bvh(tmp_path / "missing.bvh", skeleton)


def _nokeys(tmp_path):
    path = tmp_path / "nokeys.npz"
    np.savez(path, poses=np.zeros((2, 156)))
    return path


def test_load_corpus_reads_a_folder_with_labels_and_resamples(tmp_path, anny_mesh):
    source = _cmu_skeleton()
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    _write(source, *_raise_left_arm(source, frames=25), folder / "raise_left_arm.bvh", fps=120.0)
    _write(source, *_raise_left_arm(source, frames=13), folder / "sub" / "02_01.bvh", fps=120.0)
    np.savez(folder / "amass_walk.npz", poses=_standing(8), trans=np.zeros((8, 3)), mocap_framerate=60.0)
    (folder / "labels.json").write_text(json.dumps({"sub/02_01.bvh": ["raise the left arm", "left arm up"],
                                                    "amass_walk": "stand still"}))
    clips = list(load_corpus(folder, anny_mesh.skeleton, fps=30.0))
    assert [c.labels[0] for c in clips] == ["stand still", "raise left arm", "raise the left arm"]
    assert [c.generator for c in clips] == ["amass", "bvh", "bvh"]
    assert all(c.motion.fps == 30.0 and c.category == "imported" for c in clips)
    assert clips[1].motion.num_frames == 7  # 0.2 s at 120 fps -> 7 frames at 30 fps
    assert clips[1].variation["source_fps"] == 120.0
    with pytest.raises(Exception, match="no such motion corpus"):
        load_corpus(tmp_path / "nowhere", anny_mesh.skeleton)


def test_train_corpus_replaces_or_joins_the_procedural_clips(tmp_path, anny_mesh):
    """motion_train.corpus alone replaces the procedural generators; corpus_mode=join trains on both."""
    from avatarclip_core.config import ConfigError, load_config
    from avatarclip_core.motion.corpus import generator_names
    from avatarclip_core.motion.gen_config import MotionTrainConfig
    from avatarclip_core.motion.train import _load_clips

    source = _cmu_skeleton()
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("raise_left_arm", "lift_left_arm", "left_arm_up", "arm_up"):
        _write(source, *_raise_left_arm(source, frames=13), folder / f"{name}.bvh", fps=30.0)

    def load(**overrides):
        config = load_config(MotionTrainConfig, None, {"clips_per_generator": 1, **overrides})
        return _load_clips(config, anny_mesh.skeleton)

    n_procedural = len(generator_names())
    clips, sources = load()
    assert sources == {"procedural": n_procedural, "external": 0}
    clips, sources = load(corpus=str(folder))  # corpus_mode=replace, the default
    assert sources == {"procedural": 0, "external": 4} and {c.generator for c in clips} == {"bvh"}
    clips, sources = load(corpus=str(folder), corpus_mode="join")
    assert sources == {"procedural": n_procedural, "external": 4} and len(clips) == n_procedural + 4
    assert [c.generator for c in clips[-4:]] == ["bvh"] * 4 and clips[0].category != "imported"
    assert "raise left arm" in {lab for c in clips for lab in c.labels}
    with pytest.raises(ConfigError, match="corpus_mode"):
        load_config(MotionTrainConfig, None, {"corpus_mode": "merge"})
