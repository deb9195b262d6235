"""The `avatar` CLI end to end: the Foundation's "done means" and its bad-input contract."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gltf_validation import validate_glb

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "avatar_studio.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


@pytest.fixture(scope="module")
def walk_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs") / "walker"
    proc = run_cli("body", "--set", "height=0.9", "--motion", "walk", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    return out


def test_body_walk_job_folder_is_complete_and_valid(walk_job):
    names = {p.name for p in walk_job.iterdir()}
    assert {"avatar.glb", "params.json", "preview.png", "provenance.json", "motion.bvh", "motion.npz"} <= names
    assert not any(n.startswith(".") for n in os.listdir(walk_job.parent))  # no temp folders left
    report = validate_glb(walk_job / "avatar.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]


def test_walk_glb_has_one_skin_enough_joints_frames_and_root_advance(walk_job):
    from pygltflib import GLTF2

    gltf = GLTF2().load(str(walk_job / "avatar.glb"))
    assert len(gltf.skins) == 1 and len(gltf.skins[0].joints) >= 20
    assert len(gltf.animations) == 1
    from avatarclip_core.export import read_glb

    mesh, motion = read_glb(walk_job / "avatar.glb")
    assert motion is not None and motion.num_frames >= 30
    advance = float(motion.root_translation[-1, 2] - motion.root_translation[0, 2])
    assert advance > 0.3
    npz = np.load(walk_job / "motion.npz")
    assert npz["joint_positions"].shape[0] == motion.num_frames
    assert float(npz["root_translation"][-1, 2] - npz["root_translation"][0, 2]) > 0.3


def test_params_and_provenance(walk_job):
    params = json.loads((walk_job / "params.json").read_text())
    assert params["schema"] == "avatar-studio/params@1"
    assert params["sliders"]["height"] == pytest.approx(0.9)
    assert params["sliders_set"] == {"height": 0.9}
    assert params["motion"]["name"] == "walk"
    prov = json.loads((walk_job / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["config"]["motion"]["name"] == "walk"
    assert "torch" in prov["versions"] and "anny" in prov["versions"]
    assert {"export glb", "build avatar"} <= set(prov["timings_s"])
    assert prov["peak_memory_mb"]["build avatar"]["rss_mb"] > 100  # the body model alone is larger
    assert prov["device"]["device"] == "cpu"


def test_preview_png_shows_a_body(walk_job):
    from PIL import Image

    img = np.asarray(Image.open(walk_job / "preview.png").convert("RGB")).astype(float)
    assert img.shape[0] >= 128
    # not a blank image: the body differs from the background
    assert img.std() > 10


@pytest.mark.parametrize("args,fragment", [
    (["--set", "heigth=0.5"], "unknown slider 'heigth'"),
    (["--set", "height=2"], "out of range"),
    (["--set", "height=tall"], "needs a number"),
    (["--motion", "moonwalk " * 40], "the motion description has 359 characters; keep it under 300"),
    (["--set", "motion.fps=fast"], "motion.fps needs a number"),
    (["--set", "nonsense.key=1"], "unknown config key 'nonsense'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, fragment):
    from avatar_studio.cli import main

    out = tmp_path / "job"
    assert main(["body", *args, "-o", str(out), "-q"]) == 2
    stderr = capsys.readouterr().err
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_input_from_a_fresh_process_prints_only_the_error(tmp_path):
    proc = run_cli("body", "--set", "heigth=0.5", "-o", str(tmp_path / "job"), "-q")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: unknown slider 'heigth'; did you mean height, weight?"]
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


def test_existing_folder_needs_force_and_unwritable_output_fails_cleanly(tmp_path, capsys):
    from avatar_studio.cli import main

    out = tmp_path / "job"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["body", "-o", str(out), "-q"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"  # nothing lost
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["body", "-o", str(blocker / "job"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a folder" in err
    assert main(["body", "-q", "-o", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "avatar.glb").is_file()


def test_help_lists_config_keys_and_sliders_command():
    proc = run_cli("body", "--help")
    assert proc.returncode == 0 and "motion.fps" in proc.stdout and "body.anny.rig" in proc.stdout
    proc = run_cli("sliders", "--group", "phenotype")
    assert proc.returncode == 0 and "height" in proc.stdout and "[0, 1]" in proc.stdout


@pytest.mark.slow
def test_walk_glb_imports_in_blender_with_its_armature(walk_job):
    from conftest import require_blender

    require_blender()
    from avatarclip_core.export import inspect_in_blender

    info = inspect_in_blender(walk_job / "avatar.glb")
    assert info["armatures"] == 1 and info["bones"] == 53 and info["meshes"] == 1
    npz = np.load(walk_job / "motion.npz")
    assert info["frames"] == npz["joint_positions"].shape[0]


@pytest.mark.slow
def test_fbx_flag_writes_an_fbx_with_the_same_bones(tmp_path):
    from conftest import require_blender

    require_blender()
    from avatar_studio.cli import main
    from avatarclip_core.export import inspect_in_blender

    out = tmp_path / "fbx_job"
    assert main(["body", "--motion", "wave", "--fbx", "-q", "-o", str(out)]) == 0
    info = inspect_in_blender(out / "avatar.fbx")
    assert info["armatures"] == 1 and info["bones"] == 53 and info["frames"] > 30
