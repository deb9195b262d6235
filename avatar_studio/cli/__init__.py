"""The `avatar` command (main.py; photo.py adds the photo commands). `console_main` is the console
script: main() then a hard exit that skips the interpreter's teardown; in-process callers use main()."""
from avatar_studio.cli.main import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
