"""`ExternalEngine`: a game's own character creator as a black box (no gradients: methods use the imitator).

The spec comes from a JSON file (`ParamSpec.to_json()` layout). Rendering either runs a command
(`cmd` with `{params}` and `{out}` placeholders, e.g. "python render.py {params} {out}") that writes a PNG,
or POSTs the params JSON to an HTTP endpoint that answers with PNG bytes.
"""
from __future__ import annotations

import io
import json
import shlex
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.errors import UserInputError

from .base import EngineParams, Landmarks, ParamSpec


class ExternalEngineError(RuntimeError):
    """The external renderer failed (its own output is in the message)."""


class ExternalEngine:
    @classmethod
    def from_config(cls, config) -> "ExternalEngine":
        """engine_kind=external: the engine_external section of a Face2ParamConfig."""
        cfg = config.engine_external
        if not cfg.spec:
            raise UserInputError("engine_kind=external needs engine_external.spec (the engine's parameter spec JSON)")
        engine = cls(cfg.spec, command=cfg.command or None, url=cfg.url or None, timeout_s=cfg.timeout_s)
        engine.name = cfg.name or Path(cfg.spec).stem
        return engine

    def __init__(self, spec_path: str | Path, command: str | None = None, url: str | None = None, timeout_s: float = 60.0):
        path = Path(spec_path)
        if not path.is_file():
            raise UserInputError(f"engine spec {path} does not exist")
        try:
            self._spec = ParamSpec.from_json(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"engine spec {path} is not valid JSON: {exc}") from None
        if (command is None) == (url is None):
            raise UserInputError("an external engine needs exactly one of a command or a url")
        if command is not None and ("{params}" not in command or "{out}" not in command):
            raise UserInputError("the engine command must contain {params} and {out} placeholders")
        self.command, self.url, self.timeout_s = command, url, timeout_s

    @property
    def spec(self) -> ParamSpec:
        return self._spec

    def _png(self, payload: dict, size: int) -> bytes:
        payload = payload | {"size": size}
        if self.url is not None:
            request = urllib.request.Request(self.url, data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        with tempfile.TemporaryDirectory(prefix="external-engine-") as tmp:
            params_path, out_path = Path(tmp) / "params.json", Path(tmp) / "out.png"
            params_path.write_text(json.dumps(payload))
            argv = [a.replace("{params}", str(params_path)).replace("{out}", str(out_path))
                    for a in shlex.split(self.command)]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
            if proc.returncode != 0 or not out_path.is_file():
                raise ExternalEngineError(f"engine command failed ({proc.returncode}): {proc.stderr[-1000:]}")
            return out_path.read_bytes()

    def render(self, params: EngineParams, size: int = 512) -> torch.Tensor:
        from PIL import Image

        full = params.validated(self._spec)
        image = Image.open(io.BytesIO(self._png(full.to_json(), size))).convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size))
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)

    def landmarks(self, params: EngineParams, size: int = 512, scheme: str = "ibug68") -> Landmarks:
        raise NotImplementedError("external engines expose no landmarks: detect them on the render")

    def build_avatar(self, params: EngineParams):
        raise NotImplementedError("external engines build their avatars themselves from params.json")
