"""The face shapes in a real client (headless Chromium, three.js GLTFLoader: tests/browser/three_client.js):
every ARKit shape and viseme of a threejs-profile GLB changes the rendered face on its own, and the
vertices three.js morphs and skins at a chosen animation time equal our LBS of the morphed rest mesh."""
from __future__ import annotations

import base64

import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.export import write_glb
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.face_shapes import ARKIT_NAMES, VISEME_NAMES, with_face_shapes
from avatarclip_core.export.profiles import resolve_profile
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion

from gltf_validation import error_summary, validate_glb
from test_vrm_browser import _client

# several shapes at once, partly on: the check covers their sum and the weights
WEIGHTS = {"jawOpen": 1.0, "eyeBlinkLeft": 0.5, "viseme_O": 0.7, "mouthSmileRight": 0.3}


@pytest.fixture(scope="module")
def threejs_glb(anny_body, tmp_path_factory):
    mesh = anny_body.rigged_mesh({"gender": 1.0})
    mesh.vertex_colors = torch.tensor([0.8, 0.62, 0.52]).expand(len(mesh.vertices), 3).clone()
    mesh = with_face_shapes(mesh, anny_body, mesh.vertices)
    motion, _ = build_motion(mesh.skeleton, MotionConfig(name="wave"), MotionGenConfig())
    profile = resolve_profile("threejs")  # T-pose rest (morph deltas re-posed with it), 4 influences
    out_mesh, out_motion = apply_profile(mesh, motion, profile)
    path = write_glb(out_mesh, tmp_path_factory.mktemp("threejs") / "avatar.glb", motion=out_motion,
                     max_influences=profile.max_influences)
    return out_mesh, out_motion, path


@pytest.mark.slow
def test_each_face_shape_changes_the_rendered_face(threejs_glb, tmp_path):
    _, _, path = threejs_glb
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, error_summary(report)
    result = _client(tmp_path, "morph", str(path))
    for key in ("image", "jaw_open"):  # left beside the test for a look
        (tmp_path / f"{key}.png").write_bytes(base64.b64decode(result[key].split(",", 1)[1]))
    assert result["names"] == list(ARKIT_NAMES) + list(VISEME_NAMES)
    assert result["face_pixels"] > 10000  # the face fills the view
    changed = result["changed"]
    print("\nchanged face pixels:", dict(sorted(changed.items(), key=lambda kv: kv[1])))
    assert changed["viseme_sil"] == 0  # the neutral face moves nothing
    assert all(changed[name] > 0 for name in result["names"] if name != "viseme_sil"), changed
    assert changed["jawOpen"] > 500 and changed["viseme_aa"] > 300


@pytest.mark.slow
def test_three_js_morphs_then_skins_like_our_lbs(threejs_glb, tmp_path):
    mesh, motion, path = threejs_glb
    frame = motion.num_frames // 3
    spec = ",".join(f"{k}={w}" for k, w in WEIGHTS.items())
    result = _client(tmp_path, "skin", str(path), repr(frame / float(motion.fps)), spec)
    assert result["influences"] == 4 and not result["has_second_set"]
    theirs = torch.tensor(result["vertices"], dtype=torch.float64).reshape(-1, 3)
    targets = mesh.morph_targets
    morphed = mesh.vertices.double() + sum(w * targets.deltas[targets.index(k)].double() for k, w in WEIGHTS.items())
    dense = lbs.dense_skin_weights(mesh.skin_indices.long(), mesh.skin_weights.double(), mesh.skeleton.num_joints)
    ours, _ = lbs.pose_body(morphed, mesh.skeleton.rest_transforms.double(), mesh.skeleton.parents, dense,
                            motion.rotations[frame:frame + 1].double(), motion.root_translation[frame:frame + 1].double())
    error = (theirs - ours[0]).norm(dim=1)
    print(f"\nthree.js vs our LBS with {len(WEIGHTS)} morph targets on: max {float(error.max()) * 1000:.3f} mm")
    assert float(error.max()) < 1e-3, f"three.js skins {float(error.max()) * 1000:.2f} mm away from our LBS"
    # the morph targets moved the face: without them the two would differ by centimetres
    unmorphed, _ = lbs.pose_body(mesh.vertices.double(), mesh.skeleton.rest_transforms.double(), mesh.skeleton.parents,
                                 dense, motion.rotations[frame:frame + 1].double(),
                                 motion.root_translation[frame:frame + 1].double())
    assert float((theirs - unmorphed[0]).norm(dim=1).max()) > 0.02
