"""Avatar engines for photo -> game parameters: the protocol (base), the differentiable Anny engine and
a black-box adapter for external character creators."""
from .base import (
    AvatarEngine,
    ContinuousParam,
    DifferentiableEngine,
    DiscreteSlot,
    EngineParams,
    InvalidEngineParamsError,
    Landmarks,
    ParamSpec,
)

__all__ = ["AvatarEngine", "ContinuousParam", "DifferentiableEngine", "DiscreteSlot", "EngineParams",
           "InvalidEngineParamsError", "Landmarks", "ParamSpec", "AnnyFaceEngine", "ExternalEngine"]


def __getattr__(name):  # the engines import torch-heavy modules: load them on first use
    if name == "AnnyFaceEngine":
        from .anny_engine import AnnyFaceEngine
        return AnnyFaceEngine
    if name == "ExternalEngine":
        from .external import ExternalEngine
        return ExternalEngine
    raise AttributeError(name)
