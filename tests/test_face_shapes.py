"""ARKit face shapes and Oculus visemes on the avatar's own head (export/face_shapes.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from avatarclip_core.body.types import MorphTargets
from avatarclip_core.export.face_shapes import (
    ARKIT_NAMES,
    VISEME_MIXES,
    VISEME_NAMES,
    body_face_shapes,
    deformation_gradients,
    transfer_morph_targets,
    with_face_shapes,
    with_visemes,
)


@pytest.fixture(scope="module")
def woman(anny_body):
    mesh = anny_body.rigged_mesh({"gender": 1.0})
    return mesh, with_face_shapes(mesh, anny_body, mesh.vertices)


def test_names_are_arkits_52_then_15_visemes(anny_body, woman):
    _, faced = woman
    names, _, _ = anny_body.face_units()
    assert set(names) == set(ARKIT_NAMES) and len(ARKIT_NAMES) == 52  # Anny's units are ARKit's shapes
    assert faced.morph_targets.names == list(ARKIT_NAMES) + list(VISEME_NAMES)
    assert VISEME_NAMES == tuple(f"viseme_{v}" for v in
                                 "sil PP FF TH DD kk CH SS nn RR aa E I O U".split())
    assert all(name in ARKIT_NAMES for mix in VISEME_MIXES.values() for name in mix)


def test_every_shape_moves_the_face_and_only_the_head(anny_body, woman):
    mesh, faced = woman
    deltas = faced.morph_targets.deltas.double()
    moved = deltas.norm(dim=-1)  # (67, V)
    head = mesh.skeleton.rest_positions[mesh.skeleton.index("head")]
    head_region = (mesh.vertices - head).norm(dim=-1) < 0.18  # the head and the throat under the chin
    for k, name in enumerate(faced.morph_targets.names):
        if name == "viseme_sil":
            assert moved[k].max() == 0  # the neutral face
            continue
        assert moved[k].max() > 0.002, f"{name} moves its face by only {moved[k].max() * 1000:.2f} mm"
        assert bool(head_region[moved[k] > 0].all()), f"{name} moves vertices off the head"
    # the union of all shapes is a small part of the mesh: sparse storage pays
    assert (moved.amax(0) > 0).double().mean() < 0.3


def test_left_is_the_avatars_left(woman):
    """ARKit's Left is the face's own left: +X for our avatars (they face +Z)."""
    mesh, faced = woman
    for k, name in enumerate(faced.morph_targets.names[:52]):
        if not name.endswith(("Left", "Right")):
            continue
        d = faced.morph_targets.deltas[k].double()
        if name in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):  # they move sideways, both halves
            side = d[:, 0].sum()
        else:  # the displaced vertices lie on that side
            side = (d.norm(dim=-1) * mesh.vertices[:, 0].double()).sum()
        assert (side > 0) == name.endswith("Left"), name


def test_visemes_are_their_arkit_mixes(woman):
    _, faced = woman
    t = faced.morph_targets
    aa = t.deltas[t.index("viseme_aa")].double()
    expect = sum(w * t.deltas[t.index(n)].double() for n, w in VISEME_MIXES["aa"].items())
    assert torch.allclose(aa, expect, atol=1e-5)  # up to the 0.01 mm floor and float32
    arkit = MorphTargets(["jawOpen", "mouthPucker"], torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError):  # a viseme needs shapes this set does not have
        with_visemes(arkit)


def test_shapes_follow_the_avatars_head_size(anny_body, woman):
    """A child's smaller head gets a smaller jaw opening than an adult's (deformation transfer)."""
    _, adult = woman
    child_mesh = anny_body.rigged_mesh({"age": 0.1})
    child = with_face_shapes(child_mesh, anny_body, child_mesh.vertices)
    k = adult.morph_targets.index("jawOpen")
    adult_open = adult.morph_targets.deltas[k].norm(dim=-1).max()
    child_open = child.morph_targets.deltas[k].norm(dim=-1).max()
    assert child_open < 0.8 * adult_open


def test_the_moving_rows_give_the_dense_computation_bit_for_bit(anny_body, woman):
    """with_face_shapes works on the ~3500 moving vertices only; it equals the dense steps (shapes on
    the body, visemes, transfer, the 0.01 mm floor, float32) exactly, for assets near the skin too."""
    mesh, faced = woman
    n = len(mesh.vertices)
    offsets = torch.zeros(400, 3, dtype=mesh.vertices.dtype)
    offsets[:, 2] = torch.linspace(0.0, 0.01, 400, dtype=mesh.vertices.dtype)  # near the skin and beyond the fade
    near_face = mesh.vertices[faced.morph_targets.deltas.norm(dim=-1).amax(0) > 0][:400] + offsets
    with_assets = replace(mesh, vertices=torch.cat([mesh.vertices, near_face]))
    for template in (mesh.vertices, mesh.vertices * 1.01):  # built on the body; a sculpted surface
        fade = (0.003, 0.008) if template is mesh.vertices else (0.01, 0.025)
        dense = transfer_morph_targets(template, with_visemes(body_face_shapes(anny_body, template)),
                                       with_assets.vertices, *fade).deltas.numpy()
        dense[np.linalg.norm(dense, axis=-1) < 1e-5] = 0.0
        got = with_face_shapes(with_assets, anny_body, template).morph_targets.deltas
        assert got.dtype == torch.float32 and torch.equal(got, torch.from_numpy(dense.astype(np.float32)))
        assert bool((got[:, n:] != 0).any())  # the asset vertices took part


def test_deformation_gradients_recover_a_similarity():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(40, 3))
    faces = np.array([[i, i + 1, i + 2] for i in range(38)])
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    J = deformation_gradients(source, 2.0 * source @ rotation.T + 0.5, faces)
    assert np.allclose(J, 2.0 * rotation, atol=1e-9)
    assert np.allclose(deformation_gradients(source, source, faces, smoothing_iterations=5), np.eye(3))


def test_transfer_copies_the_body_and_fades_with_distance():
    body = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    targets = MorphTargets(["a"], torch.tensor([[[0.0, 0.0, 0.01], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64))
    extra = torch.tensor([[0.002, 0.0, 0.0], [0.0, 0.0, 0.0055], [0.0, 0.0, 0.02], [0.98, 0.0, 0.0]], dtype=torch.float64)
    out = transfer_morph_targets(body, targets, torch.cat([body, extra])).deltas[0, :, 2]
    assert out[:3].tolist() == [0.01, 0.0, 0.0]  # the body's own rows, as they are
    assert out[3] == pytest.approx(0.01)  # 2 mm off the skin: in full
    assert out[4] == pytest.approx(0.005)  # 5.5 mm: half (fades from 3 to 8 mm)
    assert out[5] == 0.0 and out[6] == 0.0  # 2 cm off (glasses), or nearer a still vertex


def test_a_sculpted_surface_keeps_the_face_shapes(anny_body, woman):
    """A surface that is not the body's vertices (a NeuS mesh: new vertices, a few mm off the skin)
    takes each vertex's nearest body displacement."""
    from avatarclip_core.export.gltf import smooth_vertex_normals

    mesh, faced = woman
    order = torch.randperm(len(mesh.vertices), generator=torch.Generator().manual_seed(0))
    normals = torch.from_numpy(smooth_vertex_normals(mesh.vertices.numpy(), mesh.faces.numpy())).float()
    sculpted = replace(mesh, vertices=(mesh.vertices + 0.006 * normals)[order], faces=torch.argsort(order)[mesh.faces])
    out = with_face_shapes(sculpted, anny_body, mesh.vertices)
    k = faced.morph_targets.index("jawOpen")
    got, expect = out.morph_targets.deltas[k], faced.morph_targets.deltas[k][order]
    wrong = (got - expect).norm(dim=-1) > 0.002
    # offset lips whose nearest body vertex is on the other lip (the closed mouth) are the exception
    assert wrong.double().mean() < 0.03
    assert float(got.norm(dim=-1).max()) == pytest.approx(float(expect.norm(dim=-1).max()), rel=0.1)
    assert with_face_shapes(sculpted, anny_body, mesh.vertices, "none").morph_targets is None


