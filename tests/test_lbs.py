import roma
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, Skeleton


def _chain(J=5):
    parents = [-1, 0, 1, 2, 1][:J]
    rest = torch.eye(4).repeat(J, 1, 1)
    torch.manual_seed(0)
    rest[:, :3, :3] = roma.random_rotmat(J)
    rest[:, :3, 3] = torch.randn(J, 3)
    return parents, rest


def test_identity_pose_is_rest_pose():
    parents, rest = _chain()
    world = lbs.forward_kinematics(rest, parents, torch.eye(3).repeat(2, 5, 1, 1))
    assert torch.allclose(world, rest.expand(2, 5, 4, 4), atol=1e-5)


def test_root_rotation_rotates_children_about_root():
    parents, rest = _chain()
    R = torch.eye(3).repeat(1, 5, 1, 1)
    rot = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.7, 0.0]))
    # A local rotation of the root, expressed in its rest frame, as a world rotation:
    R[0, 0] = rest[0, :3, :3].T @ rot @ rest[0, :3, :3]
    world = lbs.forward_kinematics(rest, parents, R)
    root = rest[0, :3, 3]
    expected = (rot @ (rest[:, :3, 3] - root).T).T + root
    assert torch.allclose(world[0, :, :3, 3], expected, atol=1e-5)


def test_lbs_then_inverse_lbs_round_trips_and_translation_moves_everything():
    parents, rest = _chain()
    V = torch.randn(50, 3)
    idx = torch.randint(0, 5, (50, 3))
    w = torch.rand(50, 3)
    w = w / w.sum(1, keepdim=True)
    dense = lbs.dense_skin_weights(idx, w, 5)
    assert torch.allclose(dense.sum(1), torch.ones(50))
    R = roma.random_rotmat((3, 5)) 
    world = lbs.forward_kinematics(rest, parents, R, torch.randn(3, 3))
    A = lbs.skinning_transforms(world, rest)
    posed = lbs.linear_blend_skinning(V, dense, A)
    back = lbs.inverse_linear_blend_skinning(posed, dense, A)
    assert torch.allclose(back, V.expand(3, 50, 3), atol=1e-4)
    shift = torch.tensor([[0.0, 0.0, 2.0]])
    moved, _ = lbs.pose_body(V, rest, parents, dense, torch.eye(3).repeat(1, 5, 1, 1), shift)
    assert torch.allclose(moved[0], V + shift, atol=1e-5)


def test_batched_rest_matches_shared_rest():
    parents, rest = _chain()
    R = roma.random_rotmat((2, 5))
    a = lbs.forward_kinematics(rest, parents, R)
    b = lbs.forward_kinematics(rest.expand(2, 5, 4, 4), parents, R)
    assert torch.allclose(a, b)


def test_types_reject_inconsistent_shapes():
    import pytest

    with pytest.raises(ValueError):
        Skeleton(["a", "b"], [-1, 0], torch.eye(4).repeat(3, 1, 1))
    with pytest.raises(ValueError):
        Skeleton(["a", "b"], [1, -1], torch.eye(4).repeat(2, 1, 1))
    with pytest.raises(ValueError):
        Motion(30, ["a"], torch.eye(3).repeat(4, 2, 1, 1), torch.zeros(4, 3))
