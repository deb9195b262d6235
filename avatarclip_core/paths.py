"""Where the project keeps its data: caches, model files, job outputs.

Job outputs, uploads, trained artifacts and most caches live under one data folder,
`AVATAR_DATA_DIR` (default `./data`), so a deployment mounts one volume and a test session can point
at its own. What depends on nothing in a data folder lives once per user in the user cache folder:
`AVATAR_CACHE_DIR`, else `$XDG_CACHE_HOME/avatar-studio`, else `~/.cache/avatar-studio`. That is the
body model's build (~1 GB, about 2 minutes; a data folder's own `cache/anny` built by an older install
is still found and used, nothing is copied) and the caches keyed by their inputs' contents
(`user_cache_dir`): Warp's compiled kernels, the face assets' option renders, the CLIP features of the
pose code-book, the tensor caches. A fresh data folder then pays none of them again: measured, a cold
`avatar photo --method oneshot` on a new data folder took 7.8 s against 4.0 s, compiling the
rasteriser's kernels and rendering the asset options anew.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Mapping


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
    """A named cache folder inside the data folder (e.g. 'neus', 'shape_clip'): caches tied to a data folder's
    artifacts or sizeable per deployment; content-keyed ones shared by all folders use ``user_cache_dir``."""
    path = data_dir() / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_dir_path(environ: Mapping[str, str] | None = None) -> Path:
    """The one reading of AVATAR_CACHE_DIR (else $XDG_CACHE_HOME/avatar-studio, else
    ~/.cache/avatar-studio), absolute; not created."""
    env = os.environ if environ is None else environ
    if env.get("AVATAR_CACHE_DIR"):
        return Path(env["AVATAR_CACHE_DIR"]).expanduser().resolve()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return (Path(base).expanduser() / "avatar-studio").resolve()


def user_cache_dir(name: str) -> Path:
    """A named folder in the user cache folder, created: for caches whose keys hold everything their
    values depend on (code, model, inputs), so every data folder of the user can share them. Where the
    user cache cannot be written (a read-only home, AVATAR_CACHE_DIR naming a file), the data folder's
    ``cache_dir(name)``, where these caches lived before, so nothing fails for want of a cache."""
    path = user_cache_dir_path() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return cache_dir(name)
    return path if os.access(path, os.W_OK | os.X_OK) else cache_dir(name)


BODY_CACHE_NAME = "anny"


def _body_cache_built(folder: Path) -> bool:
    """Anny writes its build as v<data version>/load_data_<hash>.safetensors (atomically enough: a
    failed build leaves no file of that name)."""
    return folder.is_dir() and any(folder.glob("v*/load_data_*.safetensors"))


def body_model_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the body model's build is read from and written to: the user cache folder; an existing
    install's data-folder cache when only that one holds a build. Not created."""
    user = user_cache_dir_path(environ) / BODY_CACHE_NAME
    legacy = data_dir_path(environ) / "cache" / BODY_CACHE_NAME
    if not _body_cache_built(user) and _body_cache_built(legacy):
        return legacy
    return user


def body_model_cache_ready(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a body model build is on disk (False: the next start builds it, about 2 minutes).
    Torch-free, for the web process's first-run notice."""
    return _body_cache_built(body_model_cache_path(environ))


def body_model_cache_dir() -> Path:
    """body_model_cache_path(), created."""
    path = body_model_cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def body_model_build_lock() -> Iterator[Path]:
    """Held while a process builds or loads the body model: a web process, its worker and a CLI run
    started together build it once; the others wait, then read the build from the cache."""
    import fcntl

    folder = body_model_cache_dir()
    with open(folder / ".build.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
