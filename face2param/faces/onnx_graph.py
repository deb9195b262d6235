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


# Messages are lists of byte chunks joined once at the end: a nested message's length is the sum of its
# chunks' lengths, so the weights (megabytes) are copied once, not once per level of nesting.
Chunks = list


def _integer(number: int, value: int) -> Chunks:
    return [_varint(number << 3), _varint(value)]


def _message(number: int, payload: Chunks | bytes | str) -> Chunks:
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, list):
        payload = [payload]
    return [_varint(number << 3 | 2), _varint(sum(len(c) for c in payload)), *payload]


def _tensor(name: str, array: np.ndarray) -> Chunks:
    array = np.asarray(array)
    kind = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}[array.dtype]
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))  # no copy when already so
    dims = [c for d in array.shape for c in _integer(1, d)]
    return dims + _integer(2, kind) + _message(8, name) + _message(9, memoryview(array).cast("B"))


def _attribute(name: str, value: int | tuple[int, ...]) -> Chunks:
    if isinstance(value, int):
        return _message(1, name) + _integer(3, value) + _integer(20, _ATTRIBUTE_INT)
    return _message(1, name) + [c for v in value for c in _integer(8, v)] + _integer(20, _ATTRIBUTE_INTS)


def _value_info(name: str, shape: tuple[int | str, ...]) -> Chunks:
    dims = [c for d in shape for c in _message(1, _message(2, d) if isinstance(d, str) else _integer(1, d))]
    tensor_type = _integer(1, _FLOAT) + _message(2, dims)
    return _message(1, name) + _message(2, _message(1, tensor_type))


@dataclass
class OnnxGraph:
    """Nodes in execution order; `add` returns the new node's output name for the next node's input."""

    nodes: list[Chunks] = field(default_factory=list)
    initializers: list[Chunks] = field(default_factory=list)
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
        node = [c for i in inputs for c in _message(1, i)] + _message(2, output) + _message(3, output)
        node += _message(4, op_type) + [c for k, v in attributes.items() for c in _message(5, _attribute(k, v))]
        self.nodes.append(node)
        return output

    def to_bytes(self, input_name: str, input_shape: tuple[int | str, ...], output: str,
                 output_shape: tuple[int | str, ...]) -> bytes:
        graph = [c for n in self.nodes for c in _message(1, n)] + _message(2, "graph")
        graph += [c for t in self.initializers for c in _message(5, t)]
        graph += _message(11, _value_info(input_name, input_shape)) + _message(12, _value_info(output, output_shape))
        opset = _message(1, "") + _integer(2, _OPSET)
        model = _integer(1, _IR_VERSION) + _message(2, "avatar-studio") + _message(7, graph) + _message(8, opset)
        return b"".join(model)
