"""Atomic job folders: a pipeline writes into a temporary sibling folder that is renamed into
place only when every file is complete, so a crash or bad input never leaves a half job."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from avatarclip_core.errors import OutputExistsError, OutputNotWritableError


def check_output_folder(target: Path, force: bool) -> Path:
    """Validate an output folder before any work starts (fail fast, one clear message)."""
    target = Path(target).expanduser().absolute()
    if target.exists() and not force:
        raise OutputExistsError(f"output folder {target} already exists; pass --force to replace it")
    if target.exists() and not target.is_dir():
        raise OutputNotWritableError(f"output path {target} exists and is not a folder")
    parent = target.parent
    probe_parent = parent
    while not probe_parent.exists():
        probe_parent = probe_parent.parent
    if not probe_parent.is_dir():
        raise OutputNotWritableError(f"cannot create {target}: {probe_parent} is a file, not a folder")
    if not os.access(probe_parent, os.W_OK | os.X_OK):
        raise OutputNotWritableError(f"cannot write to {probe_parent}: permission denied")
    return target


def _apply_umask_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; a finished job folder gets the usual
    permissions so a web server or another user of the machine can read it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_job_folder(target: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; on success rename it to `target`."""
    target = check_output_folder(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _apply_umask_permissions(tmp)
    if target.exists():  # --force: swap the old folder out only once the new one is complete
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, trash)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)
