"""Where a trained artifact set is loaded from: the one lookup order every component uses
(shape code-book, motion models, the one-shot translator)."""
from __future__ import annotations

from pathlib import Path


def resolve_artifact_dir(explicit: str, trained: Path, packaged: Path, marker: str) -> Path | None:
    """`explicit` when set (the user's choice, used as given, `~` expanded); else the set trained into
    the data folder when it holds `marker`; else the packaged one when it does; else None."""
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (trained, packaged):
        if (candidate / marker).is_file():
            return candidate
    return None


def packaged_names(root: Path, marker: str) -> list[str]:
    """The packaged sets under `root` (for an error that lists them)."""
    return sorted(p.name for p in root.glob("*") if (p / marker).is_file())
