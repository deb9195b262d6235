"""provenance.json: what produced a job folder (config, seed, versions, timings, device)."""
from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

_PACKAGES = ("avatar-studio", "torch", "torchvision", "anny", "numpy", "pygltflib", "warp-lang", "smplx")


def package_versions() -> dict[str, str]:
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    """Once per process (~30 ms of metadata reads each time: a batch wrote it for every photo)."""
    return {"python": platform.python_version(), **installed_versions(_PACKAGES)}


def installed_versions(names) -> dict[str, str]:
    """name -> installed version of each of these distributions that is installed (read now)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_info(device: str) -> dict[str, Any]:
    import torch  # here, not at the top: the batch's analysis processes write JSON without torch

    info: dict[str, Any] = {"device": device, "platform": platform.platform(), "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def provenance(kind: str, config: dict, seed: int, timings: dict[str, float], device: str, inputs: dict,
               peak_memory_mb: dict | None = None) -> dict:
    return {
        "job_kind": kind,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "config": config,
        "seed": seed,
        "versions": package_versions(),
        "device": device_info(device),
        "timings_s": timings,
        "peak_memory_mb": peak_memory_mb or {},
        "command": public_argv(sys.argv),
    }


def public_argv(argv: list[str]) -> list[str]:
    """The command line with absolute paths cut to their base names: provenance.json is downloadable
    from the web app, and a worker's argv holds server paths (its venv, the data folder)."""
    if not argv or not argv[0]:
        return []
    return [Path(a).name if a.startswith("/") else a for a in argv]
