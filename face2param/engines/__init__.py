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
    engine_name,
)

__all__ = ["AvatarEngine", "ContinuousParam", "DifferentiableEngine", "DiscreteSlot", "EngineParams",
           "InvalidEngineParamsError", "Landmarks", "ParamSpec", "engine_name", "AnnyFaceEngine", "AnnyEngineConfig",
           "ExternalEngine", "load_anny_face_engine"]


def __getattr__(name):  # the engines import torch-heavy modules: load them on first use
    if name == "AnnyEngineConfig":  # plain data: no torch
        from .config import AnnyEngineConfig
        return AnnyEngineConfig
    if name in ("AnnyFaceEngine", "load_anny_face_engine"):
        from . import anny_engine
        return getattr(anny_engine, name)
    if name == "ExternalEngine":
        from .external import ExternalEngine
        return ExternalEngine
    raise AttributeError(name)
