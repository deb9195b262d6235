"""Evaluation of photo -> game-parameter work: face analysis (landmarks, identity) and the fitting
methods against the mean face (methods_eval, recovery); every report goes through `report.write_report`."""
from face2param.evaluation.identity_eval import IdentitySeparation, identity_separation
from face2param.evaluation.methods_eval import (MethodRunner, PhotoEvalConfig,
                                               evaluate_photo_methods)
from face2param.evaluation.recovery import RecoveryConfig, evaluate_recovery, r_squared
from face2param.evaluation.landmark_eval import (AnnotatedFace, MethodScore, evaluate_landmarks,
                                                 normalised_errors, read_dlib_xml)
from face2param.evaluation.photo import evaluate_face_analysis
from face2param.evaluation.report import ImagePair, draw_points, to_jsonable, write_report

__all__ = [
    "AnnotatedFace",
    "IdentitySeparation",
    "ImagePair",
    "MethodRunner",
    "MethodScore",
    "PhotoEvalConfig",
    "RecoveryConfig",
    "draw_points",
    "evaluate_face_analysis",
    "evaluate_landmarks",
    "evaluate_photo_methods",
    "evaluate_recovery",
    "identity_separation",
    "normalised_errors",
    "r_squared",
    "read_dlib_xml",
    "to_jsonable",
    "write_report",
]
