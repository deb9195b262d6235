"""Rigging sculpted meshes: skin-weight transfer from the template and inverse LBS (AvatarCLIP 3.3.3).
Names load their module on first use: the exporters import rig.rest_pose without transfer's scipy."""
from avatarclip_core.lazy import lazy_exports

__getattr__, __all__ = lazy_exports({
    "avatarclip_core.rig.transfer": "RigConfig rig_like_template smooth_skin_weights transfer_skin_weights"})
