import pickle

import numpy as np
import pytest
import torch

from avatarclip_core.body import BodyConfig, InvalidSliderError, create_body_model
from avatarclip_core.body.model import SEMANTIC_JOINTS
from avatarclip_core.body.smpl_body import SMPL_JOINT_NAMES, SmplModelMissingError


def test_anny_default_rig_is_game_ready(anny_body, anny_mesh):
    names = anny_mesh.skeleton.names
    assert len(names) >= 20 and names[0] == "Root" and "thigh_l" in names and "hand_r" in names
    assert set(anny_body.semantic_joints) == set(SEMANTIC_JOINTS)
    assert anny_mesh.faces.shape[1] == 3 and anny_mesh.faces.max() < anny_mesh.vertices.shape[0]
    w = anny_mesh.skin_weights
    assert torch.allclose(w.sum(1), torch.ones(len(w)), atol=1e-4)


def test_anny_is_y_up_facing_plus_z_with_feet_on_ground(anny_body, anny_mesh):
    v = anny_mesh.vertices
    height = float(v[:, 1].max() - v[:, 1].min())
    assert 1.5 < height < 2.1, height  # an adult, in metres
    assert abs(float(v[:, 1].min())) < 0.03  # feet on the ground
    joints = anny_mesh.skeleton.rest_positions
    head = joints[anny_body.semantic_joints["head"]]
    pelvis = joints[anny_body.semantic_joints["pelvis"]]
    assert head[1] > pelvis[1] + 0.4
    # toes point forward (+Z): the ball joints are in front of the ankles
    ball = joints[anny_mesh.skeleton.index("ball_l")]
    ankle = joints[anny_body.semantic_joints["left_ankle"]]
    assert ball[2] > ankle[2] + 0.05
    # the avatar's left (+X) holds the left hand
    assert joints[anny_body.semantic_joints["left_wrist"]][0] > 0.2


def test_height_and_weight_sliders_change_the_body(anny_body):
    short = anny_body.rigged_mesh({"height": 0.1}).vertices
    tall = anny_body.rigged_mesh({"height": 0.9}).vertices
    assert float(tall[:, 1].max()) > float(short[:, 1].max()) + 0.2
    thin = anny_body.rigged_mesh({"weight": 0.0}).vertices
    heavy = anny_body.rigged_mesh({"weight": 1.0}).vertices
    assert float(heavy[:, 0].std()) != pytest.approx(float(thin[:, 0].std()), rel=1e-3)
    nose_before = anny_body.rigged_mesh({}).vertices
    local = next(s.name for s in anny_body.sliders() if s.group == "nose")
    after = anny_body.rigged_mesh({local: 1.0}).vertices
    assert float((after - nose_before).abs().max()) > 1e-3


def test_forward_identity_is_rest_and_gradients_reach_shape(anny_body):
    shape = anny_body.shape_vector({}).requires_grad_(True)
    J = len(anny_body.joint_names)
    verts, world = anny_body.forward(shape, torch.eye(3).repeat(1, J, 1, 1))
    rest_verts, rest_world = anny_body.rest(shape)
    assert torch.allclose(verts, rest_verts, atol=1e-4)
    verts[..., 1].max().backward()
    assert shape.grad is not None and shape.grad.abs().sum() > 0


@pytest.mark.parametrize("values,fragment", [
    ({"heigth": 0.5}, "unknown slider 'heigth'; did you mean height"),
    ({"height": 1.5}, r"out of range \[0, 1\]"),
    ({"height": "tall"}, "needs a number"),
])
def test_bad_sliders_are_named(anny_body, values, fragment):
    with pytest.raises(InvalidSliderError, match=fragment):
        anny_body.shape_vector(values)


