"""Photo -> engine parameters: `fit` (auto | iterative | oneshot | mean)."""
from face2param.methods.fit import FitResult, choose_method, fit, landmark_nme, load_engine

__all__ = ["FitResult", "choose_method", "fit", "landmark_nme", "load_engine"]
