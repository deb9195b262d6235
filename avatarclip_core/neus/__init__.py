"""NeuS implicit avatar (AvatarCLIP Sec. 3.3.2): template fit, CLIP sculpting, mesh extraction.

Entry point::

    from avatarclip_core.neus import neus_preset, sculpt_avatar, template_from_body
    vertices, faces, face_center = template_from_body(body, {"height": 0.7})
    result = sculpt_avatar(vertices, faces, "Iron Man", scorer, neus_preset("preview"),
                           progress=fn, generator=torch.Generator().manual_seed(0),
                           face_center=face_center)
    result.vertices, result.faces, result.vertex_colors          # welded marching-cubes mesh
    result.uv_vertices, result.uv_faces, result.uvs, result.texture  # split along UV seams
    result.timings                                                # seconds per stage

Modules:
- config.py: ``NeusConfig`` (every knob), ``neus_preset`` (configs/<preset>.yaml, section text.neus).
- networks.py: SDF network f (hash grid or NeuS positional encoding, geometric initialisation,
  forward-mode gradients), colour networks c and c_c, variance s, world <-> network ``Normalizer``.
- volume.py: rays of render/'s ``PerspectiveCameras``, NeuS sampling and unbiased weights
  (Eqs. 2-3), accumulated normals (Eq. 7), gray and randomly shaded images (Eqs. 8-9).
- guide.py: dilated template silhouettes (which rays to march) and template-guided ray intervals.
- mesh_sdf.py: signed distance to the template mesh (the stage-1 supervision).
- stage1.py: fit N = {f, c} to the template (cached per template + config).
- stage2.py: CLIP sculpting and texturing of {f, c_c} (Eq. 6) with the paper's augmentations.
- extract.py: marching cubes, vertex colours, xatlas UV texture bake.
- api.py: ``sculpt_avatar`` -> ``SculptResult``; ``template_from_body``.

Cameras, light sampling, shading (Eqs. 8-9) and backgrounds come from avatarclip_core.render;
CLIP is any object with ``clip_loss(images, texts)`` (avatarclip_core.clip.ImageTextScorer).

Names load their module on first use (PEP 562), so a torch-free module below (config.py) imports
without the rest of the package.
"""
from avatarclip_core.lazy import lazy_exports

__getattr__, __all__ = lazy_exports({
    "avatarclip_core.neus.api": "SculptResult sculpt_avatar template_from_body",
    "avatarclip_core.neus.config": "NeusConfig neus_preset",
    "avatarclip_core.neus.extract": "UVBake bake_texture extract_mesh query_colors",
    "avatarclip_core.neus.guide": "TemplateGuide template_guide",
    "avatarclip_core.neus.networks": "NeusModel Normalizer",
    "avatarclip_core.neus.stage1": "Template template_key",
    "avatarclip_core.neus.stage2": "sculpt",
    "avatarclip_core.neus.volume": "NeusImages camera_rays render_images render_rays",
})
