"""TOML text from Python values: what the technician's `config init`, the tests and the
soak write as configurations and scenarios (tomllib reads TOML but does not write it).

Only the kinds a configuration holds: strings, booleans, integers, floats (nan and inf
too, so that fuzzing can write them), dates, lists and tables. A table in a list or in a
key's value is written inline; ``toml_document`` writes tables as ``[section]`` headers
and lists of tables as ``[[name]]`` blocks.
"""

from __future__ import annotations

import math
import re
from datetime import date, time

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML basic strings may hold any character but these, which must be escaped.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_MUST_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


def toml_string(text: str) -> str:
    return '"' + _MUST_ESCAPE.sub(lambda m: _ESCAPES.get(m[0]) or f"\\u{ord(m[0]):04x}", text) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value) -> str:
    """One value, as it stands on the right of ``key = ``."""
    if isinstance(value, bool):     # before int: a bool is an int to Python
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, date | time):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__} {value!r}")


def toml_document(tables: dict[str, dict | list[dict]]) -> str:
    """A document of ``[name]`` sections, each ``key = value`` a line, and ``[[name]]``
    blocks for a list of tables (a scenario's events); a key whose value is None is left
    out (an optional setting not given)."""
    lines = []
    for name, value in tables.items():
        many = isinstance(value, list)
        header = f"[[{toml_key(name)}]]" if many else f"[{toml_key(name)}]"
        for table in value if many else [value]:
            lines.append(header)
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if v is not None]
            lines.append("")
    return "\n".join(lines)
