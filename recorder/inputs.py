"""Reading data that comes from outside: a size limit for every kind of file, and strict JSON.

Everything the camera, the technician's tools or the vault read from a file, a serial
line or a spool may be hostile or broken: an endless file, NaN where a number belongs,
JSON nested ten thousand deep, a number with five thousand digits. These helpers turn
each of those into an ``InputError`` that names what was read, where, and what is wrong,
never a MemoryError, a RecursionError or a silently accepted NaN.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from drivers.errors import PietonError

KiB = 1024
MiB = 1024 * KiB

# How large each kind of file read from outside may be. Generous for real use, far below
# what would exhaust a camera's or a desk's memory.
LIMITS = {
    "identity": 64 * KiB,        # an age identity, passphrase-protected or not
    "key": 64 * KiB,             # a signing key or a public key file
    "config": 1 * MiB,           # a configuration TOML
    "geojson": 16 * MiB,         # a commune boundary
    "notice": 32 * MiB,          # the spoken notice audio
    "bundle": 64 * MiB,          # a signed configuration bundle (TOML + boundaries + notice)
    "assignment": 64 * KiB,      # a shift assignment
    "receipt": 1 * MiB,          # a vault receipt in a camera's inbox
    "manifest": 64 * MiB,        # a recording's manifest.jsonl
    "journal": 256 * MiB,        # a device or vault journal
    "report": 16 * MiB,          # an extraction report
    "settings": 1 * MiB,         # vault.json and the like
    "devices": 4 * MiB,          # a list of devices
    "line": 1 * MiB,             # one line of a JSON-lines log
}

MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 40     # no field of ours needs more; 5000-digit numbers are an attack


class InputError(PietonError, ValueError):
    """Data read from outside is too large, malformed or holds values we refuse; the message
    names what was read, where, and what is wrong."""


def open_without_waiting(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading without waiting for a writer: a named pipe nobody writes
    would block open() for ever. Reads then block as usual (a pipe without a writer reads as
    empty; a serial device as its data comes)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike, kind: str, *, limit: int | None = None,
                 what: str | None = None) -> bytes:
    """The whole content of ``path``, refused past the size limit of its ``kind``.

    Reads at most limit + 1 bytes whatever the file claims, so an endless file
    (/dev/zero, a FIFO) ends in a clear error, not in MemoryError."""
    limit = LIMITS[kind] if limit is None else limit
    name = what or f"{kind} {os.fspath(path)}"
    try:
        with open_without_waiting(path) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise InputError(f"{name}: a named pipe or socket, not a file")
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not a file") from None
    except FileNotFoundError:
        raise InputError(f"{name}: not found") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise InputError(f"{name}: larger than the {_size(limit)} allowed for a {kind}")
    return data


def read_text_bounded(path: str | os.PathLike, kind: str, *, limit: int | None = None,
                      what: str | None = None) -> str:
    """``read_bounded`` decoded as UTF-8, with a clear error for other bytes."""
    name = what or f"{kind} {os.fspath(path)}"
    data = read_bounded(path, kind, limit=limit, what=name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number with {len(text)} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS + 10:
        raise ValueError(f"a number written with {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _depth(text: str, limit: int) -> int:
    """The nesting depth of a JSON text, found without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def loads_strict(text: str | bytes, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from outside: no NaN or Infinity, no number of absurd length, no nesting
    deeper than ``max_depth``, no duplicate keys. Raises InputError naming ``what``."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{what}: not UTF-8 (byte {exc.start})") from None
    # Counting brackets is fast; the scan that skips strings runs only when it could matter.
    if text.count("[") + text.count("{") > max_depth and _depth(text, max_depth) > max_depth:
        raise InputError(f"{what}: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int,
                          parse_float=_parse_float, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{what}: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result


def load_json_file(path: str | os.PathLike, kind: str, *, what: str | None = None) -> Any:
    """A JSON file from outside: bounded by its kind's size limit and parsed strictly."""
    name = what or f"{kind} {os.fspath(path)}"
    return loads_strict(read_bounded(path, kind, what=name), name)


def expect_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an InputError naming ``what``."""
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a JSON object, found {type(value).__name__}")
    return value


def explain_os_error(exc: OSError) -> str:
    """``file: reason`` for an error the system gave on a file or folder given by a person."""
    where = f"{exc.filename}: " if exc.filename else ""
    why = exc.strerror or str(exc)
    if isinstance(exc, FileExistsError) and not os.path.isdir(exc.filename or ""):
        why = "a file is there where a folder is needed"  # mkdir(parents=True) under a file
    return where + why


def _size(limit: int) -> str:
    if limit >= MiB:
        return f"{limit // MiB} MiB"
    return f"{limit // KiB} KiB"


def check_name_length(path: Path, what: str) -> None:
    """Refuse a path whose any part is over the 255 bytes a Linux file name allows."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > 255:
            raise InputError(f"{what}: a name in the path is longer than 255 bytes")