def test_face_shapes_in_the_glb_are_valid_sparse_and_named(woman, tmp_path):
    from avatarclip_core.export import write_glb
    from gltf_validation import error_summary, validate_glb
    from test_export_gltf import glb_json_and_bin

    mesh, faced = woman
    plain = write_glb(mesh, tmp_path / "plain.glb", max_influences=4)
    path = write_glb(faced, tmp_path / "faced.glb", max_influences=4)
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, error_summary(report)
    doc, _ = glb_json_and_bin(path)
    assert doc["meshes"][0]["extras"]["targetNames"] == list(ARKIT_NAMES) + list(VISEME_NAMES)
    accessors = [doc["accessors"][t["POSITION"]] for t in doc["meshes"][0]["primitives"][0]["targets"]]
    assert all("bufferView" not in a for a in accessors)
    assert all("sparse" in a for a in accessors[:52])  # every ARKit shape moves something, stored sparsely
    added = path.stat().st_size - plain.stat().st_size
    moving = int((faced.morph_targets.deltas.norm(dim=-1) > 0).sum())
    assert added < 14.5 * moving + 1024 * len(accessors)  # 12-byte values + 2-byte indices per moved vertex
    print(f"\nface shapes add {added / 1e6:.2f} MB ({moving} moved vertex rows) to {plain.stat().st_size / 1e6:.2f} MB")


