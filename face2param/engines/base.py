"""What every avatar engine offers the photo -> parameter methods (face-to-parameter, imitator, translator).

A game's character creator is described by a `ParamSpec`: named continuous sliders in [0, 1] and discrete
slots (hair style, skin tone, ...). `EngineParams` is one filled-in parameter set (params.json), validated at
the boundary. Engines implement the `AvatarEngine` protocol; engines with a torch-differentiable path also
implement `DifferentiableEngine` (render_tensor / landmarks_tensor), which the iterative fitting uses.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from avatarclip_core.errors import UserInputError

if TYPE_CHECKING:  # torch only where tensors are made: the web process validates params without it
    import torch

    from avatarclip_core.body.types import RiggedMesh

JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def engine_memo(engine, name: str) -> dict:
    """A cache that lives on the engine object and dies with it (tables, priors, renders worked out from
    one engine). Never a module dict keyed by id(engine): Python hands a collected engine's id to a new
    object, which then got the old engine's entries (measured: a test's imitator-backed engine left its
    landmark Gauss-Newton matrix to the next Anny engine, whose one-shot fits came out 13 % at bound)."""
    return engine.__dict__.setdefault(f"_memo_{name}", {})


def engine_name(engine) -> str:
    """The engine's name in params.json and artifact folders (an engine may set `name`)."""
    return getattr(engine, "name", None) or ("anny_face" if type(engine).__name__ == "AnnyFaceEngine"
                                             else type(engine).__name__)


class InvalidEngineParamsError(UserInputError):
    """A parameter name, value or option that the engine's spec does not accept."""


