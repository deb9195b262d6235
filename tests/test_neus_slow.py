"""NeuS end to end on the default body (slow tier): stage 1 on the real template, stage 2 with the
tiny random CLIP at 64 px, extraction and bake, and the stage-1 cache on a repeated prompt."""
from __future__ import annotations

import pytest
import torch

from avatarclip_core.neus import neus_preset
from avatarclip_core.neus.api import sculpt_avatar, template_from_body
from avatarclip_core.neus.mesh_sdf import MeshSDF
from avatarclip_core.render import sample_texture

from test_neus import _clamped_error, _edge_face_counts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def body_template(anny_body):
    return template_from_body(anny_body, {})


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path))
    return tmp_path


def test_body_sculpt_end_to_end_with_the_tiny_clip(body_template, data_dir):
    from avatarclip_core.clip import tiny_test_scorer

    v, f, face = body_template
    height = float(v[:, 1].max() - v[:, 1].min())
    assert 1.3 < height < 2.3 and v[:, 1].min().abs() < 0.05
    # the face centre is in the head, in front of the head joint's axis
    assert face[1] > v[:, 1].max() - 0.2 and face[2] > 0
    cfg = neus_preset("preview", {"iterations": 150, "lr": 2e-3, "progress_every": 10})
    calls = []
    res = sculpt_avatar(v, f, "Iron Man", tiny_test_scorer(), cfg, generator=torch.Generator().manual_seed(0),
                        face_center=face, progress=lambda s, fr, m: calls.append((s, fr)))
    assert res.sculpted and not res.stage1_cached
    assert {"stage1", "stage2", "marching_cubes", "texture_bake"} <= set(res.timings)
    assert [c[1] for c in calls] == sorted(c[1] for c in calls) and calls[-1][1] == 1.0
    s1 = res.stats["stage1"]
    assert s1["sdf_l1_m"] < 2e-3
    # the tiny CLIP's loss falls
    s2 = res.stats["stage2"]
    assert s2["iterations"] == 150
    assert s2["clip_color_last"] < s2["clip_color_first"]
    # the shape stays near the template outside the sculpting band
    from avatarclip_core.neus.stage1 import stage1

    _, template, info = stage1(v, f, cfg)
    assert info["cached"]
    assert _clamped_error(res.model, template, cfg) < 5e-3
    # a closed mesh close to the template
    assert (_edge_face_counts(res.faces) == 2).float().mean() > 0.98
    to_template = MeshSDF(v, f).query(res.vertices)[0].abs()
    from_template = MeshSDF(res.vertices, res.faces).query(v)[0].abs()
    assert to_template.mean() < 0.02 and from_template.mean() < 0.03
    # texture bake agrees with the vertex colours
    sampled = sample_texture(res.texture, res.uvs)
    assert (sampled - res.vertex_colors[res.uv_source_vertex]).abs().mean() < 0.03


def test_repeated_template_skips_stage1(body_template, data_dir):
    v, f, face = body_template
    cfg = neus_preset("preview", {"texture_size": 0, "mc_resolution": 64})
    first = sculpt_avatar(v, f, None, None, cfg)
    again = sculpt_avatar(v, f, None, None, cfg)
    assert not first.stage1_cached and again.stage1_cached
    assert again.timings["stage1"] < 0.2 * first.timings["stage1"]
    assert torch.allclose(first.vertices, again.vertices)
    assert list((data_dir / "cache" / "neus").glob("stage1-*.pt"))
    # neutral colour: the template colour everywhere
    assert torch.allclose(again.vertex_colors, torch.tensor(cfg.template_color).expand_as(again.vertex_colors), atol=0.05)
