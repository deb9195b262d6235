"""Run the Khronos glTF validator (npm `gltf-validator`, pinned in tests/js/package.json) on a file.

The validator is the reference for "valid glTF": engines and viewers are lenient in different ways,
so tests check our files against it instead of against any one loader.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent / "js"


class ValidatorUnavailable(RuntimeError):
    """Node.js or the npm package cannot be found or installed."""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ValidatorUnavailable(
            "glTF validation needs Node.js (the Khronos validator is an npm package): install node >= 16 and npm"
        )
    return node


def ensure_validator() -> str:
    """Path of the node executable, after installing tests/js/node_modules on first use."""
    node = _node()
    if not (JS_DIR / "node_modules" / "gltf-validator").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise ValidatorUnavailable("npm not found: run `npm install --prefix tests/js` to install gltf-validator")
        proc = subprocess.run(
            [npm, "install", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise ValidatorUnavailable(f"`npm install --prefix {JS_DIR}` failed:\n{proc.stderr[-2000:]}")
    return node


def validator_version() -> str:
    node = ensure_validator()
    script = "console.log(require('gltf-validator').version())"
    return subprocess.run([node, "-e", script], cwd=JS_DIR, capture_output=True, text=True, check=True).stdout.strip()


def validate_glb(path: str | os.PathLike, max_issues: int = 200) -> dict:
    """The validator's report for `path` (keys: issues.numErrors, numWarnings, numInfos, messages, info...)."""
    node = ensure_validator()
    proc = subprocess.run(
        [node, str(JS_DIR / "validate.js"), str(Path(path).resolve()), str(max_issues)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gltf-validator failed on {path}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def error_summary(report: dict) -> str:
    """Human-readable list of the report's messages, for assertion messages."""
    msgs = report.get("issues", {}).get("messages", [])
    return "\n".join(f"[{m.get('severity')}] {m.get('code')} {m.get('pointer', '')}: {m.get('message')}" for m in msgs)
