"""Hostile uploads, without a server: every way a photo upload can be wrong is refused by
web.uploads.check_photo / store_upload with one specific line, before anything is stored; big photos
are reduced while loading; messages and downloadable JSON carry no server path.
(The same files over HTTP, through the real app: tests/test_hostile_web.py.)"""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from avatarclip_core.errors import UserInputError
from face2param.faces.images import WORK_MAX_PIXELS, load_image, megapixels, probe_image
from web.uploads import (check_photo, discard_received_upload, multipart_file_count, store_upload,
                         stored_upload_path, sweep_received_uploads)


# ---- hostile files (shared with test_hostile_web.py) ------------------------------------------------
def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height and holds a few bytes of pixel data."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(bytes(64))) + _chunk(b"IEND", b""))


def png_bomb(side: int = 30000) -> bytes:
    """A real decompression bomb: side x side 1-bit pixels, all zero, compressed to ~100 KB."""
    z = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


def encoded(fmt: str, size=(200, 160), **kw) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **kw)
    return buf.getvalue()


def hostile_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, the message they must get)."""
    jpeg, png = encoded("JPEG", (640, 480)), encoded("PNG", (320, 240))
    return {
        "empty": (b"", "empty"),
        "text": (b"hello, not a photo\n" * 10, "not a PNG, JPEG or WebP"),
        "html": (b"<html><script>alert(1)</script></html>", "not a PNG, JPEG or WebP"),
        "gif": (encoded("GIF"), "not a PNG, JPEG or WebP"),
        "bmp": (encoded("BMP"), "not a PNG, JPEG or WebP"),
        "png magic + html": (b"\x89PNG\r\n\x1a\n<html><body><script>alert(1)</script></body></html>",
                             "not an image we can read"),
        "png header + html": (png[:33] + b"<html><body>polyglot</body></html>", "not an image we can read"),
        "jpeg magic + html": (b"\xff\xd8\xff\xe0<html></html>" + bytes(64), "could not|not an image|truncated"),
        "jpeg magic + gif": (b"\xff\xd8\xff" + encoded("GIF")[3:], "not an image we can read"),
        "webp magic + junk": (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(40), "not an image|could not|truncated"),
        "truncated jpeg": (jpeg[: len(jpeg) // 3], "truncated"),
        "truncated jpeg header": (jpeg[:200], "truncated|could not|not an image"),
        "truncated png": (png[: len(png) - 200], "truncated"),
        "png bad crc": (png[:60] + bytes([png[60] ^ 0xFF]) + png[61:], "could not|truncated|broken"),
        "30000x30000 bomb": (png_bomb(), "900.0 MP, far over the 40 MP limit"),
        "header 9000x9000": (png_header_only(9000, 9000), "81.0 MP, over the 40 MP limit"),
        "40.01 MP": (png_header_only(8001, 5000), "40.01 MP, over the 40 MP limit"),
        "40.000001 MP": (png_header_only(40_000_001, 1), "40.000001 MP, over the 40 MP limit"),
        "too small": (encoded("PNG", (40, 40)), "at least 64 px"),
        "one pixel high": (png_header_only(5000, 1), "at least 64 px"),
    }


HOSTILE = hostile_files()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_upload_is_refused_and_nothing_is_stored(name, tmp_path):
    data, message = HOSTILE[name]
    source = tmp_path / "upload.png"
    source.write_bytes(data)
    uploads = tmp_path / "uploads"
    with pytest.raises(UserInputError, match=message) as info:
        store_upload(source, uploads)
    text = str(info.value)
    assert "\n" not in text and str(tmp_path) not in text and "/" not in text.replace("w/", "")
    assert not uploads.exists() or not any(uploads.iterdir())


@pytest.mark.parametrize("fmt,kind", [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_honest_photos_are_stored_by_content(fmt, kind, tmp_path):
    data = encoded(fmt, (300, 200))
    source = tmp_path / "photo.bin"
    source.write_bytes(data)
    name = store_upload(source, tmp_path / "uploads")
    assert name.endswith("." + kind) and (tmp_path / "uploads" / name).read_bytes() == data
    assert check_photo(data) == kind


def test_the_pixel_cap_message_never_reads_as_the_limit():
    assert megapixels(40_010_000) == "40.01 MP"
    assert megapixels(40_000_001) == "40.000001 MP"
    assert megapixels(39_997_000) == "40.0 MP"  # under the cap: one decimal is honest
    assert probe_image(encoded("PNG", (300, 200))) == ("PNG", 300, 200)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_big_photos_are_reduced_while_loading(fmt, tmp_path):
    # 5000 x 4000 = 20 MP > WORK_MAX_PIXELS: JPEG decodes at 1/2 (draft), PNG is reduced after decoding
    path = tmp_path / f"big.{fmt.lower()}"
    Image.new("RGB", (5000, 4000), (180, 140, 120)).save(path, format=fmt)
    pixels = load_image(path)
    assert pixels.shape == (2000, 2500, 3) and pixels.dtype == np.uint8
    assert pixels.shape[0] * pixels.shape[1] <= WORK_MAX_PIXELS
    assert abs(int(pixels[1000, 1000, 0]) - 180) <= 3
    assert load_image(path, work_max_pixels=None).shape == (4000, 5000, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_reduced_photo_keeps_its_exif_orientation(fmt, tmp_path):
    # the orientation is applied after the reduction (draft / reduce), from the EXIF the decoder kept
    path = tmp_path / f"turned.{fmt.lower()}"
    image = Image.new("RGB", (5000, 4000), (200, 200, 200))
    image.paste((20, 20, 20), (0, 0, 2500, 4000))  # dark left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": the dark half ends on top
    image.save(path, format=fmt, exif=exif.tobytes())
    pixels = load_image(path)
    assert pixels.shape == (2500, 2000, 3)
    assert pixels[200, 1000, 0] < 60 and pixels[2300, 1000, 0] > 150


def test_load_messages_name_the_file_not_its_folder(tmp_path):
    secret = tmp_path / "srv" / "data" / "uploads"
    secret.mkdir(parents=True)
    bad = secret / ("0" * 32 + ".png")
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(UserInputError) as info:
        load_image(bad)
    assert str(info.value).startswith("0" * 32 + ".png ") and str(secret) not in str(info.value)
    with pytest.raises(UserInputError) as info:
        load_image(secret / "missing.jpg")
    assert str(secret) not in str(info.value)


def test_only_the_apps_own_uploads_are_named_by_path(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    name = "a" * 32 + ".png"
    (uploads / name).write_bytes(encoded("PNG"))
    assert stored_upload_path(name, uploads) == uploads / name
    assert stored_upload_path(str(uploads / name), uploads) == uploads / name
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / name).write_bytes(encoded("PNG"))
    (uploads / ("b" * 32 + ".png")).symlink_to(tmp_path / "elsewhere" / name)
    for path in (str(tmp_path / "elsewhere" / name), "b" * 32 + ".png", "photo.png", "../uploads/" + name,
                 str(uploads / ".." / "elsewhere" / name), "/etc/passwd", "c" * 32 + ".png"):
        assert stored_upload_path(path, uploads) is None, path


class _Blocks:  # what web.uploads reads of a gr.Blocks
    def __init__(self, files):
        self.upload_file_set = set(map(str, files))


def test_rejected_and_unused_uploads_are_removed(tmp_path):
    fresh, old, other = tmp_path / "s1" / "a.png", tmp_path / "s2" / "b.png", tmp_path / "c.png"
    for p in (fresh, old, other):
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    blocks = _Blocks([fresh, old])
    discard_received_upload(str(other), blocks)  # not an upload: never touched
    assert other.exists()
    import os
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert sweep_received_uploads(blocks, max_age_s=600) == 1
    assert not old.exists() and not old.parent.exists() and fresh.exists()
    discard_received_upload(str(fresh), blocks)
    assert not fresh.exists() and blocks.upload_file_set == set()


@pytest.mark.parametrize("files", [0, 1, 2, 12])
def test_multipart_file_parts_are_counted(files):
    boundary = "----x7"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="p{i}.png"\r\n'
             f'Content-Type: image/png\r\n\r\n' for i in range(files)]
    body = "".join(p + "--not-a-boundary filename=\r\n" for p in parts) + f"--{boundary}--\r\n"
    assert multipart_file_count(body.encode(), f"multipart/form-data; boundary={boundary}") == files


def test_provenance_command_line_has_no_absolute_paths():
    from avatarclip_core.provenance import public_argv

    argv = ["/srv/app/.venv/bin/avatar", "worker", "--logfile", "/srv/data/logs/w.log", "-o", "out"]
    assert public_argv(argv) == ["avatar", "worker", "--logfile", "w.log", "-o", "out"]
    assert public_argv([]) == [] and public_argv([""]) == []


def test_uploads_module_never_stores_outside_its_folder(tmp_path):
    # a content-addressed name, whatever the source file was called
    source = tmp_path / "evil name; rm -rf.png"
    source.write_bytes(encoded("PNG"))
    name = store_upload(source, tmp_path / "uploads")
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [name]
