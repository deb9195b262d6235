"""Load an uploaded photo as an (H, W, 3) uint8 RGB array, or say precisely why not.

Accepted: anything Pillow reads (JPEG, PNG, WebP, BMP, GIF's first frame, TIFF, ...), 16-bit and
float samples (float TIFFs through tifffile), greyscale (replicated to RGB), alpha (composited on
mid-grey, ALPHA_BACKGROUND: neutral for face detection and for the skin/hair colour medians, where
white would bias edge pixels bright), EXIF orientation (applied). The pixel count is checked from
the header, before any pixel data is decoded, so a decompression bomb costs nothing.

Big photos are reduced while they are decoded (JPEG draft mode: libjpeg's DCT scaling, at 1/2,
1/4 or 1/8; other formats: Image.reduce right after decoding) to at most WORK_MAX_PIXELS: a 40 MP
photo would otherwise cost gigabytes in the analysis, and a face needs no more than a few MP.
Upright colour JPEGs under that size are decoded by OpenCV instead (the same pixels, faster:
`_load_with_opencv`).

Messages name a file by its base name only: in the worker that is the upload's hash name, never a
server path (they reach web clients).
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face2param.faces.errors import (
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
    UnreadableImageError,
)

MIN_SIDE_PX = 64
MAX_PIXELS = 40_000_000
# Working resolution: larger photos are reduced on load (see module docstring). 16 MP keeps 12 MP
# phone photos untouched and brings a 40 MP one down to 10 MP (1/2 per side).
WORK_MAX_PIXELS = 16_000_000
ALPHA_BACKGROUND = 128  # mid-grey, see module docstring

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def image_pixels_sha256(pixels: np.ndarray) -> str:
    """sha256 of decoded pixels (a job's provenance: a re-encoded copy of a photo is known by what the
    fit saw, not by its file's bytes)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(pixels)).hexdigest()  # the array's own buffer: no copy


def load_image(source: ImageSource, *, min_side: int = MIN_SIDE_PX, max_pixels: int = MAX_PIXELS,
               work_max_pixels: int | None = WORK_MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path, bytes, a binary file object or an array; files over
    `work_max_pixels` are reduced while loading (None: full resolution; arrays are never reduced)."""
    if isinstance(source, np.ndarray):
        pixels = to_rgb_uint8(source)
        _check_size(pixels.shape[1], pixels.shape[0], min_side, max_pixels)
        return pixels
    data = _read_bytes(source)
    name = _describe(source)
    if data[:4] in _TIFF_MAGIC:
        pixels = _load_tiff(data, name, min_side, max_pixels)
        if pixels is not None:
            return pixels
    return _load_with_pillow(data, name, min_side, max_pixels, work_max_pixels)


def probe_image(source: ImageSource, *, min_side: int = MIN_SIDE_PX, max_pixels: int = MAX_PIXELS,
                name: str | None = None) -> tuple[str, int, int]:
    """(Pillow format, width, height) of an image file, checked the way load_image would fail on it,
    but cheaply (for the web process, before an upload is stored): the header's size against the
    limits first, then the pixel data, decoded at 1/8 scale for JPEG (a truncated file still fails)
    and CRC-checked chunk by chunk for PNG; other formats are decoded."""
    data = _read_bytes(source)
    name = name or _describe(source)
    image = _open(data, name, max_pixels)
    with image:
        _check_size(image.width, image.height, min_side, max_pixels)
        fmt, size = str(image.format or "unknown"), image.size
        try:
            if fmt == "PNG":
                image.verify()
            else:
                if fmt == "JPEG":
                    image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
        except Exception as exc:  # noqa: BLE001  (Pillow raises OSError, SyntaxError, struct.error, ...)
            raise _decode_error(exc, name) from exc
    return fmt, size[0], size[1]


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any greyscale/RGB/RGBA array of bool, integer or float samples -> (H, W, 3) uint8.

    Floats are taken as [0, 1] when their maximum is <= 1, as [0, 255] when it is <= 255, and
    are scaled by their maximum otherwise (HDR); NaNs become 0. Integers wider than 8 bits are
    scaled from their dtype's range (uint16 / 257), except int32/int64 samples that fit 16 bits.
    """
    a = np.asarray(array)
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:  # the common case: no float copies
        return np.ascontiguousarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise UnreadableImageError(
            f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    unit = _to_unit_float(a)
    if unit.shape[2] in (2, 4):  # colour + alpha
        alpha = unit[:, :, -1:]
        colour = unit[:, :, :-1]
        unit = colour * alpha + (ALPHA_BACKGROUND / 255.0) * (1.0 - alpha)
    if unit.shape[2] == 1:
        unit = np.repeat(unit, 3, axis=2)
    return np.ascontiguousarray(np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8))


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        top = float(np.iinfo(a.dtype).max)
        if a.dtype.itemsize > 2 and a.size and int(a.max()) <= 65535:
            top = 65535.0  # PIL's mode "I" holds 16-bit PNG samples in int32
        return np.clip(a.astype(np.float64) / top, 0.0, 1.0).astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(f.max()) if f.size else 1.0
        if peak > 255.0 + 1e-3:
            f = f / peak
        elif peak > 1.0 + 1e-3:
            f = f / 255.0
        return np.clip(f, 0.0, 1.0)
    raise UnreadableImageError(f"unsupported image sample type {a.dtype}")


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageNotFoundError(f"image file not found: {_describe(path)}")
        if not path.is_file():
            raise NotAnImageError(f"{_describe(path)} is not a file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableImageError(f"cannot read {_describe(path)}: {exc.strerror or type(exc).__name__}") from exc
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise NotAnImageError("the file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise NotAnImageError(f"expected a path, bytes or an array, got {type(source).__name__}")
    if not data:
        raise NotAnImageError(f"{_describe(source)} is empty (0 bytes)")
    return data


def _describe(source) -> str:
    """The base name only: a server path must not reach a web client through a message."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or "the image file"
    return "the uploaded file"


def megapixels(pixels: int, limit: int = MAX_PIXELS) -> str:
    """'40.01 MP': as many decimals as it takes for a count over `limit` not to read as the limit."""
    for decimals in (1, 2, 3, 4, 6):
        text = f"{pixels / 1e6:.{decimals}f}"
        if not (pixels > limit and float(text) <= limit / 1e6):
            break
    return f"{text} MP"


def _check_size(width: int, height: int, min_side: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels = {megapixels(width * height, max_pixels)}, over the "
            f"{max_pixels / 1e6:g} MP limit: downscale it (a face photo needs no more than ~4 MP)")
    if min(width, height) < min_side:
        raise ImageTooSmallError(
            f"image is {width}x{height} pixels; each side must be at least {min_side} px "
            f"(upload a larger photo of the face)")


def _not_an_image(data: bytes, name: str) -> NotAnImageError:
    head = data[:64]
    looks_textual = all(32 <= b < 127 or b in (9, 10, 13) for b in head)
    hint = " (it looks like a text file)" if looks_textual else ""
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
        hint = " (HEIC/AVIF: export it as JPEG, e.g. the iPhone's 'Most Compatible' setting)"
    return NotAnImageError(
        f"{name} is not an image we can read{hint}: upload a JPEG, PNG, WebP, BMP or TIFF photo")


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Image.open (the header only) with our errors."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise _not_an_image(data, name) from exc
    except Image.DecompressionBombError as exc:  # Pillow's own guard: > 2 x Image.MAX_IMAGE_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{megapixels(int(found.group(1)), max_pixels)}, " if found else ""
        raise ImageTooLargeError(f"{name} is {size}far over the {max_pixels / 1e6:g} MP limit") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImageError(f"{name} could not be read as an image: {exc}") from exc


def _decode_error(exc: BaseException, name: str) -> UnreadableImageError:
    text = str(exc).lower()
    if isinstance(exc, (EOFError, OSError, SyntaxError)) and any(w in text for w in ("truncat", "eof", "end of")):
        return TruncatedImageError(f"{name} is truncated (the file ends before the image data does): upload it again")
    if isinstance(exc, EOFError):
        return TruncatedImageError(f"{name} is truncated (the file ends before the image data does): upload it again")
    return UnreadableImageError(f"{name} could not be decoded: {exc}")


def _reduction(width: int, height: int, work_max_pixels: int | None) -> int:
    """The smallest integer factor that brings width x height to at most work_max_pixels."""
    factor = 1
    while work_max_pixels and (width // factor) * (height // factor) > work_max_pixels:
        factor += 1
    return factor


def _load_with_pillow(data: bytes, name: str, min_side: int, max_pixels: int,
                      work_max_pixels: int | None = WORK_MAX_PIXELS) -> np.ndarray:
    """Decode at (about) the working resolution and hold one full-size copy at a time: a 40 MP
    JPEG peaks at ~0.1 GB here (decoded at 1/2, then handed to numpy), not ~0.5 GB."""
    image = _open(data, name, max_pixels)
    try:
        _check_size(image.width, image.height, min_side, max_pixels)
        factor = _reduction(image.width, image.height, work_max_pixels)
        if factor == 1 and (pixels := _load_with_opencv(image, data)) is not None:
            return pixels
        if factor > 1 and image.format == "JPEG":  # DCT scaling: decodes at 1/2, 1/4 or 1/8 directly
            image.draft(image.mode if image.mode in ("L", "RGB") else "RGB",
                        (image.width // factor, image.height // factor))
        try:
            image.load()
        except Exception as exc:  # noqa: BLE001  (OSError, SyntaxError, ValueError, ...: all say why)
            raise _decode_error(exc, name) from exc
        factor = _reduction(image.width, image.height, work_max_pixels)
        if factor > 1:  # what draft mode did not do (other formats, or a scale between 1/8 steps)
            reduced = image.reduce(factor)  # keeps info (EXIF orientation included)
            image.close()  # the full-size pixels go now, not when the array is made
            image = reduced
        try:  # in place: no second full-size copy of an upright photo (most are)
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:  # a broken EXIF block must not cost the photo; keep it unrotated
            pass
        array = _pillow_to_array(image)
    finally:
        image.close()  # Pillow's pixels go before to_rgb_uint8 makes any float copy
    return to_rgb_uint8(array)


def _load_with_opencv(image: Image.Image, data: bytes) -> np.ndarray | None:
    """The common photo, an upright 8-bit colour JPEG, decoded by OpenCV straight into the array: the same
    pixels as Pillow's (both libjpeg-turbo; checked on every photo under ../shared/data and on damaged
    copies), 10-35 % faster on real photos (Pillow decodes into its own 4-byte pixels and copies them
    out). None leaves the photo to Pillow: other modes and formats (a PNG's orientation can sit after
    its pixels, which only Pillow's full decode reads), EXIF orientation, and any file OpenCV cannot
    decode; Pillow then raises a damaged file's own error. The JPEG must end at its end-of-image
    marker: libjpeg fills a truncated one with grey and only warns, where Pillow says it is truncated."""
    if (image.format != "JPEG" or image.mode != "RGB" or len(image.tile) != 1 or image.tile[0][3][0] != "RGB"
            or not data.rstrip(b"\0").endswith(b"\xff\xd9")):
        return None
    if image.getexif().get(0x0112, 1) != 1:  # rotated: Pillow's exif_transpose (a JPEG's EXIF is in its header)
        return None
    import cv2

    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None or decoded.shape != (image.height, image.width, 3):
        return None
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded)  # in place: no second copy


def _pillow_to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if mode in ("I", "F", "L", "RGB", "RGBA", "LA"):
        return np.asarray(image)
    if mode in ("P", "PA") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))  # 1, CMYK, YCbCr, LAB, HSV, ...


def _load_tiff(data: bytes, name: str, min_side: int, max_pixels: int) -> np.ndarray | None:
    """Float and >8-bit TIFFs through tifffile; None hands ordinary ones to Pillow."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            if page.bitspersample <= 8 and page.sampleformat != 3:
                return None
            height, width = int(page.imagelength), int(page.imagewidth)
            _check_size(width, height, min_side, max_pixels)
            orientation = page.tags.get(274)
            array = page.asarray()
    except (ImageTooSmallError, ImageTooLargeError):
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        text = str(exc).lower()
        if any(word in text for word in ("truncat", "buffer is too small", "eof", "size")):
            raise TruncatedImageError(f"{name} is a truncated TIFF: upload it again") from exc
        raise UnreadableImageError(f"{name} is a TIFF we cannot decode: {exc}") from exc
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar storage
    pixels = to_rgb_uint8(array)
    return _apply_orientation(pixels, int(orientation.value) if orientation else 1)


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF/TIFF orientation codes 1-8 -> upright pixels."""
    ops = {2: lambda p: p[:, ::-1], 3: lambda p: p[::-1, ::-1], 4: lambda p: p[::-1],
           5: lambda p: p.transpose(1, 0, 2), 6: lambda p: np.rot90(p, -1),
           7: lambda p: p[::-1, ::-1].transpose(1, 0, 2), 8: lambda p: np.rot90(p, 1)}
    op = ops.get(orientation)
    return np.ascontiguousarray(op(pixels)) if op else pixels
