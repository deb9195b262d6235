"""Rigging sculpted meshes: skin-weight transfer from the template and inverse LBS (AvatarCLIP 3.3.3)."""
from avatarclip_core.rig.transfer import RigConfig, rig_like_template, smooth_skin_weights, transfer_skin_weights

__all__ = ["RigConfig", "rig_like_template", "smooth_skin_weights", "transfer_skin_weights"]
