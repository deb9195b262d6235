"""User uploads (the photo tab): what a request may name, what is checked before anything is stored,
and clean-up of Gradio's temp folder.

The type of an upload is decided by its first bytes (magic numbers), never by its file name or the
browser's content type, both of which the sender controls. Only PNG, JPEG and WebP are accepted, and
only if they decode (check_photo). A request names either a file Gradio's upload route received
(blocks.upload_file_set) or one of the app's stored uploads; any other server path is refused
(received_upload, stored_upload_path, used by web.app's PhotoFile). Gradio's upload route takes one
file per request (UploadGate); a refused upload is deleted at once, an upload no job used after
UNUSED_UPLOAD_TTL_S.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from avatarclip_core.config.limits import UPLOAD_MAX_BYTES
from avatarclip_core.errors import UserInputError

IMAGE_KINDS = ("png", "jpeg", "webp")
_SNIFF_BYTES = 16
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around one file
UNUSED_UPLOAD_TTL_S = 15 * 60  # long enough to submit the same upload again from the page


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


def check_image_bytes(data: bytes, max_bytes: int = UPLOAD_MAX_BYTES) -> str:
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


def check_image_file(path: str | os.PathLike, max_bytes: int = UPLOAD_MAX_BYTES) -> str:
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


# ---- the photo endpoint's boundary ------------------------------------------------------------------
# Decoding is the worker's job, but an upload is checked here as far as that is cheap (face2param's
# probe_image: the header's size, then the pixel data at 1/8 scale or CRC by CRC), so a bomb, a
# truncated file or a polyglot is refused in the request that sent it and never stored.

def check_photo(data: bytes, max_bytes: int = UPLOAD_MAX_BYTES) -> str:
    """The sniffed type of an uploaded photo; UserInputError (one line, no server path) when it is
    empty, too large, not a PNG/JPEG/WebP, over the pixel cap, truncated or otherwise undecodable."""
    kind = check_image_bytes(data, max_bytes)
    from face2param.faces.images import probe_image  # PIL + numpy; cv2 via the package (~0.2 s, once)

    fmt, _, _ = probe_image(data, name="the uploaded file")
    if fmt.lower() != kind:  # the magic says one thing, the decoder another: not an honest file
        raise UploadRejectedError(f"the uploaded file starts like a {kind.upper()} but decodes as {fmt}")
    return kind


def store_upload(source: str | os.PathLike, uploads_dir: Path, max_bytes: int = UPLOAD_MAX_BYTES) -> str:
    """Check an uploaded photo (check_photo) and copy it into `uploads_dir` under a content-addressed
    name ('<sha256 prefix>.<type>', what a job's inputs carry). Atomic: a reader never sees half a file."""
    check_image_file(source, max_bytes)  # size and magic before reading the whole file
    data = Path(source).read_bytes()
    kind = check_photo(data, max_bytes)
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


def stored_upload_path(path: str, uploads_dir: Path) -> Path | None:
    """The app's own stored upload that `path` names ('<hash>.<type>', or that name inside
    uploads_dir), else None. Symlinks and other folders never qualify."""
    p = Path(path)
    if not UPLOAD_NAME_RE.match(p.name) or (p.parent != Path(".") and p.parent.resolve() != Path(uploads_dir).resolve()):
        return None
    target = Path(uploads_dir) / p.name
    return target if target.is_file() and not target.is_symlink() else None


def received_upload(path: str, blocks: Any) -> bool:
    """True when `path` is a file Gradio's upload route wrote (blocks.upload_file_set): the only
    server paths a request may name besides the app's own uploads."""
    return bool(path) and blocks is not None and str(path) in getattr(blocks, "upload_file_set", ())


def discard_received_upload(path: str | None, blocks: Any) -> None:
    """Delete a file Gradio's upload route wrote, and its folder when empty (never anything else)."""
    if not path or not received_upload(path, blocks):
        return
    blocks.upload_file_set.discard(str(path))
    p = Path(path)
    p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        p.parent.rmdir()  # Gradio's per-upload <sha> folder; stays when another upload shares it


def sweep_received_uploads(blocks: Any, max_age_s: float = UNUSED_UPLOAD_TTL_S, now: float | None = None) -> int:
    """Delete the files Gradio received more than `max_age_s` ago (a job's photo is in uploads/ by
    then; an upload no job used is dropped). Returns how many were removed."""
    now = time.time() if now is None else now
    removed = 0
    for path in list(getattr(blocks, "upload_file_set", ())):
        try:
            old = now - os.stat(path).st_mtime > max_age_s
        except OSError:
            old = True  # gone already: forget it
        if old:
            discard_received_upload(path, blocks)
            removed += 1
    return removed


class UploadGate:
    """ASGI middleware on Gradio's upload route: one file per request and at most max_bytes (plus
    multipart framing), checked on the buffered body before Gradio writes anything to its temp folder;
    each upload request also sweeps the uploads no job used (sweep_received_uploads)."""

    def __init__(self, app, max_bytes: int, blocks: Any = None, unused_ttl_s: float = UNUSED_UPLOAD_TTL_S):
        self.app, self.max_bytes, self.blocks, self.unused_ttl_s = app, int(max_bytes), blocks, unused_ttl_s

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") != "POST" or \
                not scope.get("path", "").rstrip("/").endswith("/gradio_api/upload"):
            return await self.app(scope, receive, send)
        if self.blocks is not None:
            sweep_received_uploads(self.blocks, self.unused_ttl_s)
        limit = self.max_bytes + MULTIPART_OVERHEAD_BYTES
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        too_big = (f"the upload is larger than the {human_size(self.max_bytes)} limit "
                   "(one photo per request)")
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _plain(send, 413, too_big)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > limit:
                return await _plain(send, 413, too_big)
            if not message.get("more_body", False):
                break
        files = multipart_file_count(bytes(body), headers.get("content-type", ""))
        if files > 1:
            return await _plain(send, 400, f"one photo per upload request, got {files} files")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def multipart_file_count(body: bytes, content_type: str) -> int:
    """How many file parts (a Content-Disposition with filename=) a multipart/form-data body has."""
    found = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not found:
        return 0
    count = 0
    for part in body.split(b"--" + found.group(1).encode("latin-1"))[1:]:
        head = part.split(b"\r\n\r\n", 1)[0].lower()
        if b"content-disposition" in head and b"filename=" in head:
            count += 1
    return count


async def _plain(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
