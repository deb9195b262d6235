"""Differentiable renderer: coverage/depth, cameras, gradients, small inverse-rendering fits,
backgrounds and PNG output. Small synthetic meshes only (no body model)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from avatarclip_core.render import (
    BackgroundConfig,
    CameraSamplingConfig,
    MeshRenderer,
    RasterSettings,
    blurred_chessboard,
    cameras_look_at,
    face_camera,
    look_at_view_transform,
    orbit_camera,
    random_backgrounds,
    rasterize,
    render_preview,
    sample_ambient,
    sample_light_directions,
    sample_random_cameras,
    save_png,
)

# --- small meshes (counter-clockwise seen from outside) -------------------------------------------


def icosphere(subdivisions: int = 2, radius: float = 1.0):
    t = (1.0 + 5 ** 0.5) / 2
    verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
             [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
             [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
             [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [list(np.array(v) / np.linalg.norm(v)) for v in verts]
    for _ in range(subdivisions):
        cache, new_faces = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = (np.array(verts[a]) + np.array(verts[b])) / 2
                verts.append(list(m / np.linalg.norm(m)))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new_faces
    return torch.tensor(verts, dtype=torch.float32) * radius, torch.tensor(faces, dtype=torch.long)


def cube(size: float = 1.0):
    v = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32) * size / 2
    # vertex index = 4 * (x > 0) + 2 * (y > 0) + (z > 0)
    faces = torch.tensor([[1, 5, 7], [1, 7, 3],  # +z
                          [0, 2, 6], [0, 6, 4],  # -z
                          [4, 6, 7], [4, 7, 5],  # +x
                          [0, 1, 3], [0, 3, 2],  # -x
                          [2, 3, 7], [2, 7, 6],  # +y
                          [0, 4, 5], [0, 5, 1]])  # -y
    return v, faces


def quad(z: float = 0.0, half: float = 1.0):
    v = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]]), uv


def front_camera(dist=3.0, fov=60.0, at=(0.0, 0.0, 0.0)):
    return cameras_look_at((at[0], at[1], at[2] + dist), at, fov=fov)


# --- coverage and depth ------------------------------------------------------------------------------


def test_triangle_coverage_matches_pixel_centre_test_and_depth():
    H, W = 24, 32
    tri = torch.tensor([[-0.83, -0.61, 0.0], [0.97, -0.43, 0.0], [0.11, 0.88, 0.0]])
    faces = torch.tensor([[0, 1, 2]])
    cams = front_camera(3.0, fov=60.0)
    frags = rasterize(tri, faces, cams, RasterSettings(image_size=(H, W), sigma=0.0))
    # expected: pixel centres inside the projected triangle (same screen mapping as the camera)
    scr = cams.transform_points_screen(tri, (H, W))[0, :, :2]
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    p = torch.stack([xs, ys], -1)

    def edge(a, b):
        return (b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0])

    e = torch.stack([edge(scr[0], scr[1]), edge(scr[1], scr[2]), edge(scr[2], scr[0])])
    inside = (e >= 0).all(0) | (e <= 0).all(0)
    covered = frags.pix_to_face[0, ..., 0] >= 0
    assert inside.sum() > 50
    assert torch.equal(covered, inside)
    # the plane z = 0 faces the camera at distance 3: depth 3 everywhere, -1 on the background
    zbuf = frags.zbuf[0, ..., 0]
    assert torch.allclose(zbuf[covered], torch.full_like(zbuf[covered], 3.0), atol=1e-5)
    assert (zbuf[~covered] == -1).all()


def test_cube_front_face_coverage_depth_and_ids():
    v, f = cube(1.0)
    frags = rasterize(v, f, front_camera(5.0, fov=60.0), RasterSettings(image_size=64, sigma=0.0))
    covered = frags.pix_to_face[0, ..., 0] >= 0
    # front face z = 0.5 at depth 4.5 spans NDC +-(0.5 / 4.5) / tan(30 deg) -> pixels 26..37
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[26:38, 26:38] = True
    assert torch.equal(covered, expected)
    assert set(frags.pix_to_face[0, ..., 0][covered].tolist()) == {0, 1}
    assert torch.allclose(frags.zbuf[0, ..., 0][covered], torch.tensor(4.5), atol=1e-4)


def test_perspective_correct_depth_on_tilted_plane():
    # plane z = -0.4 x seen from (0, 0, 3): depth along each pixel ray is analytic
    v = torch.tensor([[-1.0, -1.0, 0.4], [1.0, -1.0, -0.4], [1.0, 1.0, -0.4], [-1.0, 1.0, 0.4]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cams = front_camera(3.0, fov=60.0)
    H = W = 40
    frags = rasterize(v, f, cams, RasterSettings(image_size=H, sigma=0.0))
    covered = frags.pix_to_face[0, ..., 0] >= 0
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    tan = math.tan(math.radians(30.0))
    dx = (xs / W * 2 - 1) * tan  # view-space ray (dx, dy, -1)
    # camera at z = 3: point = (d dx, d dy, 3 - d) on z = -0.4 x  ->  3 - d = -0.4 d dx
    depth = 3.0 / (1.0 - 0.4 * dx)
    assert covered.sum() > 400
    assert torch.allclose(frags.zbuf[0, ..., 0][covered], depth[covered], rtol=1e-4)
    # barycentrics are a partition of unity and non-negative inside
    bary = frags.bary_coords[0, :, :, 0][covered]
    assert torch.allclose(bary.sum(-1), torch.ones(len(bary)), atol=1e-5)
    assert (bary > -1e-4).all()


def test_occlusion_keeps_nearest_surface():
    near, f, _ = quad(z=0.5, half=0.5)
    far, _, _ = quad(z=-0.5, half=1.0)
    verts = torch.cat([far, near])
    faces = torch.cat([f, f + 4])
    frags = rasterize(verts, faces, front_camera(3.0), RasterSettings(image_size=32, sigma=0.0))
    ids = frags.pix_to_face[0, 16, :, 0]
    assert ids[16] in (2, 3) and frags.zbuf[0, 16, 16, 0] == pytest.approx(2.5, abs=1e-4)
    assert ids[9] in (0, 1) and frags.zbuf[0, 16, 9, 0] > 3.4
    assert ids[1] == -1


def test_visible_faces_is_rasterize_pix_to_face_from_the_visibility_pass_alone():
    from avatarclip_core.render.rasterizer import visible_faces

    v, f = icosphere(2, 0.5)
    near, qf, _ = quad(z=0.6, half=0.3)
    verts, faces = torch.cat([v, near]), torch.cat([f, qf + len(v)])
    cams = orbit_camera(3.0, [0.0, 60.0], [0.0, 20.0], at=(0.0, 0.0, 0.0))
    for sigma in (0.0, 0.7):
        settings = RasterSettings(image_size=48, sigma=sigma)
        for batch, cam in ((verts, cams), (torch.stack([verts, verts * 1.1]), cams[0])):
            ids = visible_faces(batch, faces, cam, settings)
            assert ids.dtype == torch.int64 and ids.shape == (2, 48, 48)
            assert torch.equal(ids, rasterize(batch, faces, cam, settings).pix_to_face[..., 0])
    assert (ids == -1).any() and (ids >= len(f)).any()  # background and the quad in front
    whole = visible_faces(verts, faces, cams, RasterSettings(image_size=48, sigma=0.0))
    for window in ((0, 0, 48, 48), (5, 11, 29, 40), (30, 2, 31, 3), (0, 20, 48, 48)):
        left, top, right, bottom = window
        part = visible_faces(verts, faces, cams, RasterSettings(image_size=48, sigma=0.0), window=window)
        assert torch.equal(part, whole[:, top:bottom, left:right])  # bit for bit, edges included


def test_soft_silhouette_is_half_at_the_edge_and_hard_without_sigma():
    v, f = cube(1.0)
    cams = front_camera(5.0, fov=60.0)
    hard = rasterize(v, f, cams, RasterSettings(image_size=64, sigma=0.0))
    soft = rasterize(v, f, cams, RasterSettings(image_size=64, sigma=1.0))
    assert torch.equal(hard.alpha, (hard.pix_to_face >= 0).float())
    a = soft.alpha[0, 32, :, 0]
    # the edge x_pix = 25.84 lies between pixel centres 25.5 (outside) and 26.5 (inside)
    assert 0.35 < a[25] < 0.5 < a[26] < 0.7
    assert a[10] == 0 and a[32] == 1
    assert torch.all(a[:32].diff() >= -1e-6)


# --- cameras -----------------------------------------------------------------------------------------


def test_look_at_puts_target_at_image_centre():
    g = torch.Generator().manual_seed(0)
    eye = torch.randn(5, 3, generator=g) * 3
    at = torch.randn(5, 3, generator=g) * 0.3
    R, T = look_at_view_transform(eye, at)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(5, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(5), atol=1e-5)
    cams = cameras_look_at(eye, at, fov=50.0)
    scr = cams.transform_points_screen(at.unsqueeze(1), (48, 64))[:, 0]
    assert torch.allclose(scr[:, :2], torch.tensor([32.0, 24.0]).expand(5, 2), atol=1e-3)
    assert torch.allclose(scr[:, 2], (eye - at).norm(dim=1), atol=1e-4)
    assert torch.allclose(cams.get_camera_center(), eye, atol=1e-4)
    # up stays up on screen: a point above the target has a smaller row
    above = cams.transform_points_screen((at + torch.tensor([0.0, 0.1, 0.0])).unsqueeze(1), (48, 64))[:, 0]
    assert (above[:, 1] < 24.0).all()


def test_ndc_and_projection_matrix_agree():
    cams = orbit_camera(2.0, [0.0, 70.0], [10.0, -20.0], at=(0.0, 0.9, 0.0), fov=45.0)
    pts = torch.tensor([[0.1, 1.0, 0.2], [-0.3, 0.5, 0.0]])
    ndc = cams.transform_points(pts, (30, 40))
    pv = cams.world_to_view(pts)
    clip = torch.cat([pv, torch.ones(2, 2, 1)], -1) @ cams.projection_matrix((30, 40)).transpose(1, 2)
    assert torch.allclose(ndc, clip[..., :3] / clip[..., 3:], atol=1e-5)


def test_orbit_azimuth_zero_is_in_front():
    cams = orbit_camera(2.0, [0.0, 90.0, 180.0], 0.0, at=(0.0, 1.0, 0.0))
    c = cams.get_camera_center()
    assert torch.allclose(c, torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [0.0, 1.0, -2.0]]), atol=1e-5)
    assert torch.allclose(cams.get_view_direction()[0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)


def test_random_cameras_follow_the_paper_and_are_seeded():
    cfg = CameraSamplingConfig()
    center = torch.tensor([0.0, 0.9, 0.0])
    s1 = sample_random_cameras(2000, torch.Generator().manual_seed(3), cfg, center=center, scale=1.2)
    s2 = sample_random_cameras(2000, torch.Generator().manual_seed(3), cfg, center=center, scale=1.2)
    assert torch.equal(s1.eye, s2.eye)
    off = s1.at - center
    assert off.abs().max() <= 0.3 * 1.2 + 1e-6 and 0.08 < off.std() / 1.2 < 0.12
    assert 1.2 * 1.0 - 1e-5 <= s1.radius.min() and s1.radius.max() <= 1.2 * 2.0 + 1e-5
    assert torch.allclose((s1.eye - s1.at).norm(dim=1), s1.radius, atol=1e-4)
    assert (s1.azimuth.abs() < math.pi / 2).float().mean() > 0.85  # mostly frontal
    assert torch.equal(s1.is_back, s1.azimuth.abs() > math.pi / 2)
    assert s1.eye[:, 2].mean() > 0.5  # in front of an avatar facing +Z
    scr = s1.cameras[:8].transform_points_screen(s1.at[:8].unsqueeze(1), 224)[:, 0, :2]
    assert torch.allclose(scr, torch.full_like(scr, 112.0), atol=1e-2)
    cone = sample_random_cameras(2000, torch.Generator().manual_seed(3), CameraSamplingConfig(mode="cone"))
    view = torch.nn.functional.normalize(cone.eye - cone.at, dim=1)
    deviation = torch.acos(view[:, 2].clamp(-1, 1))  # angle away from the front (+Z)
    assert abs(deviation.median().item() - 0.674 * math.pi / 3) < 0.08  # |N(0, pi/3)| median
    assert (view[:, 1].abs() > 0.5).float().mean() > 0.15  # views from above/below are common
    face = torch.tensor([0.0, 1.6, 0.05])
    fc = face_camera(face, n=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(fc.cameras.transform_points_screen(face.view(1, 1, 3), 64)[:, 0, :2],
                          torch.full((3, 2), 32.0), atol=1e-3)


def test_light_and_ambient_sampling():
    cams = sample_random_cameras(500, torch.Generator().manual_seed(1)).cameras
    light = sample_light_directions(cams, torch.Generator().manual_seed(2))
    assert torch.allclose(light.norm(dim=1), torch.ones(500), atol=1e-5)
    cos = (light * cams.R[:, 2]).sum(1)  # angle to the direction towards the camera
    assert (cos > 0).all() and cos.min() < math.cos(math.radians(30))
    amb = sample_ambient(500, torch.Generator().manual_seed(2))
    assert amb.min() >= 0 and amb.max() <= 0.2 and amb.std() > 0.04


# --- renderer images and gradients -------------------------------------------------------------------


def test_textureless_and_shaded_follow_eq_8_and_9():
    v, f, _ = quad(z=0.0, half=1.0)
    cams = front_camera(3.0)
    r = MeshRenderer(RasterSettings(image_size=32, sigma=0.0, background_color=(0.0, 0.0, 0.0)))
    colors = torch.tensor([0.8, 0.4, 0.2]).expand(4, 3)
    lit = r.render(v, f, cams, vertex_colors=colors, light_dir=(0.0, 0.0, 1.0), ambient=0.1)
    assert torch.allclose(lit.textureless[0, 16, 16], torch.ones(3), atol=1e-5)
    assert torch.allclose(lit.shaded[0, 16, 16], colors[0], atol=1e-5)
    assert torch.allclose(lit.normals[0, 16, 16], torch.tensor([0.0, 0.0, 1.0]), atol=1e-5)
    grazing = r.render(v, f, cams, vertex_colors=colors, light_dir=(1.0, 0.0, 0.0), ambient=0.15)
    assert torch.allclose(grazing.textureless[0, 16, 16], torch.full((3,), 0.15), atol=1e-5)
    assert torch.allclose(grazing.shaded[0, 16, 16], 0.15 * colors[0], atol=1e-5)
    assert torch.allclose(grazing.rgb[0, 16, 16], colors[0], atol=1e-5)
    assert (grazing.textureless[0, 0, 0] == 0).all() and grazing.depth[0, 0, 0, 0] == 0


def test_gradients_reach_vertices_colors_and_texture():
    v0, f = icosphere(2, 0.6)
    uv = torch.stack([torch.atan2(v0[:, 0], v0[:, 2]) / (2 * math.pi) + 0.5, v0[:, 1] / 1.2 + 0.5], -1)
    verts = v0.clone().requires_grad_(True)
    colors = torch.full((len(v0), 3), 0.5, requires_grad=True)
    texture = torch.full((8, 8, 3), 0.7, requires_grad=True)
    cams = orbit_camera(3.0, [0.0, 120.0], 15.0, at=(0.0, 0.0, 0.0))
    r = MeshRenderer(RasterSettings(image_size=48, sigma=1.0))
    bg = torch.rand(2, 48, 48, 3, generator=torch.Generator().manual_seed(0))
    out = r.render(verts, f, cams, vertex_colors=colors, uvs=uv, texture=texture, background=bg)
    target = torch.rand(2, 48, 48, 3, generator=torch.Generator().manual_seed(1))
    loss = ((out.shaded - target) ** 2).mean() + ((out.textureless - target) ** 2).mean() + out.silhouette.mean()
    loss.backward()
    for name, t in (("vertices", verts), ("colors", colors), ("texture", texture)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, name


def test_gradients_match_finite_differences():
    # float64 end to end (the Warp passes only pick ids, which tiny perturbations do not change)
    cams = cameras_look_at((0.1, 0.2, 3.0), (0.0, 0.0, 0.0), fov=50.0)
    cams = type(cams)(R=cams.R.double(), T=cams.T.double(), fov=50.0)
    v = torch.tensor([[-0.83, -0.61, 0.1], [0.97, -0.43, -0.2], [0.11, 0.88, 0.05], [0.9, 0.8, -0.3]],
                     dtype=torch.double, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [1, 3, 2]])
    g = torch.Generator().manual_seed(0)
    col = torch.rand(4, 3, generator=g, dtype=torch.double).requires_grad_(True)
    uv = torch.rand(4, 2, generator=g, dtype=torch.double)
    tex = torch.rand(3, 3, 3, generator=g, dtype=torch.double).requires_grad_(True)
    r = MeshRenderer(RasterSettings(image_size=12, sigma=0.7, background_color=(0.2, 0.3, 0.4)))

    def fn(v, col, tex):
        o = r.render(v, f, cams, vertex_colors=col, uvs=uv, texture=tex, light_dir=(0.3, 0.4, 1.0), ambient=0.1)
        return o.shaded, o.silhouette, o.textureless, o.depth, o.normals

    assert torch.autograd.gradcheck(fn, (v, col, tex), eps=1e-6, atol=1e-5)


def test_silhouette_gradient_moves_vertices_outward_to_grow():
    v, f = icosphere(2, 0.5)
    scale = torch.ones(1, requires_grad=True)
    r = MeshRenderer(RasterSettings(image_size=48, sigma=1.0))
    out = r.render(v * scale, f, front_camera(3.0), outputs=("silhouette",))
    (-out.silhouette.sum()).backward()  # more coverage = lower loss -> grow
    assert scale.grad.item() < 0


def test_batches_of_meshes_and_cameras_match_single_renders():
    v, f = icosphere(1, 0.5)
    shift = torch.tensor([0.2, -0.1, 0.0])
    cams = orbit_camera(3.0, [0.0, 60.0], [0.0, 20.0], at=(0.0, 0.0, 0.0))
    r = MeshRenderer(RasterSettings(image_size=32, sigma=0.7))
    both = r.render(torch.stack([v, v + shift]), f, cams[0], outputs=("silhouette", "textureless"))
    views = r.render(v, f, cams, outputs=("silhouette", "textureless"))
    for i, (verts, cam) in enumerate(((v, cams[0]), (v + shift, cams[0]))):
        one = r.render(verts, f, cam, outputs=("silhouette", "textureless"))
        assert torch.allclose(both.silhouette[i], one.silhouette[0], atol=1e-5)
        assert torch.allclose(both.textureless[i], one.textureless[0], atol=1e-5)
    side = r.render(v, f, cams[1], outputs=("silhouette",))
    assert torch.allclose(views.silhouette[1], side.silhouette[0], atol=1e-5)


# --- small inverse-rendering fits --------------------------------------------------------------------


def test_fit_translation_from_silhouettes():
    v, f = icosphere(2, 0.4)
    cams = orbit_camera(3.0, [0.0, 90.0], [0.0, 30.0], at=(0.0, 0.0, 0.0), fov=40.0)
    r = MeshRenderer(RasterSettings(image_size=64, sigma=1.5))
    true_t = torch.tensor([0.15, -0.1, 0.12])
    with torch.no_grad():
        target = r.render(v + true_t, f, cams, outputs=("silhouette",)).silhouette
    t = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        sil = r.render(v + t, f, cams, outputs=("silhouette",)).silhouette
        ((sil - target) ** 2).mean().backward()
        opt.step()
    assert (t.detach() - true_t).abs().max() < 0.01, t


def test_fit_vertex_color():
    v, f = icosphere(2, 0.5)
    cams = orbit_camera(3.0, [0.0, 180.0], 10.0, at=(0.0, 0.0, 0.0))
    r = MeshRenderer(RasterSettings(image_size=32, sigma=0.5, background_color=(0.2, 0.2, 0.2)))
    light = torch.tensor([0.3, 0.5, 1.0])
    target_color = torch.tensor([0.9, 0.3, 0.1])
    with torch.no_grad():
        target = r.render(v, f, cams, vertex_colors=target_color.expand(len(v), 3), light_dir=light).shaded
    color = torch.full((3,), 0.5, requires_grad=True)
    opt = torch.optim.Adam([color], lr=0.03)
    for _ in range(120):
        opt.zero_grad()
        img = r.render(v, f, cams, vertex_colors=color.expand(len(v), 3), light_dir=light).shaded
        ((img - target) ** 2).mean().backward()
        opt.step()
    assert torch.allclose(color.detach(), target_color, atol=0.02), color


def test_fit_texture_texels():
    v, f, uv = quad(z=0.0, half=1.0)
    cams = front_camera(2.5, fov=60.0)
    r = MeshRenderer(RasterSettings(image_size=48, sigma=0.5))
    target_tex = torch.rand(4, 4, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = r.render(v, f, cams, uvs=uv, texture=target_tex, outputs=("rgb",)).rgb
    tex = torch.full((4, 4, 3), 0.5, requires_grad=True)
    opt = torch.optim.Adam([tex], lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        img = r.render(v, f, cams, uvs=uv, texture=tex, outputs=("rgb",)).rgb
        ((img - target) ** 2).mean().backward()
        opt.step()
    assert (tex.detach() - target_tex).abs().max() < 0.03
    # per-face-corner UVs (seams) sample the same texture as the equivalent per-vertex UVs
    corner = r.render(v, f, cams, uvs=uv[f], texture=target_tex, outputs=("rgb",)).rgb
    assert torch.allclose(corner, target, atol=1e-6)


def test_empty_view_renders_background_and_backpropagates():
    v, f = icosphere(1, 0.5)
    verts = v.clone().requires_grad_(True)
    cams = cameras_look_at((0.0, 0.0, 3.0), (0.0, 0.0, 6.0))  # looking away from the mesh
    r = MeshRenderer(RasterSettings(image_size=16, background_color=(0.1, 0.2, 0.3)))
    out = r.render(verts, f, cams, vertex_colors=torch.ones(len(v), 3))
    assert (out.silhouette == 0).all() and (out.fragments.pix_to_face == -1).all()
    assert torch.allclose(out.shaded, torch.tensor([0.1, 0.2, 0.3]).expand(1, 16, 16, 3))
    out.shaded.sum().backward()
    assert verts.grad is None or torch.isfinite(verts.grad).all()


# --- backgrounds, previews, PNG ----------------------------------------------------------------------


def test_backgrounds_shapes_ranges_and_seed():
    a = random_backgrounds(12, 40, 56, torch.Generator().manual_seed(7))
    b = random_backgrounds(12, 40, 56, torch.Generator().manual_seed(7))
    c = random_backgrounds(12, 40, 56, torch.Generator().manual_seed(8))
    assert a.shape == (12, 40, 56, 3) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    for kind, check in (("black", lambda x: (x == 0).all()), ("white", lambda x: (x == 1).all()),
                        ("noise", lambda x: 0.2 < x.std() < 0.3 and abs(x.mean() - 0.5) < 0.02)):
        img = random_backgrounds(2, 40, 40, torch.Generator().manual_seed(0), BackgroundConfig(kinds=(kind,)))
        assert check(img), kind
    sharp = blurred_chessboard(1, 64, 64, torch.Generator().manual_seed(1),
                               BackgroundConfig(blur_sigma_fraction_range=(0.0, 0.0)))
    blurred = blurred_chessboard(1, 64, 64, torch.Generator().manual_seed(1),
                                 BackgroundConfig(blur_sigma_fraction_range=(0.4, 0.4)))
    assert len(torch.unique(sharp)) <= 6  # two colours, three channels
    assert len(torch.unique(blurred)) > 20 and blurred.std() < sharp.std()


def test_save_png_round_trip(tmp_path):
    img = torch.rand(17, 23, 3, generator=torch.Generator().manual_seed(0))
    path = save_png(img, tmp_path / "sub" / "x.png")
    back = np.asarray(Image.open(path))
    assert back.shape == (17, 23, 3)
    assert np.array_equal(back, (img.numpy() * 255 + 0.5).astype(np.uint8))
    rgba = torch.rand(5, 6, 4)
    back4 = np.asarray(Image.open(save_png(rgba, tmp_path / "y.png")))
    assert back4.shape == (5, 6, 4)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x.png", "y.png"]


def test_render_preview_strip(tmp_path):
    v, f = icosphere(2, 0.3)
    body = torch.cat([v * torch.tensor([1.0, 2.5, 0.8]) + torch.tensor([0.0, 0.9, 0.0])])
    strip = render_preview(body, f, size=64, views=("front", "side", "back"), path=tmp_path / "preview.png")
    assert strip.shape == (64, 192, 3) and strip.min() >= 0 and strip.max() <= 1
    assert (strip[:, :64] - strip[0, 0]).abs().sum(-1).gt(0.05).float().mean() > 0.05  # body visible
    assert Image.open(tmp_path / "preview.png").size == (192, 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    v, f = icosphere(2, 0.5)
    cams = orbit_camera(3.0, [0.0, 45.0], 10.0, at=(0.0, 0.0, 0.0))
    r = MeshRenderer(RasterSettings(image_size=48, sigma=0.7))
    cpu = r.render(v, f, cams, outputs=("silhouette", "textureless"))
    gpu = r.render(v.cuda(), f.cuda(), cams.to("cuda"), outputs=("silhouette", "textureless"))
    assert torch.equal(cpu.fragments.pix_to_face, gpu.fragments.pix_to_face.cpu())
    assert torch.allclose(cpu.textureless, gpu.textureless.cpu(), atol=1e-4)
