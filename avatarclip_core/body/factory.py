"""`create_body_model(config)`: the one place that picks a body adapter (like smplx.create), by name from
the BODY_MODELS registry (importing the adapters here registers them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from avatarclip_core.body.anny_body import AnnyConfig
from avatarclip_core.body.model import BODY_MODELS, BodyModel
from avatarclip_core.body.smpl_body import SmplConfig
from avatarclip_core.device import resolve_device


@dataclass
class BodyConfig:
    model: Literal["anny", "smpl"] = "anny"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    anny: AnnyConfig = field(default_factory=AnnyConfig)
    smpl: SmplConfig = field(default_factory=SmplConfig)


def create_body_model(config: BodyConfig | None = None) -> BodyModel:
    """The registered adapter `config.model` with its own section of the config (`config.<model>`),
    one instance per configuration and device (the adapter's `load`)."""
    config = config or BodyConfig()
    entry = BODY_MODELS.find(config.model)
    return entry.cls.load(getattr(config, config.model), resolve_device(config.device))
