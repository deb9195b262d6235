"""The one forward-kinematics and linear-blend-skinning implementation (pure, batched functions).

Every module that poses a body (export previews, motion, rigging, rendering) calls these; body
models only provide rest data. Rotations are local to each joint's rest frame, so the identity is the
rest pose, exactly as a glTF node's animated rotation composes with its rest rotation.
"""
from __future__ import annotations

import torch


def import_roma():
    """roma (anny's rotation library too), imported on first use and without torch._dynamo.

    roma.mappings wraps two autograd functions in `torch._dynamo.disable` when it is imported, which
    imports torch._dynamo (and sympy, triton): 1.3-2.4 s of a cold start, measured, though roma only
    calls the wrapped functions inside torch.compile (when `torch.compiler.is_compiling()`). So roma
    is imported beside a stand-in `torch._dynamo` (avatarclip_core.lazy.stand_ins) whose `disable(fn)`
    hands over to the real one on the first call; a later `import torch._dynamo` is the real one.
    Should a newer roma ask more of it, the half import is forgotten and roma imported plainly.
    Call it before importing anny (anny_body.py does)."""
    import sys

    if "roma" not in sys.modules and "torch._dynamo" not in sys.modules:
        from avatarclip_core.lazy import stand_ins

        try:
            with stand_ins({"torch._dynamo": _dynamo_stand_in()}):
                import roma
        except Exception:  # roma needs more of torch._dynamo than disable(): the plain import below
            for name in [n for n in sys.modules if n == "roma" or n.startswith("roma.")]:
                del sys.modules[name]
    import roma

    return roma


def _dynamo_stand_in():
    import functools
    import types

    def disable(fn=None, recursive=True, **kwargs):
        if fn is None:  # as a decorator factory: @disable(recursive=False)
            return lambda f: disable(f, recursive, **kwargs)

        @functools.wraps(fn)
        def call(*args, **kw):
            import torch._dynamo

            return torch._dynamo.disable(fn, recursive, **kwargs)(*args, **kw)

        return call

    module = types.ModuleType("torch._dynamo", "a stand-in while roma is imported (lbs.import_roma)")
    module.disable = disable
    return module


def rest_local_transforms(rest_world: torch.Tensor, parents: list[int]) -> torch.Tensor:
    """(..., J, 4, 4) transform of each joint relative to its parent in the rest pose (root: world)."""
    parent_idx = [max(p, 0) for p in parents]
    rel = torch.linalg.inv(rest_world[..., parent_idx, :, :]) @ rest_world
    is_root = torch.tensor([p < 0 for p in parents], device=rest_world.device)
    return torch.where(is_root[:, None, None], rest_world, rel)


def forward_kinematics(
    rest_world: torch.Tensor,
    parents: list[int],
    rotations: torch.Tensor,
    root_translation: torch.Tensor | None = None,
) -> torch.Tensor:
    """World joint transforms for a batch of poses.

    rest_world: (J, 4, 4) or (B, J, 4, 4) rest transforms; rotations: (B, J, 3, 3) local rotations
    relative to the rest frames; root_translation: (B, 3) world offset of the root.
    Returns (B, J, 4, 4).
    """
    B, J = rotations.shape[:2]
    local_rest = rest_local_transforms(rest_world, parents)
    if local_rest.dim() == 3:
        local_rest = local_rest.unsqueeze(0)
    pose = torch.zeros(B, J, 4, 4, dtype=rotations.dtype, device=rotations.device)
    pose[..., :3, :3] = rotations
    pose[..., 3, 3] = 1.0
    local = local_rest @ pose  # rotate about the joint, inside its rest frame
    if root_translation is not None:
        offset = torch.zeros_like(local)
        offset[:, 0, :3, 3] = root_translation
        local = local + offset
    world: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        world.append(local[:, j] if p < 0 else world[p] @ local[:, j])
    return torch.stack(world, dim=1)


def skinning_transforms(world: torch.Tensor, rest_world: torch.Tensor) -> torch.Tensor:
    """(B, J, 4, 4) transforms taking rest-pose points to posed points (world @ inverse bind)."""
    inverse_bind = torch.linalg.inv(rest_world)
    return world @ (inverse_bind.unsqueeze(0) if inverse_bind.dim() == 3 else inverse_bind)


