"""The engine's average face: every method's baseline (what a player gets before touching a slider)."""
from __future__ import annotations

from face2param.engines.base import EngineParams


def fit_mean(engine) -> EngineParams:
    return engine.spec.defaults()
