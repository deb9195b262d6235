"""Evaluation of photo -> game-parameter work: face analysis (landmarks, identity) now; the
fitting methods' parts of `avatar eval photo` reuse `report.write_report`."""
from face2param.evaluation.identity_eval import IdentitySeparation, identity_separation
from face2param.evaluation.landmark_eval import (AnnotatedFace, MethodScore, evaluate_landmarks,
                                                 normalised_errors, read_dlib_xml)
from face2param.evaluation.photo import evaluate_face_analysis
from face2param.evaluation.report import ImagePair, draw_points, to_jsonable, write_report

__all__ = [
    "AnnotatedFace",
    "IdentitySeparation",
    "ImagePair",
    "MethodScore",
    "draw_points",
    "evaluate_face_analysis",
    "evaluate_landmarks",
    "identity_separation",
    "normalised_errors",
    "read_dlib_xml",
    "to_jsonable",
    "write_report",
]
