"""Where the project keeps its data: caches, model files, job outputs.

Everything lives under one data folder, `AVATAR_DATA_DIR` (default `./data`), so a deployment
mounts one volume and a test session can point at its own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def data_dir_path(environ: Mapping[str, str] | None = None) -> Path:
    """The one reading of AVATAR_DATA_DIR (unset or empty: ./data; `~` expanded), absolute; not created."""
    env = os.environ if environ is None else environ
    return Path(env.get("AVATAR_DATA_DIR") or "data").expanduser().resolve()


def data_dir() -> Path:
    """The data folder, created on first use."""
    path = data_dir_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str) -> Path:
    """A named cache folder inside the data folder (e.g. 'anny', 'warp')."""
    path = data_dir() / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
