"""Choices by name (as threestudio's `register` / `find`): a registry maps a name to a class and its
config class, so a new body model, face engine or fit method is one module plus one registration
instead of another branch in an if/elif chain."""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from avatarclip_core.errors import UserInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    cls: Any  # a class, or "module:Class" until first found (registries the web process lists without torch)
    config: Any = None  # its config class, or "module:Class"

    def resolved(self) -> "Entry":
        load = lambda target: getattr(importlib.import_module(target.partition(":")[0]), target.partition(":")[2]) \
            if isinstance(target, str) else target
        return Entry(self.name, load(self.cls), load(self.config))


class Registry:
    def __init__(self, what: str, config_hint: str = "") -> None:
        self.what = what  # "body model": names the choice in errors
        self.config_hint = config_hint  # the config key that chooses, e.g. "body.model"
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config: type | None = None) -> Callable[[T], T]:
        """Class decorator: `@BODY_MODELS.register("anny", AnnyConfig)`."""
        def add(cls: T) -> T:
            if name in self._entries and self._entries[name].cls is not cls:
                raise ValueError(f"{self.what} {name!r} is already registered ({self._entries[name].cls.__name__})")
            self._entries[name] = Entry(name, cls, config)
            return cls

        return add

    def register_lazy(self, name: str, target: str, config: str | None = None) -> None:
        """`target` ("module:Class") is imported when first found, so listing names stays cheap."""
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = Entry(name, target, config)

    def find(self, name: str) -> Entry:
        """The entry for `name`; an unknown name is the user's error, naming what is registered."""
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" ({self.config_hint})" if self.config_hint else ""
            raise UserInputError(f"unknown {self.what} {name!r}{where}: choose one of {', '.join(self.names())}{hint}")
        entry = self._entries[name]
        if isinstance(entry.cls, str) or isinstance(entry.config, str):
            entry = self._entries[name] = entry.resolved()
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)
