"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) run by OpenCV's DNN module.

The same network and weights as `dlib.face_recognition_model_v1`, read from the same file, on the
same 150 px face chip (dlib.get_face_chip cuts it): the descriptors agree with dlib's to ~1e-6
(tests/test_dlib_resnet.py). Why not dlib's own: its CPU convolutions take ~60 ms a face on this
machine, more than half of a photo's whole analysis. The weights are written into an ONNX graph in
memory (faces/onnx_graph.py) that cv2.dnn runs in ~8 ms of CPU a face (numpy's im2col and BLAS took
~12-13, measured side by side); cv2 is already the analysis's, so the analysis still runs in a
process that never imports torch (the cold `avatar photo` forks it before torch loads).

The file is dlib's own serialisation of its `anet_type` (dnn_face_recognition_ex.cpp): the network's
add_layer versions from the loss inwards, then each layer's details from the input outwards. We read
the details of the layers that compute (input, con, affine, pooling, fc) at the places their names
stand and check the result against the architecture below; anything else in the file is not needed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face2param.faces.errors import UserInputError
from face2param.faces.onnx_graph import OnnxGraph

CHIP_SIZE = 150  # dlib's input_rgb_image_sized<150>
CHIP_PADDING = 0.25  # compute_face_descriptor's chip padding
# (channels, stride) of each residual block after the stem, input to output (dlib's alevel4 ... alevel0)
_BLOCKS = ((32, 1),) * 3 + ((64, 2),) + ((64, 1),) * 3 + ((128, 2),) + ((128, 1),) * 2 + \
          ((256, 2),) + ((256, 1),) * 2 + ((256, 2),)
_LAYER_NAMES = re.compile(rb"input_rgb_image_sized|con_4|affine_|max_pool_2|avg_pool_2|fc_2")


class DlibModelFileError(UserInputError):
    pass


@dataclass
class _Conv:
    weight: np.ndarray  # (out, C, kh, kw) float32, the affine that follows folded in
    bias: np.ndarray  # (out,)
    stride: int
    padding: int


class DlibFaceResNet:
    """descriptors(chips (N, 150, 150, 3) uint8 RGB) -> (N, 128) float64, dlib's raw descriptors.
    One forward at a time (OpenCV's Net is not re-entrant): callers in threads take the model's lock."""

    def __init__(self, path: str | Path):
        layers = _read_layers(Path(path))
        try:
            self.mean_rgb, stem, stem_pool, blocks, fc = _assemble(layers)
        except (AssertionError, IndexError, KeyError, ValueError) as exc:
            raise DlibModelFileError(
                f"{path} is not dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1"
                f".dat, from the face_recognition_models package): {exc}") from exc
        import cv2

        self._net = cv2.dnn.readNetFromONNX(np.frombuffer(_onnx(stem, stem_pool, blocks, fc), dtype=np.uint8))

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        assert chips.shape[1:] == (CHIP_SIZE, CHIP_SIZE, 3), chips.shape
        x = (chips.astype(np.float32) - self.mean_rgb) / np.float32(256.0)  # dlib's input layer
        self._net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return self._net.forward().reshape(len(chips), -1).astype(np.float64)


