"""`create_body_model(config)`: the one place that picks a body adapter (like smplx.create)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from avatarclip_core.body.anny_body import AnnyConfig, load_anny_body
from avatarclip_core.body.model import BodyModel
from avatarclip_core.body.smpl_body import SmplBody, SmplConfig
from avatarclip_core.device import resolve_device
from avatarclip_core.errors import UserInputError


@dataclass
class BodyConfig:
    model: Literal["anny", "smpl"] = "anny"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    anny: AnnyConfig = field(default_factory=AnnyConfig)
    smpl: SmplConfig = field(default_factory=SmplConfig)


_SMPL_CACHE: dict[tuple, SmplBody] = {}


def create_body_model(config: BodyConfig | None = None) -> BodyModel:
    config = config or BodyConfig()
    device = resolve_device(config.device)
    if config.model == "anny":
        return load_anny_body(config.anny, device)
    if config.model == "smpl":
        key = (config.smpl.model_path, config.smpl.gender, config.smpl.num_betas, device)
        if key not in _SMPL_CACHE:
            _SMPL_CACHE[key] = SmplBody(SmplConfig(*key[:3]), device)
        return _SMPL_CACHE[key]
    raise UserInputError(f"unknown body model {config.model!r} (anny or smpl)")
