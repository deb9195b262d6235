"""`train_shape_artifacts`: rebuild the shape VAE, code-book and descriptions (``avatar train shape``)."""
from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.progress import ProgressFn, StageTimer
from avatarclip_core.shape.store import ShapeArtifacts, default_output_dir, save_artifacts
from avatarclip_core.shape.codebook import build_codebook
from avatarclip_core.shape.config import ShapeConfig
from avatarclip_core.shape.describe import describe
from avatarclip_core.shape.space import ShapeSpace, default_space, space_to_meta
from avatarclip_core.shape.vae import ShapeVAE, train_vae, vae_state_arrays


def embed_descriptions(encoder, descriptions: list[list[str]]) -> np.ndarray:
    """(K, E) unit-norm mean of each entry's phrasing embeddings."""
    flat = [p for phrasings in descriptions for p in phrasings]
    unique = list(dict.fromkeys(flat))
    emb = encoder.encode(unique).numpy()
    row = {t: i for i, t in enumerate(unique)}
    out = np.stack([emb[[row[p] for p in phrasings]].mean(0) for phrasings in descriptions])
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-8)


def train_shape_artifacts(config: ShapeConfig | None = None, out_dir: str | os.PathLike | None = None, *,
                          text_encoder=None, body=None, progress: ProgressFn | None = None) -> Path:
    """Train the VAE, build the code-book, describe and embed its entries; write ``out_dir``.

    Seeded by ``config.seed`` (same config, same artifacts on the same machine). ``out_dir``
    defaults to ``$AVATAR_DATA_DIR/shape/<config.name>``. ``body``: the body model to check the
    slider names against (default: the project's Anny body). ``text_encoder``: default the
    offline TextEncoder.
    """
    config = config or ShapeConfig()
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(config.name)
    v, c = config.vae, config.codebook
    if c.size > c.samples:
        from avatarclip_core.config import ConfigError

        raise ConfigError(f"shape.codebook.size ({c.size}) must not exceed shape.codebook.samples ({c.samples})")
    timer = StageTimer({"check body": 1, "sample": 1, "train vae": 10, "codebook": 4, "describe": 1, "embed": 4,
                        "save": 1}, progress)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    space = default_space()

    def check_body():
        from avatarclip_core.body import create_body_model

        space.check_body(body or create_body_model())

    timer.run("check body", check_body)
    rng = np.random.default_rng(config.seed)
    data = timer.run("sample", lambda: space.sample(v.train_samples + v.held_out, rng))
    train, held_out = data[:v.train_samples], data[v.train_samples:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        vae = ShapeVAE(space.dim, v.latent_dim, v.hidden)
    report = timer.run("train vae", lambda: train_vae(
        vae, train, held_out, epochs=v.epochs, batch_size=v.batch_size, lr=v.lr, kl_weight=v.kl_weight,
        seed=config.seed, num_phenotypes=space.num_phenotypes))
    book = timer.run("codebook", lambda: build_codebook(vae, space, c.samples, c.size, c.kmeans_iters, config.seed))
    descriptions = timer.run("describe", lambda: [describe(space, x) for x in book["entries"]])
    neutral_descriptions = describe(space, space.neutral)

    def embed():
        from avatarclip_core.clip.text_encoder import TextEncoder

        encoder = text_encoder or TextEncoder()
        emb = embed_descriptions(encoder, descriptions + [neutral_descriptions])
        return encoder.model_id, emb[:-1], emb[-1]

    text_model, desc_emb, neutral_emb = timer.run("embed", embed)
    meta = {
        "name": config.name,
        "config": dataclasses.asdict(config),
        "space": space_to_meta(space),
        "vae": {"latent_dim": v.latent_dim, "hidden": v.hidden},
        "clustering_weights": book["weights"].tolist(),
        "report": {
            "vae": dataclasses.asdict(report),
            "held_out_samples": int(len(held_out)),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "timings_s": timer.timings,
            "torch": torch.__version__,
        },
    }
    art = ShapeArtifacts(path=out_dir, meta=meta, space=space, vae=vae, entries=book["entries"].astype(np.float64),
                         latents=book["latents"], counts=book["counts"], descriptions=descriptions,
                         neutral_descriptions=neutral_descriptions, text_model=text_model, desc_emb=desc_emb,
                         neutral_desc_emb=neutral_emb)
    path = timer.run("save", lambda: save_artifacts(out_dir, art, vae_state_arrays(vae)))
    return path


def held_out_samples(space: ShapeSpace, n: int, seed: int) -> np.ndarray:
    """Fresh bodies from the training distribution (a different stream from training's)."""
    return space.sample(n, np.random.default_rng([seed, 1]))


def build_packaged(names: list[str] | None = None) -> list[Path]:
    """Maintainers: rebuild the artifact sets shipped in avatarclip_core/shape/artifacts/."""
    from avatarclip_core.shape.config import PACKAGED_SETS, preset_shape_config
    from avatarclip_core.shape.store import PACKAGED_DIR

    paths = []
    for name in names or list(PACKAGED_SETS):
        started = time.perf_counter()
        paths.append(train_shape_artifacts(preset_shape_config(name), PACKAGED_DIR / name))
        print(f"{name}: {paths[-1]} in {time.perf_counter() - started:.1f} s")
    return paths

