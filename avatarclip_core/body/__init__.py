"""Body models (Anny by default, SMPL by path) and the one LBS / forward-kinematics module."""
from avatarclip_core.body.factory import BodyConfig, create_body_model
from avatarclip_core.body.model import BodyModel, InvalidSliderError, SliderSpec
from avatarclip_core.body.types import Motion, RiggedMesh, Skeleton

__all__ = [
    "BodyConfig", "BodyModel", "InvalidSliderError", "Motion", "RiggedMesh", "Skeleton", "SliderSpec",
    "create_body_model",
]
