"""Package names that load on first use (PEP 562), so importing one light module of a
package does not import the heavy ones beside it (predict.py on an ONNX export never
imports torch)."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``name`` from the module ``where[name]`` names."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(where[name]), name)

    return __getattr__
