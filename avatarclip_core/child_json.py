"""Metadata that needs torch to compute (body slider names, an engine's parameter spec) for processes
that must not import it (the web app, the job API's checks at submit): computed once in a short-lived
child process and cached as JSON in the data folder. Imports nothing heavy.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
MARKER = "CHILD_JSON "


def source_key(folders: Iterable[Path], packages: Iterable[str] = ()) -> str:
    """16 hex digits that change when a .py file under `folders` or a package version changes."""
    h = hashlib.sha256()
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{package}={metadata.version(package)}".encode())
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()[:16]


def run_child(script: str, what: str, timeout: float = 900.0) -> Any:
    """Run `script` (Python that ends with `print(MARKER + json.dumps(value))`) in a child process."""
    env = dict(os.environ, WARP_QUIET="1")
    env.pop("AVATAR_API_TOKEN", None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT), stdin=subprocess.DEVNULL)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"could not read {what} (exit {proc.returncode}): {proc.stderr[-2000:]}")


def cached_child_json(path: Path, script: str, what: str, timeout: float = 900.0) -> Any:
    """The cached value at `path`, else run_child's (then cached; a read-only data folder: not cached)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        pass
    value = run_child(script, what, timeout)
    with contextlib.suppress(OSError):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    return value