def dense_skin_weights(skin_indices: torch.Tensor, skin_weights: torch.Tensor, num_joints: int) -> torch.Tensor:
    """(V, J) dense weight matrix from (V, K) sparse indices/weights (repeated indices add up)."""
    V = skin_indices.shape[0]
    dense = torch.zeros(V, num_joints, dtype=skin_weights.dtype, device=skin_weights.device)
    return dense.scatter_add_(1, skin_indices.long(), skin_weights)


def blend_transforms(dense_weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(B, V, 4, 4) per-vertex blended transforms: sum_j w_vj T_j, as one matmul."""
    B, J = transforms.shape[:2]
    blended = dense_weights.unsqueeze(0) @ transforms.reshape(B, J, 16)
    return blended.reshape(B, -1, 4, 4)


def linear_blend_skinning(
    vertices: torch.Tensor, dense_weights: torch.Tensor, transforms: torch.Tensor
) -> torch.Tensor:
    """Pose rest vertices. vertices: (V, 3) or (B, V, 3); dense_weights: (V, J);
    transforms: (B, J, 4, 4) from `skinning_transforms`. Returns (B, V, 3)."""
    A = blend_transforms(dense_weights, transforms)
    v = vertices if vertices.dim() == 3 else vertices.unsqueeze(0)
    return (A[..., :3, :3] @ v.unsqueeze(-1)).squeeze(-1) + A[..., :3, 3]


def inverse_linear_blend_skinning(
    posed_vertices: torch.Tensor, dense_weights: torch.Tensor, transforms: torch.Tensor
) -> torch.Tensor:
    """Undo `linear_blend_skinning`: bring posed vertices (B, V, 3) back to the rest pose by
    inverting each vertex's blended transform (AvatarCLIP's inverse LBS, Sec. 3.3.3)."""
    A = blend_transforms(dense_weights, transforms)
    A_inv = torch.linalg.inv(A)
    return (A_inv[..., :3, :3] @ posed_vertices.unsqueeze(-1)).squeeze(-1) + A_inv[..., :3, 3]


def pose_body(
    rest_vertices: torch.Tensor,
    rest_world: torch.Tensor,
    parents: list[int],
    dense_weights: torch.Tensor,
    rotations: torch.Tensor,
    root_translation: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FK + LBS in one call. Returns posed vertices (B, V, 3) and world joint transforms (B, J, 4, 4)."""
    world = forward_kinematics(rest_world, parents, rotations, root_translation)
    verts = linear_blend_skinning(rest_vertices, dense_weights, skinning_transforms(world, rest_world))
    return verts, world


# Rotation conversions used across the project (roma's quaternions are XYZW, as in glTF).
def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    return import_roma().rotvec_to_rotmat(axis_angle)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    return import_roma().rotmat_to_rotvec(matrix)


def matrix_to_quaternion_xyzw(matrix: torch.Tensor) -> torch.Tensor:
    return import_roma().rotmat_to_unitquat(matrix)


def quaternion_xyzw_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    return import_roma().unitquat_to_rotmat(quat)


def euler_to_matrix(convention: str, angles: torch.Tensor, degrees: bool = False) -> torch.Tensor:
    """Intrinsic/extrinsic Euler angles (roma convention string, e.g. 'ZXY' intrinsic uppercase)."""
    return import_roma().euler_to_rotmat(convention, angles, degrees=degrees)


def matrix_to_euler(convention: str, matrix: torch.Tensor, degrees: bool = False) -> torch.Tensor:
    """(..., 3) Euler angles, inverse of `euler_to_matrix`."""
    return import_roma().rotmat_to_euler(convention, matrix, degrees=degrees)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) continuous 6-D rotations (Zhou et al. 2019) -> (..., 3, 3).

    The 6 numbers are the first two matrix columns laid out row by row, as a (3, 2) block (the
    layout VPoser's decoder uses); Gram-Schmidt makes them orthonormal, the cross product the third.
    """
    return import_roma().special_gramschmidt(d6.reshape(*d6.shape[:-1], 3, 2))


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, inverse of `rotation_6d_to_matrix`."""
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)
