"""What a fuzz target of `pieton bench fuzz` is: the parser's entry, its valid seeds and
its mutator (a ``Harness``, built by the target's setup in a scratch folder), and the code
whose line coverage is measured (a ``Target``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import PietonError


@dataclass
class Harness:
    entry: Callable[[bytes], object]
    seeds: list[bytes]
    mutate: Callable[[bytes, random.Random], bytes]
    errors: tuple[type[BaseException], ...] = (PietonError,)
    close: Callable[[], None] | None = None


@dataclass
class Target:
    name: str
    module: str
    functions: tuple[str, ...]           # empty: the whole module counts
    setup: Callable[[Path, random.Random], Harness]
    weight: float = 1.0                  # share of the total budget
