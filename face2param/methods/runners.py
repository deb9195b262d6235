"""The built-in fitting methods as registry entries (methods/registry.py): each turns a MethodJob into a
MethodOutcome. `auto` follows TPAMI section 4.5 (iterative on high-resolution frontal faces, one-shot
otherwise); `oneshot` falls back to `iterative` when no translator is available for the engine."""
from __future__ import annotations

from face2param.methods.registry import MethodJob, MethodOutcome, run_method


def run_auto(job: MethodJob) -> MethodOutcome:
    from face2param.methods.fit import choose_method

    method, reason = choose_method(job.target, job.config)
    outcome = run_method(method, job)
    outcome.warnings.insert(0, f"auto chose {method}: {reason}")
    return outcome


def run_oneshot(job: MethodJob) -> MethodOutcome:
    try:
        from face2param.methods.oneshot import TranslatorUnavailableError, fit_oneshot
    except ImportError:  # an install without the translator package: say so, fit iteratively
        return _fell_back(job, "the one-shot translator is not installed")
    try:
        params, losses, more = fit_oneshot(job.target, job.engine, job.config, job.device)
    except TranslatorUnavailableError as exc:
        return _fell_back(job, str(exc))
    return MethodOutcome(params, losses, "oneshot", list(more))


def _fell_back(job: MethodJob, why: str) -> MethodOutcome:
    outcome = run_iterative(job)
    outcome.warnings.insert(0, f"{why}; used the iterative method instead")
    return outcome


def run_iterative(job: MethodJob) -> MethodOutcome:
    from face2param.methods.fit import _fit_iterative

    params, losses, more = _fit_iterative(job.target, job.engine, job.config, job.device, job.progress)
    return MethodOutcome(params, losses, "iterative", list(more))


def run_mean(job: MethodJob) -> MethodOutcome:
    from face2param.methods.mean import fit_mean

    return MethodOutcome(fit_mean(job.engine), {}, "mean")
