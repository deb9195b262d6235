"""The `BodyModel` protocol every body adapter implements, and the slider description users see."""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import RiggedMesh, Skeleton
from avatarclip_core.errors import UserInputError
from avatarclip_core.registry import Registry

# body adapters by name: each registers itself with its config class (`body.<name>` in BodyConfig)
BODY_MODELS = Registry("body model", "body.model")

# Joints every body model must name, so motion code and tests can address them on any rig.
SEMANTIC_JOINTS = ("pelvis", "head", "left_wrist", "right_wrist", "left_ankle", "right_ankle")


class InvalidSliderError(UserInputError):
    """A slider name or value a body model does not accept (a user error: say which and why)."""


@dataclass(frozen=True)
class SliderSpec:
    """One named, continuous body-shape control with its documented range."""

    name: str
    minimum: float
    maximum: float
    default: float
    group: str  # e.g. "phenotype", "face", "torso" (for UIs)
    description: str = ""

    def check(self, value: float) -> float:
        value = float(value)
        if not (self.minimum <= value <= self.maximum):
            raise InvalidSliderError(
                f"slider '{self.name}' = {value:g} is out of range [{self.minimum:g}, {self.maximum:g}]"
            )
        return value


@runtime_checkable
class BodyModel(Protocol):
    """A parametric, rigged body. Outputs follow body.types conventions (metres, Y up, faces +Z)."""

    name: str
    faces: torch.Tensor  # (F, 3) long
    joint_names: list[str]
    parents: list[int]
    skin_indices: torch.Tensor  # (V, K)
    skin_weights: torch.Tensor  # (V, K)
    semantic_joints: dict[str, int]  # SEMANTIC_JOINTS -> joint index

    def sliders(self) -> list[SliderSpec]: ...

    def shape_vector(self, values: dict[str, float]) -> torch.Tensor:
        """(S,) shape parameters from named slider values (validated; unnamed ones at default)."""
        ...

    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices (B, V, 3) and rest joint transforms (B, J, 4, 4) for shapes (B, S)."""
        ...

    def forward(
        self, shape: torch.Tensor, rotations: torch.Tensor, root_translation: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed vertices (B, V, 3) and world joint transforms (B, J, 4, 4)."""
        ...

    def rigged_mesh(self, values: dict[str, float]) -> RiggedMesh: ...


def validate_slider_values(specs: list[SliderSpec], values: dict[str, float]) -> dict[str, float]:
    """Check names and ranges at the boundary; the error names the slider and a close match."""
    by_name = {s.name: s for s in specs}
    checked: dict[str, float] = {}
    for name, value in values.items():
        if name not in by_name:
            import difflib

            close = difflib.get_close_matches(name, by_name, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `avatar sliders` lists them"
            raise InvalidSliderError(f"unknown slider '{name}'{hint}")
        try:
            checked[name] = by_name[name].check(value)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidSliderError):
                raise
            raise InvalidSliderError(f"slider '{name}' needs a number, got {value!r}") from None
    return checked


_LOADED: dict[tuple, "SliderBody"] = {}
_LOAD_LOCK = threading.Lock()


class SliderBody:
    """What every body adapter shares once it has `rest(shape)`: `sliders()`, `shape_vector()`,
    `forward()` (the one LBS, lbs.pose_body) and `rigged_mesh()`. An adapter keeps its specs in
    `_specs` (ordered like the shape vector), its tensors on `device`, and names its meshes `mesh_name`."""

    _specs: list[SliderSpec]
    device: torch.device
    mesh_name: str = "avatar"

    @classmethod
    def load(cls, config, device: str) -> "SliderBody":
        """The process-wide instance for this adapter, configuration and device (a first build can take
        minutes: Anny's; later ones come from here)."""
        key = (cls, repr(config), device)
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(dataclasses.replace(config), device)
            return _LOADED[key]

    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, shape, rotations, root_translation=None):
        rest_verts, rest_world = self.rest(shape)
        return lbs.pose_body(rest_verts, rest_world, self.parents, self.dense_weights, rotations, root_translation)

    def rigged_mesh(self, values: dict[str, float]) -> RiggedMesh:
        with torch.no_grad():
            verts, world = self.rest(self.shape_vector(values))
        return RiggedMesh(
            vertices=verts[0].cpu(), faces=self.faces.cpu(), skeleton=skeleton_of(self, world[0].cpu()),
            skin_indices=self.skin_indices.cpu(), skin_weights=self.skin_weights.cpu(), name=self.mesh_name,
        )

    def sliders(self) -> list[SliderSpec]:
        return list(self._specs)

    def shape_vector(self, values: dict[str, float]) -> torch.Tensor:
        checked = validate_slider_values(self._specs, values)
        return torch.tensor([checked.get(s.name, s.default) for s in self._specs], device=self.device)


def skeleton_of(model: BodyModel, rest_world: torch.Tensor) -> Skeleton:
    return Skeleton(names=list(model.joint_names), parents=list(model.parents), rest_transforms=rest_world)
