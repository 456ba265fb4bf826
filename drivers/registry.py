"""Backends are chosen by name, like pyserial's URL schemes: an unknown name is an error
that lists the valid ones. Real backends are imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from drivers.errors import UnknownBackend


def pick_backend(kind: str, name: str, backends: dict[str, str]) -> Callable[..., Any]:
    """Return the class registered for ``name``; ``backends`` maps names to "module:Class"."""
    try:
        target = backends[name]
    except KeyError:
        valid = ", ".join(sorted(backends))
        raise UnknownBackend(f"unknown {kind} backend {name!r}; valid backends: {valid}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
