"""Lazy package exports: `from core.music import Recommender` imports only what it names.

Each package's `__init__` lists its public API in `__all__` and maps each name to the module
that defines it, so a reader sees what to call without opening every file, and importing a
package never pulls in TensorFlow, plotly or spotipy until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, resolving each name in `where` (name ->
    submodule, relative to the package) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
