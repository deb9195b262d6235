"""`ClipConfig`: which CLIP model scores images against text, and where its weights come from."""
from __future__ import annotations

from dataclasses import dataclass
from avatarclip_core.config.ranges import Pixels


@dataclass
class ClipConfig:
    """CLIP for the AvatarCLIP losses and queries (open_clip names).

    model: open_clip architecture name ("ViT-B-32" in the paper).
    pretrained: open_clip pretrained tag ("openai"); downloaded once into the data folder's
        cache/open_clip on a machine with internet. With ``checkpoint`` set, the tag still picks
        the tag's activation (QuickGELU for "openai") and normalisation, when open_clip knows it.
    checkpoint: a local weights file for ``model`` (e.g. OpenAI's ViT-B-32.pt or an open_clip
        .bin/.safetensors); "" = use the tag.
    device: auto | cpu | cuda | cuda:N.
    image_size: side in pixels of the renders fed to CLIP (they are resized to the model's own
        input resolution inside ``encode_image``).
    """

    model: str = "ViT-B-32"
    pretrained: str = "openai"
    checkpoint: str = ""
    device: str = "auto"
    image_size: Pixels = 224
