"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) run in numpy.

The same network and weights as `dlib.face_recognition_model_v1`, read from the same file, on the
same 150 px face chip (dlib.get_face_chip cuts it): the descriptors agree with dlib's to ~1e-6
(tests/test_dlib_resnet.py). Why not dlib's own: its CPU convolutions take ~60 ms a face on this
machine, more than half of a photo's whole analysis; im2col + BLAS here takes a fraction of that,
and a batch of chips shares each layer's matrix products. numpy only, so the analysis still runs
in a process that never imports torch (the cold `avatar photo` forks it before torch loads).

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
    weight: np.ndarray  # (kh * kw * C, out), the affine that follows folded in
    bias: np.ndarray  # (out,)
    size: int
    stride: int
    padding: int


class DlibFaceResNet:
    """descriptors(chips (N, 150, 150, 3) uint8 RGB) -> (N, 128) float64, dlib's raw descriptors."""

    def __init__(self, path: str | Path):
        layers = _read_layers(Path(path))
        try:
            self.mean_rgb, self.stem, self.stem_pool, self.blocks, self.fc = _assemble(layers)
        except (AssertionError, IndexError, KeyError, ValueError) as exc:
            raise DlibModelFileError(
                f"{path} is not dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1"
                f".dat, from the face_recognition_models package): {exc}") from exc
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController()

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        assert chips.shape[1:] == (CHIP_SIZE, CHIP_SIZE, 3), chips.shape
        # one BLAS thread: OpenBLAS's second thread gave no faster descriptors on 2 cores (13 ms a face
        # either way, measured) and twice the CPU (it spins), which a batch or a worker needs for the
        # next photo. The limit is process-wide: callers in threads take the model's lock (models.py)
        with self._blas.limit(limits=1, user_api="blas"):
            return self._descriptors(chips)

    def _descriptors(self, chips: np.ndarray) -> np.ndarray:
        x = (chips.astype(np.float32) - self.mean_rgb) / np.float32(256.0)  # NHWC
        x = np.maximum(_conv(x, self.stem), 0)
        x = _pool(x, *self.stem_pool, np.max)
        for first, second, pool in self.blocks:
            y = _conv(np.maximum(_conv(x, first), 0), second)
            skip = x if pool is None else _pool(x, *pool, np.mean)
            x = np.maximum(_add_zero_padded(y, skip), 0)
        return (x.mean(axis=(1, 2)) @ self.fc).astype(np.float64)


def _conv(x: np.ndarray, conv: _Conv) -> np.ndarray:
    """NHWC convolution (cross-correlation, as dlib's) by im2col and one matrix product."""
    k, s, p = conv.size, conv.stride, conv.padding
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
    n, h, w = windows.shape[:3]
    # rows of (kh, kw, C), as the weights are laid out: the copy moves whole channel runs (C floats
    # that lie together in x), ~2x faster than (C, kh, kw) rows gathered a float at a time
    columns = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, -1)
    return (columns @ conv.weight + conv.bias).reshape(n, h, w, -1)


def _pool(x: np.ndarray, size: int, stride: int, padding: int, reduce) -> np.ndarray:
    assert padding == 0, "dlib pools with stride 2 pad nothing"
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return reduce(windows, axis=(-2, -1)).astype(np.float32)


def _add_zero_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's add_prev: the sum over the larger extent of each axis, the smaller tensor zero-filled
    past its end (a stride-2 block of 8 px gives 3 px, its pooled skip 4 px)."""
    if a.shape == b.shape:
        return a + b
    out = np.zeros([max(i, j) for i, j in zip(a.shape, b.shape)], dtype=np.float32)
    out[tuple(slice(0, d) for d in a.shape)] += a
    out[tuple(slice(0, d) for d in b.shape)] += b
    return out


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
        weight = weight.transpose(0, 2, 3, 1).reshape(filters, -1)  # dlib's (out, C, kh, kw) -> (out, kh, kw, C)
        return _Conv((weight * gamma[:, None]).T.copy(), (bias * gamma + beta).astype(np.float32),
                     size, stride, con["padding"])

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
    return mean_rgb, stem, stem_pool, blocks, fc["params"].reshape(256, 128)


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
