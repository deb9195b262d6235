"""A tiny helper that packs numpy arrays into one GLB binary chunk and records pygltflib accessors.

Each accessor gets its own 4-byte-aligned bufferView, so no byteStride is ever needed (the glTF
validator rejects strides on animation and inverse-bind-matrix accessors) and readers stay simple.
"""
from __future__ import annotations

import numpy as np
import pygltflib as gl

# glTF componentType codes for the numpy dtypes we write.
COMPONENT_TYPES = {
    np.dtype(np.int8): gl.BYTE,
    np.dtype(np.uint8): gl.UNSIGNED_BYTE,
    np.dtype(np.int16): gl.SHORT,
    np.dtype(np.uint16): gl.UNSIGNED_SHORT,
    np.dtype(np.uint32): gl.UNSIGNED_INT,
    np.dtype(np.float32): gl.FLOAT,
}
ACCESSOR_TYPES = {1: gl.SCALAR, 2: gl.VEC2, 3: gl.VEC3, 4: gl.VEC4, 16: gl.MAT4}


class GlbBuilder:
    """Accumulates binary data for a single-buffer GLB."""

    def __init__(self, gltf: gl.GLTF2) -> None:
        self.gltf = gltf
        self._chunks: list[bytes] = []
        self._length = 0

    def add_buffer_view(self, data: bytes, target: int | None = None) -> int:
        pad = -self._length % 4
        if pad:
            self._chunks.append(b"\0" * pad)
            self._length += pad
        self.gltf.bufferViews.append(
            gl.BufferView(buffer=0, byteOffset=self._length, byteLength=len(data), target=target)
        )
        self._chunks.append(data)
        self._length += len(data)
        return len(self.gltf.bufferViews) - 1

    def add_accessor(
        self,
        array: np.ndarray,
        *,
        target: int | None = None,
        with_bounds: bool = False,
        normalized: bool = False,
        flat_type: str | None = None,
    ) -> int:
        """Store `array` (N,) or (N, C) and return the accessor index.

        with_bounds writes min/max, which the spec requires for POSITION and animation inputs.
        flat_type forces the accessor type (e.g. MAT4 for an (N, 16) array).
        """
        array = np.ascontiguousarray(array)
        if array.dtype not in COMPONENT_TYPES:
            raise TypeError(f"unsupported dtype for glTF accessor: {array.dtype}")
        count = array.shape[0]
        width = 1 if array.ndim == 1 else int(np.prod(array.shape[1:]))
        view = self.add_buffer_view(array.tobytes(), target)
        accessor = gl.Accessor(
            bufferView=view,
            componentType=COMPONENT_TYPES[array.dtype],
            count=count,
            type=flat_type or ACCESSOR_TYPES[width],
            normalized=True if normalized else None,
        )
        if with_bounds:
            flat = array.reshape(count, width)
            cast = float if array.dtype.kind == "f" else int
            accessor.min = [cast(v) for v in flat.min(axis=0)]
            accessor.max = [cast(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def add_sparse_accessor(self, array: np.ndarray) -> int:
        """Store float32 `array` (N, C) as a sparse accessor: zeros plus the rows that differ from zero
        (glTF's sparse storage; meant for morph targets that move a small part of a mesh). min/max are
        written (the spec requires them for POSITION, morph targets included). A row-less accessor
        (nothing moves) has neither bufferView nor sparse: readers initialise it with zeros."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        count, width = array.shape
        accessor = gl.Accessor(
            componentType=gl.FLOAT, count=count, type=ACCESSOR_TYPES[width], byteOffset=None,
            min=[float(v) for v in array.min(axis=0)], max=[float(v) for v in array.max(axis=0)],
        )
        rows = np.flatnonzero((array != 0).any(axis=1))
        if rows.size:
            index_dtype = np.uint16 if count <= 65536 else np.uint32  # largest index is count - 1
            accessor.sparse = gl.Sparse(
                count=int(rows.size),
                indices=gl.AccessorSparseIndices(bufferView=self.add_buffer_view(rows.astype(index_dtype).tobytes()),
                                          componentType=COMPONENT_TYPES[np.dtype(index_dtype)]),
                values=gl.AccessorSparseValues(bufferView=self.add_buffer_view(array[rows].tobytes())),
            )
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        """Attach the packed binary chunk (padded to 4 bytes, as GLB requires) as buffer 0."""
        blob = b"".join(self._chunks)
        blob += b"\0" * (-len(blob) % 4)
        self.gltf.buffers = [gl.Buffer(byteLength=len(blob))]
        self.gltf.set_binary_blob(blob)
