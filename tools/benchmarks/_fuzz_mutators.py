"""Mutators of `pieton bench fuzz`: byte havoc, JSON values, JSON lines, NMEA fields,
serial frames and TOML values. Each is ``mutate(seed: bytes, rng) -> bytes``, fast, and
keeps enough structure (checksums, CRCs, JSON syntax) that mutants reach past the first
check of a parser."""

from __future__ import annotations

import copy
import json
import random
import struct
import zlib
from functools import reduce
from operator import xor

# Values that break parsers: limits, wrong types, non-numbers, huge and deep things.
JSON_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**63, -2**63, 10**30, 1e308, -1e308, 0.5, -0.0,
               float("nan"), float("inf"), "", "x", "A" * 300, [], {}, [0], {"a": 1}, [[[]]],
               "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-09-21T10:00:00+14:00", "..", "../../etc",
               "/abs", "a\nb", "\u0000", "\ud7ff", "CAM-T-001", "0" * 64, "f" * 128, "age1" + "q" * 58]
TEXT_TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1" * 5000, b"[" * 3000, b"{\"a\":" * 2000, b"1e999",
               b"-0", b"\"\\ud800\"", b"\xff\xfe", b"\x00", b"\r\n", b"\n", b",", b"\"", b"\\", b"}", b"]",
               b"null", b"true", b"9" * 40, b"0.0000000000000000000001"]


def havoc(data: bytes, rng: random.Random, tokens=TEXT_TOKENS, rounds: int | None = None) -> bytes:
    """1 to 4 byte-level edits: bit flips, bytes set, tokens inserted, ranges cut or
    repeated, the input truncated."""
    buf = bytearray(data)
    for _ in range(rounds or rng.choice((1, 1, 2, 3, 4))):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf and pos < len(buf):
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and buf and pos < len(buf):
            buf[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x20, 0x0A, rng.randrange(256)))
        elif op == 2:
            buf[pos:pos] = rng.choice(tokens)
        elif op == 3:
            del buf[pos:pos + rng.choice((1, 2, 4, 16, 64))]
        elif op == 4 and buf:
            end = min(len(buf), pos + rng.choice((1, 4, 16, 100)))
            buf[pos:pos] = buf[pos:end] * rng.choice((1, 2, 10))
        elif op == 5:
            del buf[pos:]
        elif op == 6:
            buf[pos:pos] = rng.randbytes(rng.choice((1, 2, 8)))
        elif op == 7 and buf and pos < len(buf):
            nl = buf.find(b"\n", pos)
            if nl >= 0:
                buf[nl:nl + 1] = rng.choice((b"", b"\r\n", b"\n\n", b" \n"))
    return bytes(buf)


def _containers(doc) -> list[tuple[object, object]]:
    """Every (container, key) of a JSON document, walked without recursion."""
    out, stack = [], [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key))
            if isinstance(value, dict | list):
                stack.append(value)
    return out


def mutate_value(doc, rng: random.Random):
    spots = _containers(doc)
    if not spots or rng.random() < 0.05:
        return rng.choice([copy.deepcopy(rng.choice(JSON_VALUES)), [doc], {"x": doc}])
    node, key = rng.choice(spots)
    op = rng.randrange(6)
    if op <= 1:
        node[key] = copy.deepcopy(rng.choice(JSON_VALUES))     # a copy: the table stays as it is
    elif op == 2 and isinstance(node, dict):
        del node[key]
    elif op == 2:
        node.append(copy.deepcopy(node[key]))
    elif op == 3:                              # a value moved elsewhere in the document
        other_node, other_key = rng.choice(spots)
        node[key] = copy.deepcopy(other_node[other_key])     # a copy: never a cycle
    elif op == 4 and isinstance(node, dict):
        node[rng.choice(("extra", "x", key + "_", ""))] = copy.deepcopy(rng.choice(JSON_VALUES))
    elif op == 4:
        node.insert(0, copy.deepcopy(rng.choice(JSON_VALUES)))
    elif isinstance(node[key], str):
        node[key] = rng.choice((node[key] + "x", node[key][:-1], node[key].upper(), node[key] * 3, " " + node[key]))
    elif isinstance(node[key], int | float) and not isinstance(node[key], bool):
        node[key] = rng.choice((node[key] + 1, node[key] - 1, -node[key], node[key] * 1000, str(node[key])))
    return doc


