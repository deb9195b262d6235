"""Face analysis on a real photo (scikit-image's astronaut) and on images the tests make.
Needs nothing from /work/shared; the mediapipe/dlib models are built once per session."""
from __future__ import annotations

import io
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image, ImageOps

from face2param.faces import models
from face2param.faces.align import aligned_crop, align_landmarks, umeyama
from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
from face2param.faces.detect import DetectionConfig, detect_face
from face2param.faces.embedders import (ARCHITECTURES, IdentityEmbedder, build_embedder,
                                        load_embedder)
from face2param.faces.errors import (EmbedderCheckpointError, FaceTooSmallError,
                                     ImageNotFoundError, ImageTooLargeError, ImageTooSmallError,
                                     NoFaceError, NotAnImageError, TruncatedImageError)
from face2param.faces.identity import identity_cosine, identity_distance
from face2param.faces.images import ALPHA_BACKGROUND, load_image


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_analysis(astronaut):
    models.warm_up()  # builds every detector once for the whole session
    return analyse_face(astronaut)


def _encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _shifted(image: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[scale, 0, dx], [0, scale, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderValue=(128, 128, 128))


# ---- analysis of one real face ------------------------------------------------------------------
def test_astronaut_one_face_with_landmarks_inside_its_box(astronaut, astronaut_analysis):
    result = astronaut_analysis
    box = result.box
    height, width = astronaut.shape[:2]
    assert result.warnings == []
    assert 0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height
    assert result.landmarks_478.shape == (478, 3) and result.landmarks_68.shape == (68, 2)
    for points, tolerance in ((result.landmarks_68, 0.05), (result.landmarks_478, 0.2)):
        # the mesh also covers the upper forehead, which detector boxes cut off
        margin = tolerance * box.size
        assert (points[:, 0] >= box.left - margin).all() and (points[:, 0] <= box.right + margin).all()
        assert (points[:, 1] >= box.top - margin).all() and (points[:, 1] <= box.bottom + margin).all()
    inside = ((result.landmarks_478[:, 0] >= box.left) & (result.landmarks_478[:, 0] <= box.right)
              & (result.landmarks_478[:, 1] >= box.top) & (result.landmarks_478[:, 1] <= box.bottom))
    assert inside.mean() > 0.9
    eyes_68, mouth_68 = result.landmarks_68[36:48, 1].mean(), result.landmarks_68[48:68, 1].mean()
    assert eyes_68 < mouth_68
    irises, lips = result.landmarks_478[[468, 473], 1].mean(), result.landmarks_478[[13, 14], 1].mean()
    assert irises < lips
    # the image-left iris (468) is the subject's right eye, between its corners 33 and 133
    assert result.landmarks_478[33, 0] < result.landmarks_478[468, 0] < result.landmarks_478[133, 0]
    # mesh mapped to the 68 scheme agrees with dlib's predictor within 10% of the eye distance
    from face2param.faces.landmarks import mesh_to_68

    eye_distance = np.linalg.norm(result.landmarks_68[36] - result.landmarks_68[45])
    error = np.linalg.norm(mesh_to_68(result.landmarks_478)[:, :2] - result.landmarks_68, axis=1)
    assert error.mean() / eye_distance < 0.1


def test_astronaut_embedding_colours_and_timings(astronaut_analysis):
    result = astronaut_analysis
    assert result.embedding.shape == (128,) and np.isfinite(result.embedding).all()
    assert 0.5 < np.linalg.norm(result.embedding) < 2.0
    red, green, blue = result.colours.skin
    assert red > green > blue, result.colours.skin
    assert result.colours.hair is not None and result.colours.eyes is not None
    assert not result.cues.beard_likely and not result.cues.greyscale_photo
    assert set(result.timings) >= {"load", "detect", "mesh_478", "landmarks_68", "embedding",
                                   "regions", "total"}
    summary = result.to_json()
    assert len(summary["landmarks_478"]) == 478 and len(summary["embedding"]) == 128


def test_same_photo_scaled_and_shifted_is_the_same_person(astronaut, astronaut_analysis):
    moved = analyse_face(_shifted(astronaut, 0.85, 30, 20))
    assert identity_cosine(astronaut_analysis.embedding, moved.embedding) > 0.9
    assert identity_distance(astronaut_analysis.embedding, moved.embedding) < 0.6
    expected = astronaut_analysis.landmarks_68 * 0.85 + [30, 20]
    assert np.abs(moved.landmarks_68 - expected).mean() < 2.0  # pixels


def test_synthetic_non_face_raises_no_face(astronaut_analysis):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:256, 0:256]
    image = np.stack([xx, yy, (xx + yy) // 2], axis=-1).astype(np.uint8)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(0, 200, 2))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, (x, y), (x + 40, y + 30), colour, -1)
    with pytest.raises(NoFaceError, match="no face found"):
        analyse_face(image)


def test_two_faces_take_the_larger_with_a_warning(astronaut, astronaut_analysis):
    small = cv2.resize(astronaut, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 512 + small.shape[1], 3), 128, np.uint8)
    canvas[:, small.shape[1]:] = astronaut  # the larger copy on the right
    canvas[:small.shape[0], :small.shape[1]] = small
    result = analyse_face(canvas)
    assert result.box.left > small.shape[1] - 1
    assert any("2 faces" in warning for warning in result.warnings)
    assert identity_distance(result.embedding, astronaut_analysis.embedding) < 0.6


def test_the_full_range_detector_runs_only_where_no_confident_close_face_was_found(astronaut, monkeypatch):
    """A portrait: the short-range model's confident face ends the search (full range would find it again);
    the same face small in a wide canvas, or the knob at 0: every model runs."""
    import dataclasses

    from face2param.faces import detect

    ran: list[str] = []
    real = detect._mediapipe_boxes
    monkeypatch.setattr(detect, "_mediapipe_boxes", lambda image, model, score: ran.append(model) or real(image, model, score))
    config = DetectionConfig()
    portrait = np.ascontiguousarray(astronaut[30:330, 75:375])  # the 95 px face is ~1/3 of the side
    assert len(detect.detect_faces(portrait, config)) == 1 and ran == ["short_range"]
    ran.clear()
    assert detect.detect_faces(portrait, dataclasses.replace(config, close_face_fraction=0.0)) and \
        ran == ["short_range", "full_range"]
    ran.clear()
    assert detect.detect_faces(astronaut, config) and ran == ["short_range", "full_range"]  # under a fifth


def test_face_smaller_than_the_minimum_names_both_sizes(astronaut, astronaut_analysis):
    config = DetectionConfig(min_face_px=200)
    with pytest.raises(FaceTooSmallError, match=r"only \d+ px across; at least 200 px"):
        detect_face(astronaut, config)


# ---- image formats -------------------------------------------------------------------------------
def test_sixteen_bit_float_alpha_and_grey_versions_load_and_analyse(astronaut, tmp_path,
                                                                    astronaut_analysis):
    import tifffile

    png16 = tmp_path / "a16.png"
    cv2.imwrite(str(png16), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    float_tiff = tmp_path / "float.tif"
    tifffile.imwrite(float_tiff, astronaut.astype(np.float32) / 255.0, photometric="rgb")
    alpha = np.full(astronaut.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0  # a transparent strip
    rgba = np.dstack([astronaut, alpha])
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)

    loaded16 = load_image(png16)
    assert loaded16.dtype == np.uint8 and np.abs(loaded16.astype(int) - astronaut).max() <= 1
    loaded_float = load_image(float_tiff)
    assert np.abs(loaded_float.astype(int) - astronaut).max() <= 1
    loaded_rgba = load_image(_encode(rgba, "PNG"))
    assert (loaded_rgba[:, :40] == ALPHA_BACKGROUND).all()
    assert (loaded_rgba[:, 40:] == astronaut[:, 40:]).all()
    loaded_grey = load_image(_encode(grey, "PNG"))
    assert loaded_grey.shape == astronaut.shape and (loaded_grey[..., 0] == loaded_grey[..., 2]).all()

    reference = astronaut_analysis.box
    for source in (png16, float_tiff, _encode(rgba, "PNG")):
        box = analyse_face(source, FaceAnalysisConfig(compute_regions=False)).box
        assert abs(box.left - reference.left) < 5 and abs(box.top - reference.top) < 5
    grey_result = analyse_face(_encode(grey, "PNG"))
    assert any("greyscale" in warning for warning in grey_result.warnings)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "TIFF"])
