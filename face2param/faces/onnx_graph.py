"""A float32 network written as ONNX bytes, for OpenCV's DNN module to read (`cv2.dnn.readNetFromONNX`).

Why we write ONNX ourselves: the networks we run this way (dlib's face-recognition ResNet) ship as
another framework's weights, so the graph is built from them at load time, in memory; the `onnx`
package cannot be installed beside mediapipe (it needs protobuf >= 5, mediapipe pins < 5), and the
few messages needed here are a page of protobuf encoding. Field numbers are onnx.proto's (proto2:
repeated integers unpacked).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTRIBUTE_INT, _ATTRIBUTE_INTS = 2, 7  # AttributeProto.AttributeType
_IR_VERSION, _OPSET = 8, 13


def _varint(value: int) -> bytes:
    assert value >= 0, "only non-negative integers are written"
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _integer(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes(number: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor(name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    kind = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}[array.dtype]
    dims = b"".join(_integer(1, d) for d in array.shape)
    return dims + _integer(2, kind) + _bytes(8, name) + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes())


def _attribute(name: str, value: int | tuple[int, ...]) -> bytes:
    if isinstance(value, int):
        return _bytes(1, name) + _integer(3, value) + _integer(20, _ATTRIBUTE_INT)
    return _bytes(1, name) + b"".join(_integer(8, v) for v in value) + _integer(20, _ATTRIBUTE_INTS)


def _value_info(name: str, shape: tuple[int | str, ...]) -> bytes:
    dims = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _integer(1, d)) for d in shape)
    tensor_type = _integer(1, _FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


@dataclass
class OnnxGraph:
    """Nodes in execution order; `add` returns the new node's output name for the next node's input."""

    nodes: list[bytes] = field(default_factory=list)
    initializers: list[bytes] = field(default_factory=list)
    _count: int = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, array: np.ndarray) -> str:
        name = self._name("const")
        self.initializers.append(_tensor(name, array))
        return name

    def add(self, op_type: str, inputs: list[str], **attributes: int | tuple[int, ...]) -> str:
        output = self._name(op_type.lower())
        node = b"".join(_bytes(1, i) for i in inputs) + _bytes(2, output) + _bytes(3, output) + _bytes(4, op_type)
        node += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
        self.nodes.append(node)
        return output

    def to_bytes(self, input_name: str, input_shape: tuple[int | str, ...], output: str,
                 output_shape: tuple[int | str, ...]) -> bytes:
        graph = b"".join(_bytes(1, n) for n in self.nodes) + _bytes(2, "graph")
        graph += b"".join(_bytes(5, t) for t in self.initializers)
        graph += _bytes(11, _value_info(input_name, input_shape)) + _bytes(12, _value_info(output, output_shape))
        opset = _bytes(1, "") + _integer(2, _OPSET)
        return _integer(1, _IR_VERSION) + _bytes(2, "avatar-studio") + _bytes(7, graph) + _bytes(8, opset)
