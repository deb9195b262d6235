"""Photo -> engine parameters: `fit` (auto | iterative | oneshot | mean; methods/registry.py).

Loaded on first use (as face2param.faces): `face2param.methods.registry` lists the methods without torch."""
import importlib

__all__ = ["FitResult", "choose_method", "fit", "landmark_nme", "load_engine"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("face2param.methods.fit"), name)
    raise AttributeError(f"module 'face2param.methods' has no attribute {name!r}")
