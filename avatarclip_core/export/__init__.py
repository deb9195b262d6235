"""Export of rigged, animated avatars: GLB (primary), VRM 1.0, BVH (motion only) and FBX (via Blender,
optional), shaped for an engine by an export profile (profiles.py).

Everything here consumes the shared types of `avatarclip_core.body.types` and poses through
`avatarclip_core.body.lbs`, so an exported file plays back exactly the pose our own FK computes.
Names load their module on first use (PEP 562), so the torch-free profiles.py imports without torch.
"""
from avatarclip_core.lazy import lazy_exports

__getattr__, __all__ = lazy_exports({
    "avatarclip_core.export.bvh": "read_bvh write_bvh",
    "avatarclip_core.export.fbx": "BlenderError FbxUnavailableError fbx_available glb_to_fbx inspect_in_blender require_bpy",
    "avatarclip_core.export.gltf": "glb_bytes read_glb smooth_vertex_normals write_glb",
    "avatarclip_core.export.weights": "pack_skin_weights",
    "avatarclip_core.export.vrm": "write_vrm",
    "avatarclip_core.export.profiles": "ExportProfile resolve_profile",
})