def test_common_formats_load(astronaut, fmt):
    loaded = load_image(_encode(astronaut, fmt, **({"quality": 95} if fmt != "BMP" else {})))
    assert loaded.shape == astronaut.shape
    assert np.abs(loaded.astype(int) - astronaut).mean() < 4  # lossy formats within a few levels


def test_exif_orientation_is_applied(astronaut):
    stored = np.ascontiguousarray(np.rot90(astronaut, 1))  # how a sideways camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    loaded = load_image(_encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert loaded.shape == astronaut.shape
    assert np.abs(loaded.astype(int) - astronaut).mean() < 4


@pytest.mark.parametrize("options", [{"quality": 90}, {"quality": 90, "progressive": True},
                                     {"quality": 95, "subsampling": 0}, {"quality": 80, "subsampling": 1}])
def test_jpegs_decoded_by_opencv_are_pillows_pixels(astronaut, options):
    """The upright colour JPEG goes to OpenCV (faces/images._load_with_opencv): bit for bit Pillow's
    decode; a rotated one, a file with bytes after its end marker, a truncated one go to Pillow."""
    from face2param.faces import images

    def by_pillow(data):
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))

    jpeg = _encode(astronaut, "JPEG", **options)
    with Image.open(io.BytesIO(jpeg)) as image:
        assert images._load_with_opencv(image, jpeg) is not None
    np.testing.assert_array_equal(load_image(jpeg), by_pillow(jpeg))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _encode(astronaut, "JPEG", exif=exif.tobytes(), **options)
    for data in (rotated, jpeg + b"trailer", jpeg[:-100]):
        with Image.open(io.BytesIO(data)) as image:
            assert images._load_with_opencv(image, data) is None
    np.testing.assert_array_equal(load_image(jpeg + b"trailer"), by_pillow(jpeg))
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(jpeg[:-100])