def _hint(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class ContinuousParam:
    """One named slider. Values are always in [minimum, maximum] = [0, 1] for game engines."""

    name: str
    group: str
    description: str = ""
    minimum: float = 0.0
    maximum: float = 1.0
    default: float = 0.5


@dataclass(frozen=True)
class DiscreteSlot:
    """One discrete choice (an asset or a palette entry)."""

    name: str
    options: list[str]
    default: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.default not in self.options:
            raise ValueError(f"slot {self.name!r}: default {self.default!r} is not one of its options")


@dataclass(frozen=True)
class ParamSpec:
    continuous: list[ContinuousParam]
    discrete: list[DiscreteSlot]

    @property
    def continuous_names(self) -> list[str]:
        return [p.name for p in self.continuous]

    @property
    def slot_names(self) -> list[str]:
        return [s.name for s in self.discrete]

    def slot(self, name: str) -> DiscreteSlot:
        for s in self.discrete:
            if s.name == name:
                return s
        raise InvalidEngineParamsError(f"unknown discrete slot {name!r}{_hint(name, self.slot_names)}")

    def defaults(self) -> "EngineParams":
        return EngineParams({p.name: p.default for p in self.continuous}, {s.name: s.default for s in self.discrete})

    def to_json_schema(self, title: str = "avatar engine parameters") -> dict:
        """A JSON-Schema (draft 2020-12) document that a params.json must satisfy."""
        cont = {p.name: {"type": "number", "minimum": p.minimum, "maximum": p.maximum, "default": p.default,
                         "description": f"[{p.group}] {p.description}".strip()} for p in self.continuous}
        disc = {s.name: {"enum": list(s.options), "default": s.default, "description": s.description}
                for s in self.discrete}
        return {
            "$schema": JSON_SCHEMA_DRAFT,
            "title": title,
            "type": "object",
            "properties": {
                "continuous": {"type": "object", "properties": cont, "additionalProperties": False},
                "discrete": {"type": "object", "properties": disc, "additionalProperties": False},
                # what `avatar photo` writes beside the parameters (params.json), all optional
                "engine": {"type": "string"},
                "version": {"type": "integer"},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "method": {"type": "string"},
                "losses": {"type": "object"},
                "timings": {"type": "object"},
                "attributes": {"type": "object"},  # photo attributes: detected, set, sources (methods/attribute_slots.py)
                "source_job": {"type": "string"},  # an edited result: the job whose parameters were edited
                "export": {"type": "object"},  # the files written and the export profile (avatar_studio pipelines)
            },
            "required": ["continuous", "discrete"],
            "additionalProperties": False,
        }

    def to_json(self) -> dict:
        return {"continuous": [asdict(p) for p in self.continuous],
                "discrete": [{"name": s.name, "options": list(s.options), "default": s.default,
                              "description": s.description} for s in self.discrete]}

    @classmethod
    def from_json(cls, data: dict) -> "ParamSpec":
        try:
            cont = [ContinuousParam(**p) for p in data.get("continuous", [])]
            disc = [DiscreteSlot(name=s["name"], options=list(s["options"]), default=s.get("default", s["options"][0]),
                                 description=s.get("description", "")) for s in data.get("discrete", [])]
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise UserInputError(f"invalid engine spec: {exc}") from None
        return cls(cont, disc)


@dataclass
class EngineParams:
    """One parameter set: continuous name -> value in [0, 1], discrete slot -> option name."""

    continuous: dict[str, float] = field(default_factory=dict)
    discrete: dict[str, str] = field(default_factory=dict)

    def validated(self, spec: ParamSpec) -> "EngineParams":
        """The full parameter set (unnamed entries at their defaults); raises on anything unknown."""
        by_name = {p.name: p for p in spec.continuous}
        cont = {p.name: float(p.default) for p in spec.continuous}
        for name, value in self.continuous.items():
            if name not in by_name:
                raise InvalidEngineParamsError(f"unknown continuous parameter {name!r}{_hint(name, by_name)}")
            try:
                if isinstance(value, bool):  # JSON true/false is not a slider value (float(True) would be 1.0)
                    raise TypeError
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidEngineParamsError(f"parameter {name!r} needs a number, got {value!r}") from None
            p = by_name[name]
            if not (math.isfinite(value) and p.minimum <= value <= p.maximum):
                raise InvalidEngineParamsError(
                    f"parameter {name!r} = {value:g} is out of range [{p.minimum:g}, {p.maximum:g}]")
            cont[name] = value
        disc = {s.name: s.default for s in spec.discrete}
        for name, option in self.discrete.items():
            slot = spec.slot(name)
            if option not in slot.options:
                raise InvalidEngineParamsError(
                    f"slot {name!r} has no option {option!r}{_hint(str(option), slot.options)} "
                    f"(options: {', '.join(slot.options)})")
            disc[name] = option
        return EngineParams(cont, disc)

    def continuous_vector(self, spec: ParamSpec, device=None) -> torch.Tensor:
        """(N,) values in spec order (validate first)."""
        import torch

        full = self.validated(spec)
        return torch.tensor([full.continuous[n] for n in spec.continuous_names], dtype=torch.float32, device=device)

    def discrete_one_hot(self, spec: ParamSpec, device=None) -> dict[str, torch.Tensor]:
        """slot -> (options,) one-hot probabilities (the hard case of the softmax relaxation)."""
        import torch

        full = self.validated(spec)
        out = {}
        for s in spec.discrete:
            v = torch.zeros(len(s.options), device=device)
            v[s.options.index(full.discrete[s.name])] = 1.0
            out[s.name] = v
        return out

    @classmethod
    def from_tensors(cls, spec: ParamSpec, continuous: torch.Tensor, discrete_probs: dict[str, torch.Tensor]) -> "EngineParams":
        """Read one (unbatched) parameter set back from tensors: argmax for every discrete slot."""
        values = continuous.detach().reshape(-1).clamp(0, 1).tolist()
        disc = {s.name: s.options[int(discrete_probs[s.name].detach().reshape(-1).argmax())]
                for s in spec.discrete if s.name in discrete_probs}
        return cls(dict(zip(spec.continuous_names, values)), disc)

    def to_json(self) -> dict:
        return {"continuous": dict(self.continuous), "discrete": dict(self.discrete)}

    @classmethod
    def from_json(cls, data) -> "EngineParams":
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InvalidEngineParamsError(f"params are not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= {"continuous", "discrete", *PARAMS_FILE_METADATA}:
            raise InvalidEngineParamsError("params must be an object with 'continuous' and 'discrete' entries")
        cont, disc = data.get("continuous", {}), data.get("discrete", {})
        if not isinstance(cont, dict) or not isinstance(disc, dict):
            raise InvalidEngineParamsError("'continuous' and 'discrete' must be objects (name -> value)")
        return cls(dict(cont), dict(disc))


# keys of params.json (as `avatar photo` writes it) besides the parameters: accepted and ignored on reading
PARAMS_FILE_METADATA = ("engine", "version", "warnings", "method", "losses", "timings", "source_job", "attributes",
                        "export")


@dataclass
class Landmarks:
    """Landmarks of one parameter set: 3-D points (L, 3) in world space and their pixel positions
    (L, 2) (x right, y down, origin at the top-left corner) in a render of `size` pixels."""

    points3d: torch.Tensor
    points2d: torch.Tensor
    size: int
    scheme: str  # "ibug68" | "mediapipe478"


@runtime_checkable
class AvatarEngine(Protocol):
    """A character creator: parameters in, image / landmarks / rigged avatar out."""

    @property
    def spec(self) -> ParamSpec: ...

    def render(self, params: EngineParams, size: int = 512) -> torch.Tensor:
        """(H, W, 3) float image in [0, 1] from the engine's front face camera."""
        ...

    def landmarks(self, params: EngineParams, size: int = 512, scheme: str = "ibug68") -> Landmarks: ...

    def build_avatar(self, params: EngineParams) -> RiggedMesh: ...


@runtime_checkable
class DifferentiableEngine(AvatarEngine, Protocol):
    """An engine whose render and landmarks are torch functions of the parameters."""

    def render_tensor(self, continuous: torch.Tensor, discrete_probs: dict[str, torch.Tensor],
                      size: int = 128) -> torch.Tensor:
        """continuous (B, N) in [0, 1], discrete_probs slot -> (B, options) -> (B, 3, H, W) images."""
        ...

    def landmarks_tensor(self, continuous: torch.Tensor, scheme: str = "ibug68") -> torch.Tensor:
        """(B, N) -> (B, L, 3) world-space landmarks."""
        ...

    def project_landmarks(self, points: torch.Tensor, size: int) -> torch.Tensor:
        """(B, L, 3) -> (B, L, 2) pixel positions in a render of `size` pixels."""
        ...
