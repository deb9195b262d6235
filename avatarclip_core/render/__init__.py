"""Differentiable mesh rendering for the CLIP-guided losses, previews and tests.

Our own (pytorch3d cannot be installed), with an API close to pytorch3d's so a CUDA backend such as
nvdiffrast can be swapped in behind ``rasterize``: a Warp visibility pass finds the visible
triangle per pixel, torch recomputes barycentrics differentiably, and a soft silhouette band
gives vertex positions gradients at the outline. See rasterizer.py for the design and
cameras.py for the view conventions (OpenGL style, Y up, avatar facing +Z).

Names load their module on first use (PEP 562), so a torch-free module below (config.py) imports
without the rest of the package.
"""
from avatarclip_core.lazy import lazy_exports

__getattr__, __all__ = lazy_exports({
    "avatarclip_core.render.backgrounds": ("blurred_chessboard gaussian_blur gaussian_noise random_backgrounds "
                                           "solid"),
    "avatarclip_core.render.cameras": ("CameraSample PerspectiveCameras cameras_look_at face_camera "
                                       "look_at_view_transform orbit_camera sample_random_cameras"),
    "avatarclip_core.render.config": "BackgroundConfig CameraSamplingConfig ShadingConfig",
    "avatarclip_core.render.preview": "VIEW_AZIMUTHS render_preview save_png",
    "avatarclip_core.render.rasterizer": "Fragments RasterSettings rasterize",
    "avatarclip_core.render.renderer": "ALL_OUTPUTS MeshRenderer RenderOutput sample_texture",
    "avatarclip_core.render.shading": "headlight lambert sample_ambient sample_light_directions",
    "avatarclip_core.render.topology": "MeshTopology get_topology vertex_normals",
})