@pytest.mark.slow
def test_slider_jobs_write_the_shapes_unless_switched_off(tmp_path):
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job
    from avatarclip_core.export import read_glb

    for mode, expected in (("arkit", list(ARKIT_NAMES) + list(VISEME_NAMES)), ("none", None)):
        config = load_sliders_config("preview", {"export.face_shapes": mode, "preview.enabled": "false"})
        out = run_sliders_job({"gender": 1.0}, config, tmp_path / mode)
        mesh, _ = read_glb(out / "avatar.glb")
        assert (mesh.morph_targets.names if mesh.morph_targets else None) == expected


@pytest.mark.slow
def test_photo_avatar_assets_follow_the_skin_they_lie_on(anny_body):
    """The Anny engine's avatar: the body keeps its own shapes, a beard follows the opening jaw, and
    glasses vertices off the skin keep still."""
    from face2param.engines.anny_engine import AnnyFaceEngine
    from face2param.engines.base import EngineParams

    engine = AnnyFaceEngine(body=anny_body)
    params = EngineParams({}, {"hair_style": "bun", "beard": "full", "glasses": "round"})
    mesh = engine.build_avatar(params)
    n = len(anny_body.skin_indices)
    faced = with_face_shapes(mesh, anny_body, mesh.vertices[:n])
    alone = with_face_shapes(replace(mesh, vertices=mesh.vertices[:n], faces=anny_body.faces), anny_body,
                             mesh.vertices[:n])
    assert torch.equal(faced.morph_targets.deltas[:, :n], alone.morph_targets.deltas)
    jaw = faced.morph_targets.deltas[faced.morph_targets.index("jawOpen"), n:].norm(dim=-1)
    skin = torch.cdist(mesh.vertices[n:].double(), mesh.vertices[:n].double()).amin(dim=1)
    assert float(jaw.max()) > 0.02  # the beard on the chin opens with the jaw
    assert bool((faced.morph_targets.deltas[:, n:][:, skin > 0.008] == 0).all())  # off the skin: still
    assert int((skin > 0.008).sum()) > 50  # e.g. the glasses' lenses
