"""Everything that reads a photo: loading, face detection, landmarks, identity, alignment,
colour regions, and the one-call `analyse_face`. mediapipe and dlib are imported (and their
models built, once per process) only when first used."""
from face2param.faces.align import (AlignedCrop, SimilarityTransform, align_landmarks,
                                    aligned_crop, template_in_crop, umeyama)
from face2param.faces.analysis import FaceAnalysis, FaceAnalysisConfig, analyse_face
from face2param.faces.detect import Detection, DetectionConfig, FaceBox, detect_face, detect_faces
from face2param.faces.errors import (
    EmbedderCheckpointError,
    FaceTooSmallError,
    ImageInputError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NoFaceError,
    NotAnImageError,
    TruncatedImageError,
    UnreadableImageError,
)
from face2param.faces.identity import (DLIB_SAME_PERSON_DISTANCE, dlib_embedding,
                                       identity_cosine, identity_distance, same_person)
from face2param.faces.images import load_image, to_rgb_uint8
from face2param.faces.landmarks import (MESH_TO_68, LandmarkConfig, dlib_landmarks_68,
                                        dlib_predictor_box, face_mesh_478, mesh_to_68)
from face2param.faces.regions import FaceColours, FaceCues, RegionConfig, analyse_regions

__all__ = [
    "DLIB_SAME_PERSON_DISTANCE", "MESH_TO_68", "AlignedCrop", "Detection", "DetectionConfig",
    "EmbedderCheckpointError", "FaceAnalysis", "FaceAnalysisConfig", "FaceBox", "FaceColours",
    "FaceCues", "FaceTooSmallError", "ImageInputError", "ImageNotFoundError",
    "ImageTooLargeError", "ImageTooSmallError", "LandmarkConfig", "NoFaceError",
    "NotAnImageError", "RegionConfig", "SimilarityTransform", "TruncatedImageError",
    "UnreadableImageError", "align_landmarks", "aligned_crop", "analyse_face",
    "analyse_regions", "detect_face", "detect_faces", "dlib_embedding", "dlib_landmarks_68",
    "dlib_predictor_box", "face_mesh_478", "identity_cosine", "identity_distance",
    "load_image", "mesh_to_68", "same_person", "template_in_crop", "to_rgb_uint8", "umeyama",
]
