"""Where the project keeps its data: caches, model files, job outputs.

Everything lives under one data folder, `AVATAR_DATA_DIR` (default `./data`), so a deployment
mounts one volume and a test session can point at its own.
"""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    path = Path(os.environ.get("AVATAR_DATA_DIR", "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str) -> Path:
    """A named cache folder inside the data folder (e.g. 'anny', 'warp')."""
    path = data_dir() / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
