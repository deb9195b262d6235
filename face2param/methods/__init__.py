"""Photo -> engine parameters: `fit` (auto | iterative | oneshot | mean; methods/registry.py).

Loaded on first use (as face2param.faces): `face2param.methods.registry` lists the methods without torch."""
from avatarclip_core.lazy import lazy_exports

__getattr__, __all__ = lazy_exports({"face2param.methods.fit": "FitResult choose_method fit landmark_nme load_engine"})
