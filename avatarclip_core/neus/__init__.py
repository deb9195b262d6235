"""NeuS implicit avatar (AvatarCLIP Sec. 3.3.2): template fit, CLIP sculpting, mesh extraction."""
from .config import PRESETS, NeusConfig, neus_preset
from .networks import NeusModel, Normalizer

__all__ = ["PRESETS", "NeusConfig", "NeusModel", "Normalizer", "neus_preset"]
