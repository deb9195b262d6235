"""AvatarCLIP core: body models, rendering, rigging, motion and export building blocks."""

__version__ = "0.1.0"
