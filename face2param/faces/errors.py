"""User-fixable problems with an uploaded photo: each says what is wrong and what to do."""
from __future__ import annotations

from avatarclip_core.errors import UserInputError


class ImageInputError(UserInputError):
    """Base class: the upload cannot be used as a photo."""


class ImageNotFoundError(ImageInputError):
    pass


class NotAnImageError(ImageInputError):
    """The bytes are not in an image format we can read (text, PDF, HEIC, ...)."""


class UnreadableImageError(ImageInputError):
    """A known image format whose pixel data cannot be decoded (corrupt, odd layout)."""


class TruncatedImageError(UnreadableImageError):
    """The file ends before its pixel data does (an interrupted upload or copy)."""


class ImageTooSmallError(ImageInputError):
    pass


class ImageTooLargeError(ImageInputError):
    pass


class NoFaceError(UserInputError):
    """No face was found (or a face was found but its landmarks could not be)."""


class FaceTooSmallError(UserInputError):
    pass


class EmbedderCheckpointError(UserInputError):
    """An identity-network checkpoint is missing or does not fit the chosen architecture."""
