"""Export of rigged, animated avatars: GLB (primary), BVH (motion only) and FBX (via Blender, optional).

Everything here consumes the shared types of `avatarclip_core.body.types` and poses through
`avatarclip_core.body.lbs`, so an exported file plays back exactly the pose our own FK computes.
"""
from .bvh import read_bvh, write_bvh
from .fbx import BlenderError, FbxUnavailableError, fbx_available, glb_to_fbx, inspect_in_blender, require_bpy
from .gltf import glb_bytes, read_glb, smooth_vertex_normals, write_glb
from .weights import pack_skin_weights

__all__ = [
    "write_glb",
    "read_glb",
    "glb_bytes",
    "smooth_vertex_normals",
    "pack_skin_weights",
    "write_bvh",
    "read_bvh",
    "glb_to_fbx",
    "inspect_in_blender",
    "fbx_available",
    "require_bpy",
    "FbxUnavailableError",
    "BlenderError",
]
