"""Fitting methods by name (Face2ParamConfig.method, `avatar photo --method`). A method is a function
`run(job: MethodJob) -> MethodOutcome`; a new one is one module with that function plus one line here
(and its name in avatarclip_core.config.limits.PHOTO_METHODS, the Literal the job API checks at submit).
Lazy entries: listing the names imports no torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from avatarclip_core.registry import Registry

FIT_METHODS = Registry("fitting method", "method")
FIT_METHODS.register_lazy("auto", "face2param.methods.runners:run_auto", "face2param.config:MethodChoiceConfig")
FIT_METHODS.register_lazy("iterative", "face2param.methods.runners:run_iterative", "face2param.config:IterativeConfig")
FIT_METHODS.register_lazy("oneshot", "face2param.methods.runners:run_oneshot", "face2param.config:OneShotConfig")
FIT_METHODS.register_lazy("mean", "face2param.methods.runners:run_mean")


@dataclass
class MethodJob:
    """What every method gets: the photo's target, the engine (and its device), the whole config."""
    target: Any  # methods.target.FitTarget
    engine: Any
    config: Any  # Face2ParamConfig
    device: Any
    progress: Callable | None = None


@dataclass
class MethodOutcome:
    params: Any  # EngineParams
    losses: dict
    method: str  # the method that ran (auto resolved; a fallback names the method it fell back to)
    warnings: list[str] = field(default_factory=list)


def run_method(name: str, job: MethodJob) -> MethodOutcome:
    """Run the method registered as `name` (an unknown name: UserInputError listing the registered ones)."""
    return FIT_METHODS.find(name).cls(job)
