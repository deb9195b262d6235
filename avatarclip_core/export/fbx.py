"""FBX export through Blender's Python module (`bpy`), run in a separate process.

FBX is a closed format with no good pure-Python writer; Blender's exporter is the de-facto free one
and what Unreal/Unity users already rely on. `bpy` is huge (~0.8 GB), pins numpy < 2, is not
thread-safe and keeps global state, so it is an optional extra (`pip install '.[fbx]'`) and is only
ever imported in a child interpreter: the web and worker processes never load it.

The child runs `_blender_script.py`: import the GLB (at the clip's frame rate, so one motion frame is
one Blender frame), delete the importer's "Icosphere" bone-shape mesh, wire the texture straight
into Base Color, and export with no leaf bones and every frame baked, so the FBX re-imports with the
same bone and frame counts as the GLB.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pygltflib as gl

__all__ = ["FbxUnavailableError", "BlenderError", "fbx_available", "require_bpy", "glb_to_fbx", "inspect_in_blender"]

_SCRIPT = Path(__file__).with_name("_blender_script.py")
_NO_BPY_EXIT = 3
# Interpreter that has bpy; defaults to this one. Lets a deployment keep Blender in its own venv.
PYTHON_ENV_VAR = "AVATAR_BPY_PYTHON"


class FbxUnavailableError(RuntimeError):
    """Blender's bpy is not installed, so FBX export and Blender checks cannot run."""

    def __init__(self, detail: str = "") -> None:
        msg = ("FBX export needs Blender's bpy: run `make install-fbx` (a separate venv .venv-blender with "
               "bpy==5.0.1, which needs numpy<2) or point AVATAR_BPY_PYTHON at a Python that has bpy")
        super().__init__(f"{msg} ({detail})" if detail else msg)


class BlenderError(RuntimeError):
    """The Blender subprocess failed; the message carries the end of its output."""


def _default_blender_python() -> str:
    """`.venv-blender/bin/python` beside the app's venv when present (bpy pins numpy<2 while the
    web stack needs numpy>=2, so Blender gets its own interpreter), else this interpreter."""
    sibling = Path(sys.prefix).parent / ".venv-blender" / "bin" / "python"
    return str(sibling) if sibling.is_file() else sys.executable


def _python(python: str | None) -> str:
    return python or os.environ.get(PYTHON_ENV_VAR) or _default_blender_python()


def fbx_available(python: str | None = None) -> bool:
    """True when bpy can be imported by the interpreter that would run Blender (cheap for this one:
    it only looks the module up, never imports it)."""
    exe = _python(python)
    if exe == sys.executable:
        return importlib.util.find_spec("bpy") is not None
    proc = subprocess.run([exe, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('bpy') is None)"])
    return proc.returncode == 0


def _glb_fps(path: Path) -> float | None:
    """The first animation's frame rate (our extras, else inferred from key times), read from the JSON
    chunk only, so Blender can be set to the same rate before it imports the clip."""
    gltf = gl.GLTF2.load(str(path))
    if not gltf.animations:
        return None
    anim = gltf.animations[0]
    fps = (anim.extras or {}).get("fps")
    if fps:
        return float(fps)
    inputs = [gltf.accessors[s.input] for s in anim.samplers]
    longest = max(inputs, key=lambda a: a.count, default=None)
    if longest is None or longest.count < 2 or not longest.max:
        return None
    fps = (longest.count - 1) / (longest.max[0] - longest.min[0])
    return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps


def require_bpy(python: str | None = None) -> None:
    """Raise FbxUnavailableError unless Blender can run: a pre-flight check for pipelines, so a job
    asking for FBX fails before doing any work rather than at the end."""
    if not fbx_available(python):
        raise FbxUnavailableError(f"bpy is not importable by {_python(python)}")


def _require_bpy(python: str | None) -> None:
    """Fail fast (before touching any file) when this interpreter is the one to run Blender and lacks bpy;
    another interpreter is checked by the child itself (exit status 3), which saves a process start."""
    if _python(python) == sys.executable and importlib.util.find_spec("bpy") is None:
        raise FbxUnavailableError("bpy is not installed in this interpreter")


def _run_blender(args: dict, python: str | None, timeout: float) -> dict:
    exe = _python(python)
    _require_bpy(python)
    with tempfile.TemporaryDirectory(prefix="avatar_bpy_") as tmp:
        result = Path(tmp) / "result.json"
        args = {**args, "result": str(result)}
        # `-c` with the script's source: bpy is imported only by the child interpreter.
        cmd = [exe, "-c", _SCRIPT.read_text(), json.dumps(args)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        if proc.returncode == _NO_BPY_EXIT:
            raise FbxUnavailableError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
        if proc.returncode != 0 or not result.exists():
            tail = (proc.stdout[-2000:] + "\n" + proc.stderr[-3000:]).strip()
            raise BlenderError(f"Blender {args['op']} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(result.read_text())


def glb_to_fbx(
    glb_path: str | os.PathLike, fbx_path: str | os.PathLike, *, python: str | None = None, timeout: float = 600
) -> Path:
    """Convert a GLB written by `write_glb` into a binary FBX 7.4 (mesh, armature, baked animation,
    embedded texture). Written atomically (temp file + os.replace). Raises FbxUnavailableError without bpy."""
    _require_bpy(python)
    glb_path = Path(glb_path).resolve()
    fbx_path = Path(fbx_path).resolve()
    fbx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{fbx_path.stem}.", suffix=".tmp.fbx", dir=fbx_path.parent)
    os.close(fd)
    try:
        _run_blender({"op": "glb_to_fbx", "glb": str(glb_path), "fbx": tmp, "fps": _glb_fps(glb_path)}, python, timeout)
        os.chmod(tmp, 0o644)
        os.replace(tmp, fbx_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return fbx_path


def inspect_in_blender(
    path: str | os.PathLike, *, sample_frames: list[int] = (), python: str | None = None, timeout: float = 600
) -> dict:
    """Import a .glb/.gltf/.fbx/.bvh into a fresh Blender (in a subprocess) and report what it sees.

    Keys: armatures, bones (over all armatures), meshes (bone-shape meshes excluded), frames (over
    all actions, inclusive), actions, plus bone_names, mesh_names, action_names, vertices, images,
    fps and the Blender version, and joint_positions: {str(frame): {bone: [x, y, z]}} world bone
    heads in Blender's Z-up space (glTF (x, y, z) is Blender (x, -z, y)) for each of sample_frames
    (clip frames, 0 = first). Used by tests and to check a conversion before handing it out.
    """
    _require_bpy(python)
    path = Path(path).resolve()
    fps = _glb_fps(path) if path.suffix.lower() in (".glb", ".gltf") else None
    args = {"op": "inspect", "path": str(path), "fps": fps, "sample_frames": [int(f) for f in sample_frames]}
    return _run_blender(args, python, timeout)
