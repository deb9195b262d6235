"""Imitator G (TPAMI 3.1) and the avatar-domain landmark regressor: a differentiable stand-in for an
engine that only renders, so the iterative F2P search runs on black-box game engines."""
from face2param.imitator.artifact import ImitatorUnavailableError, load_imitator
from face2param.imitator.face_model import ImitatorFaceModel

__all__ = ["ImitatorFaceModel", "ImitatorUnavailableError", "load_imitator"]
