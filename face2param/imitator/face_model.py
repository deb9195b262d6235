"""`ImitatorFaceModel`: a black-box engine seen through its imitator, as the iterative search's
FaceModel (methods/iterative.py): render(x, probs) = G(x, probs) and landmarks(x) = regressor(G(x))
with the slots at their defaults (the search relaxes colour slots only, which do not move landmarks).
The search's slopes come from its finite-difference Jacobian (one batched pass of G + regressor)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from face2param.engines.base import ParamSpec
from face2param.imitator.model import ImitatorGenerator, generator_input
from face2param.imitator.regressor import LandmarkRegressor

_LOADED: dict = {}


class ImitatorFaceModel:
    def __init__(self, spec: ParamSpec, generator: ImitatorGenerator, regressor: LandmarkRegressor):
        self.spec, self.generator, self.regressor = spec, generator, regressor
        self.size = generator.image_size
        device = generator.mean_image.device
        self.default_probs = {k: v.to(device) for k, v in spec.defaults().discrete_one_hot(spec).items()}

    def render(self, x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        full = {k: probs.get(k, v[None].expand(x.shape[0], -1)) for k, v in self.default_probs.items()}
        return self.generator(generator_input(self.spec, x, full))

    def landmarks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ibug68": self.regressor(self.render(x, {})) * self.size}


def imitator_face_model(config, engine, device) -> ImitatorFaceModel:
    """The trained imitator of `engine` (cached per folder, device and file version)."""
    from face2param.imitator.artifact import WEIGHTS, artifact_dir, load_imitator

    folder = artifact_dir(config, engine)
    weights = Path(folder) / WEIGHTS
    spec_key = json.dumps(engine.spec.to_json(), sort_keys=True)
    key = (str(folder), str(device), weights.stat().st_mtime_ns if weights.is_file() else None, spec_key)
    if key not in _LOADED:
        generator, regressor, _ = load_imitator(folder, engine.spec, device)
        _LOADED[key] = (generator, regressor)
    generator, regressor = _LOADED[key]
    return ImitatorFaceModel(engine.spec, generator, regressor)
