"""Everything that reads a photo: loading, face detection, landmarks, identity, alignment,
colour regions, and the one-call `analyse_face`. mediapipe and dlib are imported (and their
models built, once per process) only when first used, and this package's
names load their modules on first use (`face2param.faces.config` imports neither cv2 nor mediapipe)."""
import importlib

_EXPORTS = {
    "AlignedCrop": "face2param.faces.align",
    "DLIB_SAME_PERSON_DISTANCE": "face2param.faces.identity",
    "Detection": "face2param.faces.detect",
    "DetectionConfig": "face2param.faces.config",
    "EmbedderCheckpointError": "face2param.faces.errors",
    "FaceAnalysis": "face2param.faces.analysis",
    "FaceAnalysisConfig": "face2param.faces.config",
    "FaceBox": "face2param.faces.detect",
    "FaceColours": "face2param.faces.regions",
    "FaceCues": "face2param.faces.regions",
    "FaceTooSmallError": "face2param.faces.errors",
    "ImageInputError": "face2param.faces.errors",
    "ImageNotFoundError": "face2param.faces.errors",
    "ImageTooLargeError": "face2param.faces.errors",
    "ImageTooSmallError": "face2param.faces.errors",
    "LandmarkConfig": "face2param.faces.config",
    "MESH_TO_68": "face2param.faces.landmarks",
    "NoFaceError": "face2param.faces.errors",
    "NotAnImageError": "face2param.faces.errors",
    "RegionConfig": "face2param.faces.config",
    "SimilarityTransform": "face2param.faces.align",
    "TruncatedImageError": "face2param.faces.errors",
    "UnreadableImageError": "face2param.faces.errors",
    "align_landmarks": "face2param.faces.align",
    "aligned_crop": "face2param.faces.align",
    "analyse_face": "face2param.faces.analysis",
    "analyse_regions": "face2param.faces.regions",
    "detect_face": "face2param.faces.detect",
    "detect_faces": "face2param.faces.detect",
    "dlib_embedding": "face2param.faces.identity",
    "dlib_landmarks_68": "face2param.faces.landmarks",
    "dlib_predictor_box": "face2param.faces.landmarks",
    "face_mesh_478": "face2param.faces.landmarks",
    "identity_cosine": "face2param.faces.identity",
    "identity_distance": "face2param.faces.identity",
    "load_image": "face2param.faces.images",
    "mesh_to_68": "face2param.faces.landmarks",
    "same_person": "face2param.faces.identity",
    "template_in_crop": "face2param.faces.align",
    "to_rgb_uint8": "face2param.faces.images",
    "umeyama": "face2param.faces.align",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # lazy, so importing one submodule (the configs at submit) does not load cv2, mediapipe and dlib
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
