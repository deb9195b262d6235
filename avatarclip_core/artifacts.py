"""Where a trained artifact set is loaded from: the one lookup order every component uses
(shape code-book, motion models, the one-shot translator)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable


def resolve_artifact_dir(explicit: str, trained: Path, packaged: Path, marker: str) -> Path | None:
    """`explicit` when set (the user's choice, used as given, `~` expanded); else the set trained into
    the data folder when it holds `marker`; else the packaged one when it does; else None."""
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (trained, packaged):
        if (candidate / marker).is_file():
            return candidate
    return None


def find_artifact_set(explicit: str, trained: Path, packaged_root: Path, name: str, marker: str,
                      missing: Callable[[list[str]], Exception]) -> Path:
    """resolve_artifact_dir for the set `name` (packaged under `packaged_root/name`), or raise
    `missing(names of the packaged sets)`: the component's own error, saying how to get one."""
    found = resolve_artifact_dir(explicit, trained, packaged_root / name, marker)
    if found is None:
        raise missing(sorted(p.name for p in packaged_root.glob("*") if (p / marker).is_file()))
    return found
