"""Checks for user uploads (the photo tab): a size cap and content sniffing.

The type of an upload is decided by its first bytes (magic numbers), never by its file name or the
browser's content type, both of which the sender controls. Only PNG, JPEG and WebP are accepted.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from avatarclip_core.errors import UserInputError

DEFAULT_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
IMAGE_KINDS = ("png", "jpeg", "webp")
_SNIFF_BYTES = 16


class UploadRejectedError(UserInputError):
    """An upload that is too large, empty or not an accepted image type."""


def sniff_image_type(head: bytes) -> str | None:
    """'png', 'jpeg' or 'webp' from the first bytes of a file, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{n} bytes"


def check_image_bytes(data: bytes, max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES) -> str:
    """The sniffed image type of `data`; UploadRejectedError when empty, too large or not an image."""
    if not data:
        raise UploadRejectedError("the uploaded file is empty")
    if len(data) > max_bytes:
        raise UploadRejectedError(
            f"the uploaded file is {human_size(len(data))}; the limit is {human_size(max_bytes)}")
    kind = sniff_image_type(data[:_SNIFF_BYTES])
    if kind is None:
        raise UploadRejectedError("the uploaded file is not a PNG, JPEG or WebP image")
    return kind


def check_image_file(path: str | os.PathLike, max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES) -> str:
    """Like check_image_bytes for a file on disk, reading only its first bytes."""
    path = Path(path)
    if not path.is_file():
        raise UploadRejectedError("no uploaded file")
    size = path.stat().st_size
    if size == 0:
        raise UploadRejectedError("the uploaded file is empty")
    if size > max_bytes:
        raise UploadRejectedError(f"the uploaded file is {human_size(size)}; the limit is {human_size(max_bytes)}")
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    kind = sniff_image_type(head)
    if kind is None:
        raise UploadRejectedError("the uploaded file is not a PNG, JPEG or WebP image")
    return kind


UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpeg|webp)$")


def store_upload(source: str | os.PathLike, uploads_dir: Path, max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES) -> str:
    """Check an uploaded image and copy it into `uploads_dir` under a content-addressed name
    ('<sha256 prefix>.<type>', what a job's inputs carry). Atomic: a reader never sees half a file."""
    kind = check_image_file(source, max_bytes)
    data = Path(source).read_bytes()
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.{kind}"
    uploads_dir = Path(uploads_dir)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    target = uploads_dir / name
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=uploads_dir, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return name
