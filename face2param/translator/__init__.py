"""Fast F2P translator T (TPAMI "Neural rendering for game character auto-creation", Table 4): a photo's
aligned landmarks and colour cues -> engine parameters in one forward pass. `model` holds the network
and its input features, `train` its self-supervised training on engine samples."""
from .model import TranslatorNet, face_features, load_translator, save_translator

__all__ = ["TranslatorNet", "face_features", "load_translator", "save_translator"]
