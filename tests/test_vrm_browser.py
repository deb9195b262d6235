"""Real clients in headless Chromium (tests/browser/three_client.js): @pixiv/three-vrm loads avatar.vrm
with every required humanoid bone and the 18 preset expressions, each (but neutral) visibly changes
the rendered face; three.js skins a threejs-profile GLB (T-pose, Mixamo names, 4 influences) at a
chosen animation time exactly as our own LBS does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.export import write_glb
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.profiles import VRM_REQUIRED_BONES, resolve_profile
from avatarclip_core.export.vrm import VRM_EXPRESSIONS, write_vrm
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion

from gltf_validation import error_summary, validate_glb

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
PACKAGES = ("playwright-core", "three", "@pixiv/three-vrm")


def _client(tmp_path: Path, *args: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the three.js client test needs Node.js")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"{chromium} is missing (Debian's chromium package)")
    if not all((BROWSER_DIR / "node_modules" / p).is_dir() for p in PACKAGES):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm not found: run `npm install --prefix tests/browser`")
        proc = subprocess.run([npm, "install", "--prefix", str(BROWSER_DIR), "--no-audit", "--no-fund"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"npm install --prefix tests/browser failed:\n{proc.stderr[-2000:]}"
    out = tmp_path / "client.json"
    proc = subprocess.run([node, str(BROWSER_DIR / "three_client.js"), *args, str(out)], capture_output=True,
                          text=True, timeout=300, cwd=BROWSER_DIR, env=dict(os.environ, CHROMIUM=chromium))
    assert out.exists(), f"three_client.js wrote nothing (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
    result = json.loads(out.read_text())
    assert proc.returncode == 0 and "error" not in result, json.dumps(result)[:3000]
    return result


@pytest.mark.slow
def test_three_vrm_loads_bones_and_expressions_change_the_face(anny_body, tmp_path):
    from avatarclip_core.export.face_shapes import with_face_shapes

    mesh = anny_body.rigged_mesh({"gender": 1.0})
    mesh.vertex_colors = torch.tensor([0.8, 0.62, 0.52]).expand(len(mesh.vertices), 3).clone()
    mesh = with_face_shapes(mesh, anny_body, mesh.vertices)
    vrm_mesh, _ = apply_profile(mesh, None, resolve_profile("vrm"))
    path = write_vrm(vrm_mesh, tmp_path / "avatar.vrm")
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, error_summary(report)

    result = _client(tmp_path, "vrm", str(path))
    assert all(result["bones"].get(b) for b in VRM_REQUIRED_BONES), result["bones"]
    assert result["bones"].get("leftIndexDistal") and result["bones"].get("rightThumbMetacarpal")
    assert sorted(result["expressions"]) == sorted(VRM_EXPRESSIONS) and len(VRM_EXPRESSIONS) == 18
    assert result["morph_targets"] == 67 and result["look_at"] and result["first_person"]
    assert result["face_pixels"] > 10000  # the face fills the view
    changed = result["changed"]
    # measured (256 px view, gender 1): happy 986 px, surprised 1113, blink 501, lookRight 17 (smallest)
    assert all(changed[name] >= 10 for name in VRM_EXPRESSIONS if name != "neutral"), changed
    assert changed["neutral"] == 0  # the rest face is neutral: it binds nothing
    assert changed["blink"] > max(changed["blinkLeft"], changed["blinkRight"])


@pytest.mark.slow
def test_three_js_skins_the_threejs_profile_like_our_lbs(anny_mesh, tmp_path):
    motion, _ = build_motion(anny_mesh.skeleton, MotionConfig(name="wave"), MotionGenConfig())
    profile = resolve_profile("threejs")
    mesh, moved = apply_profile(anny_mesh, motion, profile)
    path = write_glb(mesh, tmp_path / "avatar.glb", motion=moved, max_influences=profile.max_influences)
    frame = motion.num_frames // 3
    result = _client(tmp_path, "skin", str(path), repr(frame / float(motion.fps)))
    assert result["influences"] == 4 and not result["has_second_set"]
    theirs = torch.tensor(result["vertices"], dtype=torch.float64).reshape(-1, 3)
    dense = lbs.dense_skin_weights(mesh.skin_indices.long(), mesh.skin_weights.double(), mesh.skeleton.num_joints)
    ours, _ = lbs.pose_body(mesh.vertices.double(), mesh.skeleton.rest_transforms.double(), mesh.skeleton.parents,
                            dense, moved.rotations[frame:frame + 1].double(),
                            moved.root_translation[frame:frame + 1].double())
    error = float((theirs - ours[0]).norm(dim=1).max())
    assert error < 1e-3, f"three.js skins {error * 1000:.2f} mm away from our LBS"


@pytest.mark.slow
def test_three_vrm_animation_plays_motion_vrma_like_our_fk(anny_mesh, tmp_path):
    from avatarclip_core.export.vrm import write_vrma

    motion, _ = build_motion(anny_mesh.skeleton, MotionConfig(name="walk"), MotionGenConfig())
    mesh, moved = apply_profile(anny_mesh, motion, resolve_profile("vrm"))
    vrm = write_vrm(mesh, tmp_path / "avatar.vrm")
    vrma = write_vrma(mesh, moved, tmp_path / "motion.vrma")
    frame = 20
    result = _client(tmp_path, "vrma", str(vrm), str(vrma), repr(frame / float(motion.fps)))
    world = lbs.forward_kinematics(mesh.skeleton.rest_transforms.double(), mesh.skeleton.parents,
                                   moved.rotations[frame:frame + 1].double(),
                                   moved.root_translation[frame:frame + 1].double())[0]
    errors = {bone: float((torch.tensor(p, dtype=torch.float64) - world[mesh.skeleton.index(bone), :3, 3]).norm())
              for bone, p in result["positions"].items()}
    assert len(errors) == 52 and max(errors.values()) < 1e-3, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    # the root travelled: the retargeted hips are not at their rest place
    assert float((world[mesh.skeleton.index("hips"), :3, 3] - mesh.skeleton.rest_transforms[1, :3, 3]).norm()) > 0.01