def _write_synthetic_smpl(path):
    """A tiny model in SMPL's .pkl layout: 24 joints of a stick figure, 8 vertices per joint."""
    rng = np.random.default_rng(0)
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    joints = np.zeros((24, 3))
    for j in range(1, 24):
        joints[j] = joints[parents[j]] + rng.normal(0, 0.1, 3) + np.array([0, 0.1 if j in (3, 6, 9, 12, 15) else -0.1, 0])
    verts = np.repeat(joints, 8, axis=0) + rng.normal(0, 0.02, (24 * 8, 3))
    V = len(verts)
    weights = np.zeros((V, 24))
    weights[np.arange(V), np.arange(V) // 8] = 1.0
    j_reg = np.zeros((24, V))
    j_reg[np.arange(V) // 8, np.arange(V)] = 1 / 8
    faces = np.array([[i, i + 1, i + 2] for i in range(0, V - 2, 3)], dtype=np.uint32)
    data = {
        "v_template": verts,
        "shapedirs": rng.normal(0, 0.01, (V, 3, 10)),
        "posedirs": np.zeros((V, 3, 207)),
        "J_regressor": j_reg,
        "kintree_table": np.array([[4294967295] + parents[1:], list(range(24))], dtype=np.int64),
        "weights": weights,
        "f": faces,
    }
    with open(path, "wb") as handle:
        pickle.dump(data, handle)


def test_smpl_adapter_loads_a_model_file_in_smpl_format(tmp_path):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    _write_synthetic_smpl(path)
    body = create_body_model(BodyConfig(model="smpl", smpl=_smpl(path)))
    assert body.joint_names[:3] == SMPL_JOINT_NAMES[:3] and len(body.joint_names) == 24
    assert set(body.semantic_joints) == set(SEMANTIC_JOINTS)
    mesh = body.rigged_mesh({"beta_0": 1.0})
    assert abs(float(mesh.vertices[:, 1].min())) < 1e-5  # feet on the ground
    shape = body.shape_vector({"beta_0": 2.0})
    verts, world = body.forward(shape, torch.eye(3).repeat(2, 24, 1, 1), torch.tensor([[0, 0, 0.0], [0, 0, 1.0]]))
    assert torch.allclose(verts[1] - verts[0], torch.tensor([0, 0, 1.0]).expand_as(verts[0]), atol=1e-5)
    # folder form: SMPL_<GENDER>.pkl inside
    folder_body = create_body_model(BodyConfig(model="smpl", smpl=_smpl(tmp_path)))
    assert len(folder_body.joint_names) == 24
    with pytest.raises(InvalidSliderError):
        body.shape_vector({"beta_0": 9})


def _smpl(path):
    from avatarclip_core.body.smpl_body import SmplConfig

    return SmplConfig(model_path=str(path))


def test_smpl_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(SmplModelMissingError, match="smpl.is.tue.mpg.de"):
        create_body_model(BodyConfig(model="smpl", smpl=_smpl(tmp_path / "nope.pkl")))
    with pytest.raises(SmplModelMissingError, match="SMPL_NEUTRAL.pkl"):
        create_body_model(BodyConfig(model="smpl", smpl=_smpl(tmp_path)))


def test_anny_keeps_no_mapping_of_its_model_data_file(anny_body):
    """The cached model data (~220 MB, read through a file mapping) is not kept resident: nothing of
    the body cache folder stays mapped once the body is built (Linux: /proc/self/maps)."""
    from pathlib import Path

    from avatarclip_core.paths import body_model_cache_dir

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps here")
    folder = str(body_model_cache_dir().resolve())
    assert [line for line in maps.read_text().splitlines() if folder in line] == []


def test_float32_off_file_converts_like_to_and_unmaps_the_file(tmp_path, monkeypatch):
    """`_float32_off_file` (slices of big float64 buffers, their pages dropped, the rest copied out
    of the mapping) gives what `module.to(float32)` gives, and leaves no tensor in the file."""
    import gc
    from pathlib import Path

    import safetensors.torch
    from safetensors import safe_open

    import avatarclip_core.body.anny_body as anny_body_module

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps here")
    monkeypatch.setattr(anny_body_module, "_SLICE_BYTES", 64 * 1024)  # a small file, several slices
    generator = torch.Generator().manual_seed(0)
    tensors = {"big": torch.randn(97, 500, 3, dtype=torch.float64, generator=generator),
               "small": torch.randn(5, 3, dtype=torch.float64, generator=generator),
               "faces": torch.randint(0, 500, (300, 3), generator=generator),
               "plain": torch.arange(40, dtype=torch.int64)}
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(tensors, str(path))

    def module_from_file():
        with safe_open(str(path), framework="pt") as f:
            loaded = {k: f.get_tensor(k) for k in f.keys()}
        module = torch.nn.Module()
        module.child = torch.nn.Module()
        module.register_buffer("big", loaded["big"])
        module.child.register_buffer("small", loaded["small"])
        module.child.register_buffer("faces", loaded["faces"])
        module.plain = loaded["plain"]  # a tensor attribute, not a buffer
        return module

    def parts(module):
        return {"big": module.big, "small": module.child.small, "faces": module.child.faces, "plain": module.plain}

    expected = {k: v.clone() for k, v in parts(module_from_file().to(dtype=torch.float32)).items()}
    gc.collect()  # the plain conversion's own mapping goes with it
    converted = parts(anny_body_module._float32_off_file(module_from_file(), torch.device("cpu")))
    for name, want in expected.items():
        assert converted[name].dtype == want.dtype and torch.equal(converted[name], want), name
    assert str(path) not in maps.read_text()
