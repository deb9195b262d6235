"""Differentiable mesh rendering for the CLIP-guided losses, previews and tests.

Our own (pytorch3d cannot be installed), with an API close to pytorch3d's so a CUDA backend such as
nvdiffrast can be swapped in behind ``rasterize``: a Warp visibility pass finds the visible
triangle per pixel, torch recomputes barycentrics differentiably, and a soft silhouette band
gives vertex positions gradients at the outline. See rasterizer.py for the design and
cameras.py for the view conventions (OpenGL style, Y up, avatar facing +Z).

Names load their module on first use (PEP 562), so a torch-free module below (config.py) imports
without the rest of the package.
"""
import importlib

_EXPORTS = {  # name -> the module that defines it
    "blurred_chessboard": "backgrounds",
    "gaussian_blur": "backgrounds",
    "gaussian_noise": "backgrounds",
    "random_backgrounds": "backgrounds",
    "solid": "backgrounds",
    "CameraSample": "cameras",
    "PerspectiveCameras": "cameras",
    "cameras_look_at": "cameras",
    "face_camera": "cameras",
    "look_at_view_transform": "cameras",
    "orbit_camera": "cameras",
    "sample_random_cameras": "cameras",
    "BackgroundConfig": "config",
    "CameraSamplingConfig": "config",
    "ShadingConfig": "config",
    "VIEW_AZIMUTHS": "preview",
    "render_preview": "preview",
    "save_png": "preview",
    "Fragments": "rasterizer",
    "RasterSettings": "rasterizer",
    "rasterize": "rasterizer",
    "ALL_OUTPUTS": "renderer",
    "MeshRenderer": "renderer",
    "RenderOutput": "renderer",
    "sample_texture": "renderer",
    "headlight": "shading",
    "lambert": "shading",
    "sample_ambient": "shading",
    "sample_light_directions": "shading",
    "MeshTopology": "topology",
    "get_topology": "topology",
    "vertex_normals": "topology",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