def mutate_json(seed: bytes, rng: random.Random, *, resign=None) -> bytes:
    """A JSON document with 1-3 values changed (``resign(doc)`` may sign it again, so the
    mutant passes the signature and reaches the checks after it), sometimes with havoc."""
    try:
        doc = json.loads(seed)
        for _ in range(rng.choice((1, 1, 2, 3))):
            doc = mutate_value(doc, rng)
        if resign is not None and isinstance(doc, dict) and rng.random() < 0.7:
            doc = resign(doc)
        data = json.dumps(doc, separators=(",", ":")).encode()
    except (ValueError, RecursionError):     # not JSON (any more), or nested too deep for Python
        return havoc(seed, rng)
    if rng.random() < 0.2:
        data = havoc(data, rng)
    return data


def mutate_jsonl(seed: bytes, rng: random.Random) -> bytes:
    """JSON lines: one line's values changed, lines dropped, repeated, swapped, garbage or a
    torn line added."""
    lines = seed.split(b"\n")
    tail = lines.pop() if lines and lines[-1] == b"" else None
    op = rng.randrange(7)
    i = rng.randrange(len(lines)) if lines else 0
    if op <= 2 and lines:
        lines[i] = mutate_json(lines[i], rng)
    elif op == 3 and lines:
        del lines[i]
    elif op == 4 and lines:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == 5 and len(lines) > 1:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(rng.randint(0, len(lines)), rng.choice(
            (b"garbage", b"{}", b"[]", b"{\"seq\":1e999}", b"{\"seq\":" + b"9" * 60 + b"}", b"[" * 3000, b"\xff",
             b"{\"a\":NaN}", lines[i][: len(lines[i]) // 2] if lines else b"{")))
    out = b"\n".join(lines) + (b"\n" if tail is not None else b"")
    if rng.random() < 0.15:
        out = havoc(out, rng)
    return out


# -- NMEA ----------------------------------------------------------------------------------

NMEA_FIELDS = ["", "0", "1", "2", "3", "9", "-1", "00", "99", "999999", "235959", "240000", "235960.99",
               "000000.000", "010180", "311299", "290223", "310631", "9000.000", "9060.0", "18000.0", "-4530.1",
               "4530.1234", "00430.5678", "N", "S", "E", "W", "X", "A", "V", "D", "M", "K", "T", "nan", "inf",
               "1e308", "-0", "0.", ".5", "1" * 40, "A" * 80, "*", ",", "$", "\\", "\x00", "é"]


def nmea_checksum(body: bytes) -> bytes:
    return b"%02X" % reduce(xor, body, 0)


def mutate_nmea(seed: bytes, rng: random.Random) -> bytes:
    """Sentences with fields changed and their checksum made right again (mostly), lines
    repeated or reordered (midnight and day changes), sometimes byte havoc."""
    lines = [line for line in seed.split(b"\n") if line.strip()]
    if not lines:
        return havoc(seed, rng)
    for _ in range(rng.choice((1, 1, 2, 3))):
        i = rng.randrange(len(lines))
        line = lines[i].rstrip(b"\r")
        body, star, old = line.partition(b"*")
        if not body.startswith((b"$", b"!")):
            lines[i] = havoc(line, rng)
            continue
        fields = body[1:].split(b",")
        op = rng.randrange(6)
        k = rng.randrange(len(fields))
        if op <= 2:
            fields[k] = rng.choice(NMEA_FIELDS).encode()
        elif op == 3:
            del fields[k]
        elif op == 4:
            fields.insert(k, rng.choice(NMEA_FIELDS).encode())
        else:
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            continue
        body = body[:1] + b",".join(fields)
        tail = b"*" + nmea_checksum(body[1:]) if (star and rng.random() < 0.9) else (b"*" + old if star else b"")
        lines[i] = body + tail
    if rng.random() < 0.1 and len(lines) > 1:
        rng.shuffle(lines)
    out = b"\r\n".join(lines) + b"\r\n"
    return havoc(out, rng) if rng.random() < 0.1 else out


# -- serial frames ---------------------------------------------------------------------------

SYNC = b"\xa5\x5a"


def frame(ftype: int, seq: int, payload: bytes) -> bytes:
    head = struct.pack(">BHH", ftype, seq & 0xFFFF, len(payload) & 0xFFFF)
    return SYNC + head + payload + struct.pack(">I", zlib.crc32(head + payload))


def split_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    out, pos = [], 0
    while (pos := data.find(SYNC, pos)) >= 0 and pos + 7 <= len(data):
        ftype, seq, length = struct.unpack_from(">BHH", data, pos + 2)
        out.append((ftype, seq, data[pos + 7:pos + 7 + length]))
        pos += 7 + length + 4
    return out


def mutate_frames(seed: bytes, rng: random.Random, types=range(1, 0x14)) -> bytes:
    """A stream of frames with one changed (type, sequence, payload as JSON or bytes) and
    its CRC made right again (mostly); frames dropped, repeated, garbage between them."""
    frames = [list(f) for f in split_frames(seed)] or [[1, 1, b""]]
    for _ in range(rng.choice((1, 1, 2))):
        i = rng.randrange(len(frames))
        op = rng.randrange(8)
        if op == 0:
            frames[i][0] = rng.choice(list(types) + [0, 0xFF])
        elif op == 1:
            frames[i][1] = rng.choice((0, 1, frames[i][1] + 1, frames[i][1] - 1, 0xFFFF))
        elif op <= 3:
            payload = frames[i][2]
            if payload[:1] in (b"{", b"["):
                frames[i][2] = mutate_json(payload, rng)
            elif len(payload) >= 4 and rng.random() < 0.5:      # a DATA offset
                frames[i][2] = struct.pack(">I", rng.choice((0, 1, 1023, 1024, 2**31, 2**32 - 1))) + payload[4:]
            else:
                frames[i][2] = havoc(payload, rng)
        elif op == 4:
            del frames[i]
            frames = frames or [[1, 1, b""]]
        elif op == 5:
            frames.insert(i, list(frames[i]))
        elif op == 6:
            frames[i][2] = frames[i][2][: 4096 + 4]
            frames[i][2] += rng.randbytes(rng.choice((0, 1, 100)))
        else:
            j = rng.randrange(len(frames))
            frames[i], frames[j] = frames[j], frames[i]
    parts = []
    for ftype, seq, payload in frames:
        raw = frame(ftype, seq, payload[:0xFFFF])
        if rng.random() < 0.05:
            raw = raw[:-4] + rng.randbytes(4)               # a bad CRC
        if rng.random() < 0.05:
            raw = rng.randbytes(rng.choice((1, 3, 20))) + raw
        parts.append(raw)
    out = b"".join(parts)
    if rng.random() < 0.05:
        out = out[:rng.randrange(len(out) + 1)]
    return out


# -- TOML ------------------------------------------------------------------------------------

TOML_VALUES = [b"nan", b"inf", b"-inf", b"0", b"-1", b"1e308", b"9" * 400, b"\"\"", b"\"x\"", b"[]", b"{}",
               b"true", b"[" * 300 + b"]" * 300, b"{a={a={a={a={}}}}}", b"1979-05-27T07:32:00Z", b"0x7fffffff",
               b"\"" + b"A" * 300 + b"\"", b"\"../../etc/passwd\"", b"\"/dev/zero\"", b"3.5", b"[1, \"a\"]"]


def mutate_toml(seed: bytes, rng: random.Random) -> bytes:
    """A configuration with values replaced (`key = value` lines), keys or sections added,
    duplicated or dropped, sometimes byte havoc."""
    lines = seed.split(b"\n")
    for _ in range(rng.choice((1, 1, 2, 3))):
        assigns = [i for i, line in enumerate(lines) if b"=" in line and not line.lstrip().startswith(b"#")]
        op = rng.randrange(5)
        if assigns and op <= 2:
            i = rng.choice(assigns)
            key = lines[i].split(b"=", 1)[0]
            lines[i] = key + b"= " + rng.choice(TOML_VALUES)
        elif assigns and op == 3:
            i = rng.choice(assigns)
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        else:
            lines.insert(rng.randrange(len(lines) + 1),
                         rng.choice((b"[extra]", b"x = 1", b"[device]", b"[[a]]", b"a.b.c = 1", b"\"\" = 1")))
    out = b"\n".join(lines)
    return havoc(out, rng, tokens=TOML_VALUES + TEXT_TOKENS) if rng.random() < 0.2 else out
