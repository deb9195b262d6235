"""web/uploads.py: size cap and magic-byte sniffing (the extension and the claimed type are ignored)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from avatarclip_core.errors import UserInputError
from avatarclip_core.config.limits import UPLOAD_MAX_BYTES
from web.uploads import (
    UploadRejectedError,
    check_image_bytes,
    check_image_file,
    sniff_image_type,
)


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 90)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,kind", [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_real_images_are_sniffed(fmt, kind, tmp_path):
    data = _image_bytes(fmt)
    assert sniff_image_type(data) == kind
    assert check_image_bytes(data) == kind
    # the name says GIF: only the content counts
    path = tmp_path / "photo.gif"
    path.write_bytes(data)
    assert check_image_file(path) == kind


@pytest.mark.parametrize("data", [
    b"GIF89a" + b"\0" * 32,
    b"<html><script>alert(1)</script></html>",
    b"%PDF-1.7\n",
    b"RIFF\0\0\0\0WAVEfmt ",  # RIFF but not WebP
    b"\x89PNG",  # truncated signature
    b"MZ\x90\0" + b"\0" * 40,
])
def test_non_images_rejected(data, tmp_path):
    assert sniff_image_type(data) is None
    with pytest.raises(UploadRejectedError, match="not a PNG, JPEG or WebP"):
        check_image_bytes(data)
    path = tmp_path / "photo.png"  # the extension lies
    path.write_bytes(data)
    with pytest.raises(UploadRejectedError, match="not a PNG, JPEG or WebP"):
        check_image_file(path)


def test_size_cap(tmp_path):
    data = _image_bytes("PNG")
    assert check_image_bytes(data, max_bytes=len(data)) == "png"
    with pytest.raises(UploadRejectedError, match="limit is"):
        check_image_bytes(data, max_bytes=len(data) - 1)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * (UPLOAD_MAX_BYTES + 1))
    with pytest.raises(UploadRejectedError, match="limit is 10 MB"):
        check_image_file(big)
    assert check_image_file(big, max_bytes=UPLOAD_MAX_BYTES + 10) == "jpeg"


def test_empty_and_missing(tmp_path):
    with pytest.raises(UploadRejectedError, match="empty"):
        check_image_bytes(b"")
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejectedError, match="empty"):
        check_image_file(empty)
    with pytest.raises(UploadRejectedError, match="no uploaded file"):
        check_image_file(tmp_path / "missing.png")


def test_rejection_is_a_user_input_error():
    assert issubclass(UploadRejectedError, UserInputError)
