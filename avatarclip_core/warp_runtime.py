"""Initialise NVIDIA Warp once, quietly, with its kernel cache in the user cache folder.

Used by the rasteriser's kernels and before building the Anny body model (which imports Warp).
Warp prints a banner on stdout and, on machines without a GPU driver, a CUDA warning from native
code on stderr; neither helps a user, and the CLI promises one `error:` line on bad input, so on
CPU-only machines the native stderr is silenced for the duration of `wp.init()` only.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_ready = False


def ensure_warp() -> None:
    global _ready
    with _lock:
        if _ready:
            return
        import torch
        import warp as wp

        from avatarclip_core.paths import user_cache_dir

        if wp.config.kernel_cache_dir is None:
            wp.config.kernel_cache_dir = str(user_cache_dir("warp"))  # compiled once per user
        wp.config.log_level = wp.LOG_WARNING  # no start-up banner
        if torch.cuda.is_available():
            wp.init()
        else:
            from avatarclip_core.native_stderr import silenced

            with silenced():
                wp.init()
        _ready = True
