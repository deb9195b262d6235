"""Shape artifacts on disk: VAE weights, code-book, descriptions and their sentence embeddings.

A folder holds ``meta.json`` (schema, shape space, configs, descriptions, training report) and
``shape_artifacts.npz`` (arrays). Packaged sets live in ``avatarclip_core/shape/artifacts/<name>``
(preview, standard, paper) so a fresh install can query shapes; ``avatar train shape`` writes
new ones (default: ``$AVATAR_DATA_DIR/shape/<name>``), which then take precedence.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarclip_core.errors import UserInputError
from avatarclip_core.shape.space import ShapeSpace, space_from_meta
from avatarclip_core.shape.vae import ShapeVAE, vae_from_arrays

SCHEMA = "avatar-studio/shape-artifacts@1"
META_FILE = "meta.json"
ARRAYS_FILE = "shape_artifacts.npz"
PACKAGED_DIR = Path(__file__).resolve().parent / "artifacts"


class ShapeArtifactsMissingError(UserInputError):
    """No usable shape artifacts where the config points (a user error: say how to build them)."""


@dataclass
class ShapeArtifacts:
    path: Path
    meta: dict
    space: ShapeSpace
    vae: ShapeVAE
    entries: np.ndarray  # (K, D) shape coordinates, inside the slider ranges
    latents: np.ndarray  # (K, Z)
    counts: np.ndarray  # (K,) decoded samples per centroid
    descriptions: list[list[str]]  # K lists of phrasings
    neutral_descriptions: list[str]
    text_model: str  # id of the sentence model the embeddings below came from
    desc_emb: np.ndarray | None = None  # (K, E) unit norm, mean over phrasings
    neutral_desc_emb: np.ndarray | None = None  # (E,)
    _fingerprint: str = field(default="", repr=False)

    @property
    def size(self) -> int:
        return int(self.entries.shape[0])

    @property
    def fingerprint(self) -> str:
        """Changes whenever the code-book bodies change (keys caches of their renders)."""
        if not self._fingerprint:
            self._fingerprint = hashlib.sha256(np.ascontiguousarray(self.entries, dtype=np.float32).tobytes()
                                               + "|".join(self.space.names).encode()).hexdigest()[:16]
        return self._fingerprint

    def sliders(self, index: int) -> dict[str, float]:
        return self.space.to_sliders(self.entries[index])


def save_artifacts(out_dir: str | os.PathLike, art: ShapeArtifacts, vae_arrays: dict[str, np.ndarray]) -> Path:
    """Write the folder atomically (a temporary sibling renamed into place)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the artifacts are meant to be shared
        arrays = dict(vae_arrays)
        arrays.update(entries=art.entries.astype(np.float32), latents=art.latents.astype(np.float32),
                      counts=art.counts.astype(np.int32))
        if art.desc_emb is not None:
            arrays["desc_emb"] = art.desc_emb.astype(np.float16)
            arrays["neutral_desc_emb"] = np.asarray(art.neutral_desc_emb, dtype=np.float32)
        np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
        meta = dict(art.meta)
        meta.update(schema=SCHEMA, text_model=art.text_model, descriptions=art.descriptions,
                    neutral_descriptions=art.neutral_descriptions, codebook_size=art.size)
        (tmp / META_FILE).write_text(_dump_meta(meta))
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _dump_meta(meta: dict) -> str:
    """Readable JSON with the long lists (descriptions, ranges) one item per line, compactly."""
    lines = ["{"]
    items = list(meta.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], list):
            inner = ",\n  ".join(json.dumps(v, separators=(",", ":")) for v in value)
            lines.append(f"{json.dumps(key)}: [\n  {inner}\n]{comma}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}{comma}")
    return "\n".join(lines) + "\n}\n"


def load_artifacts(path: str | os.PathLike) -> ShapeArtifacts:
    path = Path(path)
    meta_path, arrays_path = path / META_FILE, path / ARRAYS_FILE
    if not meta_path.is_file() or not arrays_path.is_file():
        raise ShapeArtifactsMissingError(
            f"no shape artifacts in {path} ({META_FILE} and {ARRAYS_FILE} expected): run `avatar train shape`")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema") != SCHEMA:
        raise ShapeArtifactsMissingError(
            f"{meta_path} has schema {meta.get('schema')!r}, expected {SCHEMA!r}: rebuild with `avatar train shape`")
    space = space_from_meta(meta["space"])
    with np.load(arrays_path) as data:
        arrays = {k: data[k] for k in data.files}
    v = meta["vae"]
    vae = vae_from_arrays(arrays, space.dim, v["latent_dim"], v["hidden"])
    has_emb = "desc_emb" in arrays
    return ShapeArtifacts(
        path=path, meta=meta, space=space, vae=vae, entries=space.clip(arrays["entries"].astype(np.float64)),
        latents=arrays["latents"], counts=arrays["counts"], descriptions=meta["descriptions"],
        neutral_descriptions=meta["neutral_descriptions"], text_model=meta.get("text_model", ""),
        desc_emb=arrays["desc_emb"].astype(np.float32) if has_emb else None,
        neutral_desc_emb=arrays["neutral_desc_emb"].astype(np.float32) if has_emb else None)


def default_output_dir(name: str) -> Path:
    from avatarclip_core.paths import data_dir

    return data_dir() / "shape" / name


def resolve_artifacts_dir(artifacts_dir: str, name: str) -> Path:
    """artifacts_dir if set; else the data folder's shape/<name> if trained; else the packaged set."""
    from avatarclip_core.artifacts import find_artifact_set

    trained = default_output_dir(name)
    return find_artifact_set(artifacts_dir, trained, PACKAGED_DIR, name, META_FILE, lambda known: (
        ShapeArtifactsMissingError(f"no shape artifacts named '{name}' (packaged: {', '.join(known) or 'none'}; "
                                   f"trained ones live in {trained.parent}): run `avatar train shape` with that "
                                   "preset, or set shape.artifacts_dir")))