def test_tiff_orientation_tag_matches_pillows_exif_convention(astronaut, tmp_path):
    import tifffile

    from face2param.faces.images import _apply_orientation

    tiny = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        with Image.open(io.BytesIO(_encode(tiny, "PNG", exif=exif.tobytes()))) as image:
            expected = np.asarray(ImageOps.exif_transpose(image))
        np.testing.assert_array_equal(_apply_orientation(tiny, orientation), expected)
    # a 16-bit TIFF (read by tifffile, not Pillow) stored sideways with orientation 6
    stored = np.ascontiguousarray(np.rot90(astronaut, 1)).astype(np.uint16) * 257
    path = tmp_path / "sideways16.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, 6, False)])
    np.testing.assert_array_equal(load_image(path), astronaut)


def test_bad_files_raise_specific_errors(astronaut, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are not pixels\n" * 20)
    with pytest.raises(NotAnImageError, match="text file"):
        load_image(text)
    jpeg = _encode(astronaut, "JPEG", quality=90)
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(jpeg[: len(jpeg) // 2])
    with pytest.raises(ImageTooSmallError, match="10x10"):
        load_image(_encode(np.zeros((10, 10, 3), np.uint8), "PNG"))
    with pytest.raises(NotAnImageError, match="HEIC"):
        load_image(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    with pytest.raises(NotAnImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageNotFoundError):
        load_image(tmp_path / "missing.jpg")


def test_huge_image_is_refused_from_its_header_alone():
    # a PNG header claiming 9000 x 9000 pixels, then 16 bytes of its 243 MB of pixel data
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    header = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(16))
    with pytest.raises(ImageTooLargeError, match="81.0 MP"):
        load_image(png)


# ---- alignment -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [2, 3])
def test_umeyama_recovers_a_known_similarity(dims):
    rng = np.random.default_rng(dims)
    source = rng.normal(size=(30, dims))
    q, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    rotation = q.copy()
    rotation[:, 0] *= np.sign(np.linalg.det(q))  # a proper rotation (det +1)
    target = 2.5 * source @ rotation.T + rng.normal(size=dims)
    aligned, transform = align_landmarks(source, target)
    assert transform.scale == pytest.approx(2.5)
    np.testing.assert_allclose(transform.rotation, rotation, atol=1e-9)
    np.testing.assert_allclose(aligned, target, atol=1e-9)
    np.testing.assert_allclose(transform.inverse().apply(target), source, atol=1e-9)
    mirrored = source * np.r_[-1.0, np.ones(dims - 1)]  # no reflection is ever returned
    assert np.linalg.det(umeyama(source, mirrored).rotation) == pytest.approx(1.0)


def test_aligned_crops_of_moved_photo_match(astronaut, astronaut_analysis):
    template = astronaut_analysis.landmarks_68
    moved_image = _shifted(astronaut, 0.8, 40, 25)
    moved_landmarks = template * 0.8 + [40, 25]  # where the same face points now are
    a = aligned_crop(astronaut, template, template, 128)
    b = aligned_crop(moved_image, moved_landmarks, template, 128)
    assert a.pixels.shape == (128, 128, 3)
    np.testing.assert_allclose(a.image_to_crop.apply(template), a.template_points, atol=1e-6)
    assert np.abs(a.pixels.astype(int) - b.pixels.astype(int)).mean() < 6
    flipped = template * [1.0, -1.0]  # a Y-up (engine) template gives the same crop
    c = aligned_crop(astronaut, template, flipped, 128, template_y_up=True)
    assert np.abs(a.pixels.astype(int) - c.pixels.astype(int)).max() <= 1


# ---- differentiable identity networks -------------------------------------------------------------
def test_lightcnn_checkpoint_loads_by_path_and_is_differentiable(tmp_path):
    torch.manual_seed(0)
    network = build_embedder("lightcnn29v2")
    state = {f"module.{k}": v for k, v in network.state_dict().items()}
    state["module.fc2.weight"] = torch.zeros(10, 256)  # the release's classifier is ignored
    checkpoint = tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar"
    torch.save({"epoch": 1, "state_dict": state}, checkpoint)
    loaded = load_embedder("lightcnn29v2", checkpoint, device=torch.device("cpu"))
    loaded_state = loaded.state_dict()
    assert all(torch.equal(loaded_state[name], value)
               for name, value in network.state_dict().items())
    assert not any(p.requires_grad for p in loaded.parameters())
    assert isinstance(loaded, IdentityEmbedder) and loaded.embedding_dim == 256
    # the full network costs ~3.5 GMAC a face: gradients are checked on a shallow variant here
    # (same stem, groups and head) and on the full ones in the slow test below
    from face2param.faces.embedders import LightCNN29V2

    _assert_differentiable_unit_embeddings(LightCNN29V2(layers=(0, 0, 0, 0)).eval(), 256)


def _assert_differentiable_unit_embeddings(network, dim):
    network.requires_grad_(False)  # frozen as load_embedder returns it: gradients reach the image
    images = torch.rand(1, 3, 64, 64, requires_grad=True)
    embeddings = network(images)
    assert embeddings.shape == (1, dim)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(1), atol=1e-5)
    embeddings[:, 0].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_full_identity_networks_are_differentiable(architecture):
    network = build_embedder(architecture).eval()
    _assert_differentiable_unit_embeddings(network, network.embedding_dim)


def test_wrong_or_missing_checkpoint_names_the_architecture(tmp_path):
    checkpoint = tmp_path / "lightcnn.pt"
    torch.save(build_embedder("lightcnn29v2").state_dict(), checkpoint)
    with pytest.raises(EmbedderCheckpointError, match="does not fit the iresnet50.*arcface"):
        load_embedder("iresnet50", checkpoint, "cpu")
    with pytest.raises(EmbedderCheckpointError, match="not found.*never downloaded"):
        load_embedder("iresnet100", tmp_path / "backbone.pth", "cpu")
    with pytest.raises(EmbedderCheckpointError, match="unknown identity network"):
        build_embedder("facenet")


def test_arcface_iresnet_sizes_and_forward():
    from face2param.faces.embedders import IResNet

    with torch.device("meta"):  # parameter counts without allocating 65 M weights
        counts = {a: sum(p.numel() for p in build_embedder(a).parameters())
                  for a in ARCHITECTURES}
    assert counts["iresnet100"] > counts["iresnet50"] > counts["lightcnn29v2"]
    assert 43e6 < counts["iresnet50"] < 44e6 and 65e6 < counts["iresnet100"] < 66e6
    _assert_differentiable_unit_embeddings(IResNet(layers=(1, 1, 1, 1)).eval(), 512)


# ---- models are built once and usable from threads -------------------------------------------------
def test_models_are_cached_and_thread_safe(astronaut, astronaut_analysis):
    assert models.dlib_shape_predictor_68() is models.dlib_shape_predictor_68()
    results = [None, None]

    def run(slot):
        results[slot] = analyse_face(astronaut, FaceAnalysisConfig(compute_regions=False))

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result.landmarks_68, astronaut_analysis.landmarks_68)
        np.testing.assert_allclose(result.embedding, astronaut_analysis.embedding, atol=1e-6)


def test_is_greyscale_answers_as_the_int16_difference_did():
    from face2param.faces.regions import is_greyscale

    rng = np.random.default_rng(0)
    for trial in range(200):
        grey = rng.integers(0, 256, (17, 23, 1))
        noise = rng.integers(-3, 4, (17, 23, 3)) * (rng.random((17, 23, 3)) < 0.01 * (trial % 4))
        rgb = np.clip(grey + noise, 0, 255).astype(np.uint8)
        expected = bool(np.abs(rgb.astype(np.int16) - rgb[:, :, :1]).max() <= 2)
        assert is_greyscale(rgb) == expected


@pytest.mark.parametrize("key, value", [("faces.detection.close_face_fraction", -0.1),
                                        ("faces.detection.close_face_fraction", 1.5),
                                        ("faces.detection.close_face_score", "high")])
def test_bad_close_face_settings_are_refused_by_name(key, value):
    """Checked where a config is built (CLI, API, worker): one error naming the key, before any photo is read."""
    from avatar_studio.pipelines.photo import load_photo_config
    from avatarclip_core.config.core import ConfigError

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_photo_config("preview", {key: value})
