"""Extension points found by package discovery: a registry of implementations by name, filled by the modules of
one package as they are imported, so adding an implementation is adding one module (no list to keep by hand).

    OPENERS = Registry[Opener]("camera kind", __name__)   # in the package's __init__.py
    @OPENERS.add("stream")                                 # in one of its modules
    def _stream(...): ...
    OPENERS.load()                                         # every module imported, the registry returned
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, package: str) -> None:
        self.what, self.package = what, package
        self.found: dict[str, T] = {}

    def add(self, *names: str) -> Callable[[T], T]:
        """Register the decorated object under these names; a name registered twice is an error."""
        def register(obj: T) -> T:
            for name in names:
                if name in self.found:
                    raise ValueError(f"two implementations of {self.what} {name}")
                self.found[name] = obj
            return obj
        return register

    def load(self) -> dict[str, T]:
        """Every module of the package imported (each registers what it has), and the registry."""
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
        return self.found
