"""Silence native libraries' start-up chatter on file descriptor 2, briefly.

mediapipe (TFLite/absl: "Created TensorFlow Lite XNNPACK delegate", "W0000 ...
inference_feedback_manager") and Warp (a CUDA warning on machines without a driver) write from C++
to fd 2, past Python's logging, when a model or runtime is built and on its first inference. None of
it helps a user, and the CLI promises one `error:` line on bad input. ``silenced()`` points fd 2 at
/dev/null for the block only, so it is kept to those first calls: anything another thread writes to
stderr inside the block is lost too.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()  # one redirection at a time: nested saves would restore the wrong descriptor


@contextmanager
def silenced() -> Iterator[None]:
    with _lock:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
