"""Differentiable mesh rendering for the CLIP-guided losses, previews and tests.

Our own (pytorch3d cannot be installed), with an API close to pytorch3d's so a CUDA backend such as
nvdiffrast can be swapped in behind ``rasterize``: a Warp visibility pass finds the visible
triangle per pixel, torch recomputes barycentrics differentiably, and a soft silhouette band
gives vertex positions gradients at the outline. See rasterizer.py for the design and
cameras.py for the view conventions (OpenGL style, Y up, avatar facing +Z).
"""
from .backgrounds import (
    BackgroundConfig,
    blurred_chessboard,
    gaussian_blur,
    gaussian_noise,
    random_backgrounds,
    solid,
)
from .cameras import (
    CameraSample,
    CameraSamplingConfig,
    PerspectiveCameras,
    cameras_look_at,
    face_camera,
    look_at_view_transform,
    orbit_camera,
    sample_random_cameras,
)
from .preview import VIEW_AZIMUTHS, render_preview, save_png
from .rasterizer import Fragments, RasterSettings, rasterize
from .renderer import ALL_OUTPUTS, MeshRenderer, RenderOutput, sample_texture
from .shading import ShadingConfig, headlight, lambert, sample_ambient, sample_light_directions
from .topology import MeshTopology, get_topology, vertex_normals

__all__ = [
    "ALL_OUTPUTS", "BackgroundConfig", "CameraSample", "CameraSamplingConfig", "Fragments", "MeshRenderer",
    "MeshTopology", "PerspectiveCameras", "RasterSettings", "RenderOutput", "ShadingConfig", "VIEW_AZIMUTHS",
    "blurred_chessboard", "cameras_look_at", "face_camera", "gaussian_blur", "gaussian_noise", "get_topology",
    "headlight", "lambert", "look_at_view_transform", "orbit_camera", "random_backgrounds", "rasterize",
    "render_preview", "sample_ambient", "sample_light_directions", "sample_random_cameras", "sample_texture",
    "save_png", "solid", "vertex_normals",
]
