"""Packages whose names load their modules on first use (PEP 562 `__getattr__`): importing one light
submodule (a plain config, a registry) then loads none of the heavy ones (torch, cv2, mediapipe).
`stand_ins` does the same for a library's own imports of a heavy module it seldom uses."""
from __future__ import annotations

import contextlib
import importlib
import sys
import types
from typing import Any, Callable, Iterator


def lazy_exports(by_module: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """(`__getattr__`, `__all__`) of a package whose names live in other modules:
    `by_module` maps a module's full name to the names it defines, separated by spaces."""
    exports = {name: module for module, names in by_module.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(name)
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)


class DeferredModule(types.ModuleType):
    """A stand-in for a module that a library imports but seldom uses: the real module is imported on
    the first attribute asked of the stand-in (once `stand_ins` has given its name back)."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:  # still standing in: nothing real to defer to yet
            raise AttributeError(f"{self.__name__}.{name} (a stand-in while another library is imported)")
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def stand_ins(modules: dict[str, types.ModuleType]) -> Iterator[None]:
    """While the block runs (it imports a library), `import NAME` of each name gives its stand-in, so
    that the library's import does not pay for a heavy module it only needs in a few functions; after
    the block the names are free again: a later import is the real module, and a DeferredModule that
    the library kept imports it on its first use. Names already imported are left as they are (the
    real module is there already). A stand-in of a submodule is also its parent stand-in's attribute."""
    placed = {name: module for name, module in modules.items() if name not in sys.modules}
    for name, module in placed.items():
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in placed:
            setattr(placed[parent], child, module)
    try:
        yield
    finally:
        for name, module in placed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
            parent, _, child = name.rpartition(".")
            owner = sys.modules.get(parent)
            if owner is not None and owner.__dict__.get(child) is module:
                delattr(owner, child)
