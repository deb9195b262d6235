"""Landmark tables of the Anny head: which mesh triangle (and where in it) each detector landmark lies on.

Built reproducibly by `build_tables`: render the engine's default face (512 px, front camera), run dlib's
68-point iBUG predictor and mediapipe's 478-point face mesh on the render, and cast each detection back onto
the head mesh (the triangle under the pixel, screen-space barycentrics). Tables store *body* vertex ids,
so they survive changes of the head region. The same npz carries the calibration of these points against
the detectors across slider settings (landmark_calibration.py; fitted on the tables, so rebuilding the
tables drops it). Rebuild both:  python -m face2param.engines.landmarks all  (or `tables`, `calibrate`)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avatarclip_core.render import RasterSettings, rasterize

DATA = Path(__file__).parent / "data" / "landmarks_anny.npz"
SCHEMES = ("ibug68", "mediapipe478")
BUILD_SIZE = 512


def available_schemes(path: Path = DATA) -> list[str]:
    if not path.exists():
        return []
    with np.load(path) as data:
        return [s for s in SCHEMES if f"{s}_ids" in data]


def load_table(scheme: str, head, path: Path = DATA) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, 3) head-local vertex ids and (L, 3) barycentrics on the head's device."""
    with np.load(path) as data:
        body_ids, bary = torch.from_numpy(data[f"{scheme}_ids"]).long(), torch.from_numpy(data[f"{scheme}_bary"]).float()
    remap = torch.full((int(head.body_vertex_ids.max()) + 1,), -1, dtype=torch.long)
    remap[head.body_vertex_ids.cpu()] = torch.arange(len(head.body_vertex_ids))
    local = remap[body_ids.clamp(max=len(remap) - 1)]
    if (local < 0).any() or (body_ids >= len(remap)).any():
        raise RuntimeError(f"landmark table {scheme} refers to vertices outside the head region: rebuild it")
    return local.to(head.neutral.device), bary.to(head.neutral.device)


def default_face_image(engine, size: int = BUILD_SIZE) -> np.ndarray:
    """uint8 (H, W, 3) render of the default parameters with no hair over the forehead, no glasses or beard."""
    params = engine.spec.defaults()
    params.discrete.update({"hair_style": "buzz", "beard": "none", "glasses": "none"})
    img = engine.render(params, size).cpu().numpy()
    return (img.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def detect_dlib68(image: np.ndarray) -> np.ndarray:
    import importlib.util

    import dlib

    # face_recognition_models' own locator imports pkg_resources (absent on new setuptools): find the file
    package = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]
    model = Path(package) / "models" / "shape_predictor_68_face_landmarks.dat"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model))
    boxes = detector(image, 1)
    if not boxes:
        raise RuntimeError("dlib found no face in the render of the default head")
    shape = predictor(image, max(boxes, key=lambda b: b.area()))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def detect_mediapipe478(image: np.ndarray) -> np.ndarray:
    from mediapipe.python.solutions import face_mesh

    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        raise RuntimeError("mediapipe found no face in the render of the default head")
    H, W = image.shape[:2]
    return np.array([[p.x * W, p.y * H] for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)


def cast_to_mesh(engine, points: np.ndarray, size: int = BUILD_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Pixel points (L, 2) -> body vertex ids (L, 3) and screen-space barycentrics (L, 3) on the head mesh.
    A point off the mesh (e.g. a jaw point on the silhouette) snaps to the nearest covered pixel."""
    head = engine.head
    x = engine.spec.defaults().continuous_vector(engine.spec, engine.device)[None]
    with torch.no_grad():
        verts = head.vertices(x)
        frags = rasterize(verts, head.faces, engine.camera, RasterSettings(image_size=size, sigma=0.0))
        screen = engine.camera.transform_points_screen(verts, (size, size))[0, :, :2].cpu()
    pix_face = frags.pix_to_face[0, :, :, 0].cpu()
    covered = torch.nonzero(pix_face >= 0).float()  # (row, col)
    faces = head.faces.cpu()
    ids, barys = [], []
    for px, py in points:
        row, col = int(py), int(px)
        f = int(pix_face[row, col]) if 0 <= row < size and 0 <= col < size else -1
        if f < 0:
            nearest = covered[(covered - torch.tensor([py - 0.5, px - 0.5])).norm(dim=1).argmin()]
            row, col = int(nearest[0]), int(nearest[1])
            px, py = col + 0.5, row + 0.5
            f = int(pix_face[row, col])
        a, b, c = screen[faces[f]]
        m = torch.stack([b - a, c - a], 1)
        uv = torch.linalg.solve(m, torch.tensor([px, py]) - a).clamp(0, 1)
        bary = torch.tensor([1 - uv.sum(), uv[0], uv[1]]).clamp_min(0)
        ids.append(head.body_vertex_ids.cpu()[faces[f]].numpy())
        barys.append((bary / bary.sum()).numpy())
    return np.stack(ids).astype(np.int32), np.stack(barys).astype(np.float32)


def build_tables(engine, path: Path = DATA) -> dict[str, int]:
    """Detect on the default face, cast onto the mesh and write `path` (npz, without a calibration:
    it would be stale); returns scheme -> count."""
    image = default_face_image(engine)
    tables, counts = {}, {}
    for scheme, detect in (("ibug68", detect_dlib68), ("mediapipe478", detect_mediapipe478)):
        points = detect(image)
        ids, bary = cast_to_mesh(engine, points)
        tables[f"{scheme}_ids"], tables[f"{scheme}_bary"] = ids, bary
        tables[f"{scheme}_detected_px"] = points
        counts[scheme] = len(points)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, build_size=np.int32(BUILD_SIZE), **tables)
    return counts


def main(argv=None) -> None:
    import argparse
    import json
    import os

    os.environ.setdefault("WARP_QUIET", "1")
    from face2param.engines.anny_engine import AnnyEngineConfig, AnnyFaceEngine
    from face2param.engines.calibrate_landmarks import calibrate

    parser = argparse.ArgumentParser(prog="python -m face2param.engines.landmarks",
                                     description="Rebuild the Anny engine's landmark tables and/or their calibration.")
    parser.add_argument("what", choices=["tables", "calibrate", "all"])
    parser.add_argument("--count", type=int, default=2000, help="calibration faces (rendered and analysed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout", type=float, default=0.2, help="held-out fraction for the before/after report")
    parser.add_argument("--ridge", type=float, default=None, help="default: chosen on a validation split")
    parser.add_argument("--groups", default="", help="comma-separated point groups to correct (jaw, brows, "
                        "nose, eyes, mouth; mediapipe also 'other'); default all")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    engine = AnnyFaceEngine(AnnyEngineConfig(device=args.device, calibrated_landmarks=False))
    if args.what in ("tables", "all"):
        print(build_tables(engine))
        engine = AnnyFaceEngine(AnnyEngineConfig(device=args.device, calibrated_landmarks=False), body=engine.body)
    if args.what in ("calibrate", "all"):
        print(json.dumps(calibrate(engine, DATA, args.count, args.seed, args.heldout, args.ridge,
                                   groups=tuple(g for g in args.groups.split(",") if g) or None), indent=1))


if __name__ == "__main__":
    main()
