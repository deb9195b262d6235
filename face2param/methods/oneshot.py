"""One-shot fitting (Fast F2P, TPAMI 3.5): the trained translator T maps the photo's aligned landmarks,
colour cues and identity descriptor to engine parameters in one forward pass. T predicts the colour
slots; the other discrete slots (hair style, beard, brows, glasses) are chosen after every method by
fit() through the shared cue-based chooser (methods/slots.py), so this module leaves them at defaults."""
from __future__ import annotations

from pathlib import Path

import torch

from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig
from face2param.engines.base import EngineParams
from face2param.methods.target import FitTarget

PACKAGED = Path(__file__).resolve().parent.parent / "artifacts" / "preview"
TRAIN_COMMAND = "avatar train face2param"


class TranslatorUnavailableError(UserInputError):
    """No trained translator for this engine (or one trained for another engine's parameters)."""


def trained_artifact_dir() -> Path:
    """Where `avatar train face2param` writes by default: $AVATAR_DATA_DIR/face2param/translator."""
    from avatarclip_core.paths import data_dir

    return data_dir() / "face2param" / "translator"


def default_artifact_dir(config: Face2ParamConfig) -> Path:
    """oneshot.artifact_dir when set; else a translator trained into the data folder; else the packaged one."""
    from avatarclip_core.artifacts import resolve_artifact_dir
    from face2param.translator.model import WEIGHTS

    # no set at all: the packaged folder, whose missing weights load_for_engine reports
    return resolve_artifact_dir(config.oneshot.artifact_dir, trained_artifact_dir(), PACKAGED, WEIGHTS) or PACKAGED


_LOADED: dict = {}


def load_for_engine(config: Face2ParamConfig, engine, device):
    """(net, meta, buffers) cached per folder and device; raises TranslatorUnavailableError."""
    from face2param.translator.model import META, WEIGHTS, TranslatorArtifactError, load_translator

    folder = default_artifact_dir(config)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise TranslatorUnavailableError(
            f"no trained one-shot translator in {folder} (needs {WEIGHTS} and {META}); train one with "
            f"`{TRAIN_COMMAND}` (a few CPU minutes) or set oneshot.artifact_dir to a trained folder")
    key = (str(folder), str(device), (folder / WEIGHTS).stat().st_mtime_ns)
    if key not in _LOADED:
        try:
            _LOADED[key] = load_translator(folder, device)
        except TranslatorArtifactError as exc:
            raise TranslatorUnavailableError(f"the translator in {folder} is damaged or inconsistent ({exc}); "
                                             f"retrain it with `{TRAIN_COMMAND}`") from exc
    net, meta, buffers = _LOADED[key]
    if meta["continuous_names"] != engine.spec.continuous_names:
        raise TranslatorUnavailableError(
            f"the translator in {folder} was trained for other engine parameters; retrain it with `{TRAIN_COMMAND}`")
    # colour options are only ever appended (assets/colours.py): a translator trained on the shorter list
    # predicts over the options it knows, which keep their positions (the new ones stay unpredicted)
    for slot, trained in meta.get("slot_options", {}).items():
        if engine.spec.slot(slot).options[:len(trained)] != list(trained):
            raise TranslatorUnavailableError(
                f"the translator in {folder} was trained for other {slot} options; retrain it with `{TRAIN_COMMAND}`")
    return net, meta, buffers


def fit_oneshot(target: FitTarget, engine, config: Face2ParamConfig, device) -> tuple[EngineParams, dict, list[str]]:
    """One photo -> (params, losses, warnings) in one forward pass of T."""
    from face2param.methods.face_prior import face_prior_for, landmark_hessian
    from face2param.translator.model import TranslatorArtifactError, features_from_targets

    net, meta, buffers = load_for_engine(config, engine, device)
    try:
        features, warnings = features_from_targets([target], meta, buffers, device)
    except TranslatorArtifactError as exc:
        raise TranslatorUnavailableError(str(exc)) from exc
    with torch.no_grad():
        x, logits = net(features)
        probs = net.probabilities(logits)
    losses = {"slot_confidence": {k: round(float(v.max()), 4) for k, v in probs.items()}}
    prior = face_prior_for(engine, config.face_prior)
    if prior is not None:  # T's output through the iterative fit's face prior (pairs, bounds, mesh check)
        # the photo's attributes (gender, age, ...) are set on the params after the fit (fit.hold_continuous):
        # set them before the prior so its mesh check sees the head the user gets (measured: 6 of 26
        # one-shot fits on faces-identity failed the check once they were set afterwards)
        names = engine.spec.continuous_names
        held = [(names.index(k), float(v)) for k, v in target.fixed_continuous.items() if k in names]
        H, start = landmark_hessian(engine).clone(), prior.mean.clone()
        for index, value in held:
            x[:, index] = start[index] = value
            H[index, index] += 1e6  # held: the constrained projection does not move it
        x, report = prior.constrain_and_check(x, H, start)
        losses["face_prior"] = report[0]
    params = EngineParams.from_tensors(engine.spec, x[0], {k: v[0] for k, v in probs.items()})
    return params, losses, warnings
