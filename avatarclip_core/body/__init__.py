"""Body models (Anny by default, SMPL by path) and the one LBS / forward-kinematics module."""
from avatarclip_core.body.types import Motion, RiggedMesh, Skeleton

__all__ = ["Motion", "RiggedMesh", "Skeleton"]
