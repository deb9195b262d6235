"""Everything that reads a photo: loading, face detection, landmarks, identity, alignment,
colour regions, and the one-call `analyse_face`."""
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

__all__ = [
    "EmbedderCheckpointError",
    "FaceTooSmallError",
    "ImageInputError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "NoFaceError",
    "NotAnImageError",
    "TruncatedImageError",
    "UnreadableImageError",
]
