"""Maintainers: `python -m avatarclip_core.shape [preview standard paper]` rebuilds the packaged
artifact sets in avatarclip_core/shape/artifacts/ (offline; seeded)."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from avatarclip_core.shape.train import build_packaged  # noqa: E402

build_packaged(sys.argv[1:] or None)
