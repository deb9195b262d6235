"""A trained imitator on disk: imitator.pt (G's and the regressor's state dicts) + meta.json (the
engine's spec, the ImitatorConfig it was trained with, metrics, detection failures).

Default folder: $AVATAR_DATA_DIR/face2param/imitator/<engine name> (imitator.artifact_dir overrides)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig, ImitatorConfig
from face2param.engines.base import ParamSpec
from face2param.imitator.model import ImitatorGenerator, input_size
from face2param.imitator.regressor import LandmarkRegressor

WEIGHTS, META = "imitator.pt", "meta.json"
TRAIN_COMMAND = ('avatar train face2param --imitator --engine-spec SPEC.json --engine-command '
                 '"python render.py {params} {out}"  (or --engine-url URL)')


class ImitatorUnavailableError(UserInputError):
    """No usable trained imitator for this engine: missing, unreadable, or trained for another spec."""


def artifact_dir(config: Face2ParamConfig, engine) -> Path:
    from avatarclip_core.paths import data_dir
    from face2param.engines.base import engine_name

    if config.imitator.artifact_dir:
        return Path(config.imitator.artifact_dir).expanduser()
    return data_dir() / "face2param" / "imitator" / engine_name(engine)


def save_imitator(folder: Path, generator: ImitatorGenerator, regressor: LandmarkRegressor, meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {"generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
             "regressor": {k: v.detach().cpu() for k, v in regressor.state_dict().items()}}
    torch.save(state, folder / WEIGHTS)
    (folder / META).write_text(json.dumps(meta, indent=2))
    return folder


def load_imitator(folder: Path, spec: ParamSpec, device) -> tuple[ImitatorGenerator, LandmarkRegressor, dict]:
    """(G, regressor) in eval mode on device and the meta; ImitatorUnavailableError when the folder has
    no trained imitator or one trained for different engine parameters."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise ImitatorUnavailableError(
            f"no trained imitator in {folder} (needs {WEIGHTS} and {META}): the engine only renders, so "
            f"iterative fitting needs one; train it with `{TRAIN_COMMAND}` or set imitator.artifact_dir")
    try:
        meta = json.loads((folder / META).read_text())
        trained_spec = ParamSpec.from_json(meta["spec"])
        config = ImitatorConfig(**meta["imitator"])
        state = torch.load(folder / WEIGHTS, map_location=device, weights_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ImitatorUnavailableError(f"the imitator in {folder} is unreadable ({exc}); retrain it") from None
    if trained_spec.to_json() != spec.to_json():
        raise ImitatorUnavailableError(
            f"the imitator in {folder} was trained for other engine parameters "
            f"({_spec_difference(trained_spec, spec)}); retrain it with `{TRAIN_COMMAND}`")
    generator = ImitatorGenerator(input_size(spec), config.image_size, config.base_channels)
    regressor = LandmarkRegressor(config.image_size, config.regressor_channels)
    try:
        generator.load_state_dict(state["generator"])
        regressor.load_state_dict(state["regressor"])
    except (KeyError, RuntimeError) as exc:
        raise ImitatorUnavailableError(f"the imitator weights in {folder} do not match its meta.json ({exc})") from None
    return generator.to(device).eval(), regressor.to(device).eval(), meta


def _spec_difference(trained: ParamSpec, current: ParamSpec) -> str:
    missing = sorted(set(current.continuous_names) - set(trained.continuous_names))
    extra = sorted(set(trained.continuous_names) - set(current.continuous_names))
    if missing or extra:
        return f"sliders missing from it: {missing[:5]}, sliders it has that the engine lacks: {extra[:5]}"
    slots = [s.name for s, t in zip(current.discrete, trained.discrete) if s != t]
    if slots or len(current.discrete) != len(trained.discrete):
        return f"discrete slots differ: {slots or 'their number'}"
    return "slider order, ranges or defaults differ"