def _onnx(stem: _Conv, stem_pool: tuple, blocks: list, fc: np.ndarray) -> bytes:
    """The network as ONNX for OpenCV's DNN module: its convolutions take ~8 ms of CPU a face here,
    where im2col and one BLAS product a layer in numpy took ~12-13 and dlib's own ~60 (descriptors
    within ~1e-6 of dlib's). NCHW; `shape` follows (C, H, W) for the zero-padded residual sums."""
    graph = OnnxGraph()

    def conv(x, layer: _Conv, shape):
        out, _, size, _ = layer.weight.shape
        y = graph.add("Conv", [x, graph.constant(layer.weight), graph.constant(layer.bias)],
                      kernel_shape=(size, size), strides=(layer.stride,) * 2, pads=(layer.padding,) * 4)
        side = [(s + 2 * layer.padding - size) // layer.stride + 1 for s in shape[1:]]
        return y, (out, *side)

    def pool(x, window, op_type, shape):
        size, stride, padding = window
        assert padding == 0, "dlib pools with stride 2 pad nothing"
        y = graph.add(op_type, [x], kernel_shape=(size, size), strides=(stride, stride))
        return y, (shape[0], *[(s - size) // stride + 1 for s in shape[1:]])

    def padded_to(x, shape, target):
        """dlib's add_prev sums over the larger extent of each axis, the smaller tensor zero-filled past
        its end (a stride-2 block of 8 px gives 3 px, its pooled skip 4 px; its channels double)."""
        if shape == target:
            return x
        ends = [t - s for s, t in zip(shape, target)]
        return graph.add("Pad", [x, graph.constant(np.array([0] * 4 + [0, *ends], dtype=np.int64))])

    x, shape = conv("chips", stem, (3, CHIP_SIZE, CHIP_SIZE))
    x, shape = pool(graph.add("Relu", [x]), stem_pool, "MaxPool", shape)
    for first, second, skip_pool in blocks:
        y, y_shape = conv(x, first, shape)
        y, y_shape = conv(graph.add("Relu", [y]), second, y_shape)
        skip, skip_shape = (x, shape) if skip_pool is None else pool(x, skip_pool, "AveragePool", shape)
        target = tuple(max(a, b) for a, b in zip(y_shape, skip_shape))
        x = graph.add("Relu", [graph.add("Add", [padded_to(y, y_shape, target), padded_to(skip, skip_shape, target)])])
        shape = target
    features = graph.add("Flatten", [graph.add("GlobalAveragePool", [x])])
    output = graph.add("MatMul", [features, graph.constant(fc)])
    return graph.to_bytes("chips", ("N", 3, CHIP_SIZE, CHIP_SIZE), output, ("N", fc.shape[1]))


def _assemble(layers: list[tuple[str, dict]]):
    names = [name for name, _ in layers]
    expected = ["input", "con", "affine", "max_pool"] + [
        n for _, stride in _BLOCKS for n in ["con", "affine", "con", "affine"] + (["avg_pool"] if stride == 2 else [])
    ] + ["avg_pool", "fc"]
    assert names == expected, f"layers {names[:12]}... differ from dlib's anet_type"
    queue = list(layers)

    def take(kind):
        name, details = queue.pop(0)
        assert name == kind, (name, kind)
        return details

    def conv_with_affine(out_channels, stride):
        con, affine = take("con"), take("affine")
        assert con["filters"] == out_channels and con["stride"] == stride, (con["filters"], out_channels)
        gamma, beta = np.split(affine["params"], 2)
        size, filters = con["size"], con["filters"]
        weight = con["params"][:filters * con["inputs"] * size * size].reshape(filters, con["inputs"], size, size)
        bias = con["params"][weight.size:]
        assert bias.size == filters and gamma.size == filters
        return _Conv((weight * gamma[:, None, None, None]).astype(np.float32), (bias * gamma + beta).astype(np.float32),
                     stride, con["padding"])

    mean_rgb = take("input")["mean_rgb"]
    stem = conv_with_affine(32, 2)
    stem_pool = take("max_pool")["window"]
    blocks = []
    for channels, stride in _BLOCKS:
        first, second = conv_with_affine(channels, stride), conv_with_affine(channels, 1)
        blocks.append((first, second, take("avg_pool")["window"] if stride == 2 else None))
    assert take("avg_pool")["window"][0] == 0  # avg_pool_everything
    fc = take("fc")
    assert fc["params"].size == 256 * 128, fc["params"].size
    return mean_rgb, stem, stem_pool, blocks, fc["params"].reshape(256, 128).astype(np.float32)


class _Reader:
    """dlib's serialisation: integers as a length byte (high bit: negative) then little-endian bytes;
    floats as an integer mantissa and exponent; tensors (version 2) as four sizes then raw float32."""

    def __init__(self, data: bytes, at: int):
        self.data, self.at = data, at

    def integer(self) -> int:
        head = self.data[self.at]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.at + 1:self.at + 1 + size], "little")
        self.at += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa) * 2.0 ** self.integer()

    def string(self) -> str:
        size = self.integer()
        text = self.data[self.at:self.at + size].decode("ascii")
        self.at += size
        return text

    def tensor(self) -> np.ndarray:
        assert self.integer() == 2, "tensor version"
        count = int(np.prod([self.integer() for _ in range(4)]))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.at)
        self.at += 4 * count
        return values.astype(np.float32)


def _read_layers(path: Path) -> list[tuple[str, dict]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DlibModelFileError(
            f"cannot read dlib's face recognition model {path} ({exc.strerror}): reinstall the "
            "face_recognition_models package (pip install face_recognition_models)") from exc
    layers: list[tuple[str, dict]] = []
    at = 0
    while (match := _LAYER_NAMES.search(data, at)) is not None:
        reader = _Reader(data, match.start() - 2)  # the name's length: a size byte and one value byte
        try:
            assert reader.at >= 0, "no length before the name"
            name = reader.string()
            assert name == match.group().decode(), "not a layer name"
            layers.append(_read_details(name, reader))
        except (AssertionError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise DlibModelFileError(
                f"{path}: unreadable {match.group().decode()} layer at byte {match.start()} ({exc}); "
                "the file is damaged: reinstall face_recognition_models") from exc
        at = reader.at  # past this layer's weights: a name's bytes inside them are not a layer
    return layers


def _read_details(name: str, reader: _Reader) -> tuple[str, dict]:
    if name == "input_rgb_image_sized":
        return "input", {"mean_rgb": np.array([reader.real() for _ in range(3)], dtype=np.float32)}
    if name == "con_4":
        params = reader.tensor()
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
        assert rows == cols and stride_y == stride_x and pad_y == pad_x
        inputs = (params.size - filters) // (filters * rows * cols)
        return "con", {"params": params, "filters": filters, "size": rows, "stride": stride_y,
                       "padding": pad_y, "inputs": inputs}
    if name == "affine_":
        return "affine", {"params": reader.tensor()}
    if name in ("max_pool_2", "avg_pool_2"):
        rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
        return name[:-2], {"window": (rows, stride_y, pad_y)}
    if name == "fc_2":
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor()
        assert params.size == inputs * outputs, "an fc layer with biases"
        return "fc", {"params": params}
    raise ValueError(name)
