"""Everything that reads a photo: loading, face detection, landmarks, identity, alignment,
colour regions, and the one-call `analyse_face`. mediapipe and dlib are imported (and their
models built, once per process) only when first used, and this package's
names load their modules on first use (`face2param.faces.config` imports neither cv2 nor mediapipe)."""
from avatarclip_core.lazy import lazy_exports

# lazy, so importing one submodule (the configs at submit) does not load cv2, mediapipe and dlib
__getattr__, __all__ = lazy_exports({
    "face2param.faces.align": ("AlignedCrop SimilarityTransform align_landmarks aligned_crop template_in_crop "
                               "umeyama"),
    "face2param.faces.analysis": "FaceAnalysis analyse_face",
    "face2param.faces.config": "DetectionConfig FaceAnalysisConfig LandmarkConfig RegionConfig",
    "face2param.faces.detect": "Detection FaceBox detect_face detect_faces",
    "face2param.faces.errors": ("EmbedderCheckpointError FaceTooSmallError ImageInputError ImageNotFoundError "
                                "ImageTooLargeError ImageTooSmallError NoFaceError NotAnImageError "
                                "TruncatedImageError UnreadableImageError"),
    "face2param.faces.identity": ("DLIB_SAME_PERSON_DISTANCE dlib_embedding identity_cosine identity_distance "
                                  "same_person"),
    "face2param.faces.images": "load_image to_rgb_uint8",
    "face2param.faces.landmarks": "MESH_TO_68 dlib_landmarks_68 dlib_predictor_box face_mesh_478 mesh_to_68",
    "face2param.faces.regions": "FaceColours FaceCues analyse_regions",
})
