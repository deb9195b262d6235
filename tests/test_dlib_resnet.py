"""Our run of dlib's face-recognition ResNet (faces/dlib_resnet.py: its weights as an ONNX graph for
OpenCV's DNN module, faces/onnx_graph.py) gives dlib's own descriptors,
on real faces (scikit-image's astronaut, and ../shared/data/faces-identity where it exists), and a
damaged model file fails with a message that says what to reinstall."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import skimage

from face2param.faces import models
from face2param.faces.analysis import analyse_face
from face2param.faces.dlib_resnet import CHIP_PADDING, CHIP_SIZE, DlibFaceResNet, DlibModelFileError
from face2param.faces.identity import dlib_embedding, face_window
from face2param.faces.images import load_image
from face2param.faces.landmarks import dlib_full_object_detection

IDENTITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-identity"
MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"


def _photos() -> list[np.ndarray]:
    photos = [skimage.data.astronaut()]
    photos += [load_image(p) for p in sorted(IDENTITY.glob("*.jpg"))[:6]]  # none where the folder is absent
    return photos


def _dlib_shape(pixels: np.ndarray):
    analysis = analyse_face(pixels)
    crop, origin = face_window(pixels, analysis.landmarks_68)
    box = dataclasses.replace(analysis.box, left=analysis.box.left - origin[0], top=analysis.box.top - origin[1])
    return analysis, crop, dlib_full_object_detection(crop, analysis.landmarks_68[:, :2] - origin, box)


def test_descriptors_equal_dlibs_own_network_on_real_faces():
    import dlib

    network = models.dlib_face_recognition().model  # dlib's C++ network, same file
    ours = models.dlib_face_resnet().model
    chips, expected = [], []
    for pixels in _photos():
        analysis, crop, shape = _dlib_shape(pixels)
        chips.append(dlib.get_face_chip(crop, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        expected.append(np.asarray(network.compute_face_descriptor(crop, shape, 0)))
        # the analysis's embedding is ours: dlib's within float32 rounding
        np.testing.assert_allclose(analysis.embedding, expected[-1], atol=1e-5)
    one_by_one = np.stack([ours.descriptors(chip)[0] for chip in chips])
    batched = ours.descriptors(np.stack(chips))
    np.testing.assert_allclose(one_by_one, np.stack(expected), atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    assert one_by_one.dtype == np.float64 and one_by_one.shape == (len(chips), 128)


def test_jittered_descriptors_still_come_from_dlib():
    pixels = skimage.data.astronaut()
    analysis, _, _ = _dlib_shape(pixels)
    plain = dlib_embedding(pixels, analysis.landmarks_68, analysis.box, jitters=0)
    jittered = dlib_embedding(pixels, analysis.landmarks_68, analysis.box, jitters=2)
    assert 0 < np.linalg.norm(jittered - plain) < 0.2  # dlib's random crops: near, never identical


@pytest.mark.parametrize("damage", ["truncated", "not_dlib", "missing"])
def test_damaged_model_file_says_what_to_reinstall(tmp_path, damage):
    path = tmp_path / MODEL_NAME
    original = (models.dlib_models_dir() / MODEL_NAME).read_bytes()
    if damage == "truncated":
        path.write_bytes(original[:len(original) // 2])
    elif damage == "not_dlib":
        path.write_bytes(b"con_4 is not a network" * 100)
    with pytest.raises(DlibModelFileError, match="face_recognition_models") as error:
        DlibFaceResNet(path)
    assert str(path) in str(error.value)


def test_descriptors_from_many_threads_agree():
    """One OpenCV Net runs one forward at a time (the model's lock): calls from several threads (a
    threaded web server) all get the one descriptor a single call gets."""
    import threading

    pixels = skimage.data.astronaut()
    analysis = analyse_face(pixels)
    single, results = dlib_embedding(pixels, analysis.landmarks_68, analysis.box), []

    def run():
        for _ in range(5):
            results.append(dlib_embedding(pixels, analysis.landmarks_68, analysis.box))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 20 and all(np.array_equal(r, single) for r in results)


def test_onnx_graph_bytes_run_in_opencv_as_numpy_computes_them():
    """The hand-written ONNX encoding on its own: int and int-list attributes, initialisers, a Pad's
    int64 constant and a symbolic batch axis, against the same sums in numpy."""
    import cv2

    from face2param.faces.onnx_graph import OnnxGraph

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    graph = OnnxGraph()
    y = graph.add("Conv", ["x", graph.constant(weight), graph.constant(bias)], kernel_shape=(3, 3),
                  strides=(2, 2), pads=(1, 1, 1, 1))
    y = graph.add("Pad", [graph.add("Relu", [y]), graph.constant(np.array([0, 0, 0, 0, 0, 2, 1, 0], dtype=np.int64))])
    net = cv2.dnn.readNetFromONNX(np.frombuffer(graph.to_bytes("x", ("N", 2, 7, 7), y, ("N", 6, 5, 4)), np.uint8))
    x = rng.normal(size=(2, 2, 7, 7)).astype(np.float32)
    net.setInput(x)
    got = net.forward()

    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((2, 4, 4, 4), np.float32)
    for i in range(4):
        for j in range(4):
            window = padded[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            conv[:, :, i, j] = np.einsum("nchw,ochw->no", window, weight) + bias
    expected = np.pad(np.maximum(conv, 0), ((0, 0), (0, 2), (0, 1), (0, 0)))
    assert got.shape == (2, 6, 5, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
