"""The `avatar` command (main.py; photo.py adds the photo commands)."""
from avatar_studio.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
