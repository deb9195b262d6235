"""Packages whose names load their modules on first use (PEP 562 `__getattr__`): importing one light
submodule (a plain config, a registry) then loads none of the heavy ones (torch, cv2, mediapipe)."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(by_module: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """(`__getattr__`, `__all__`) of a package whose names live in other modules:
    `by_module` maps a module's full name to the names it defines, separated by spaces."""
    exports = {name: module for module, names in by_module.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(name)
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)
