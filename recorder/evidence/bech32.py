"""Bech32 (BIP 173), as age uses it for 'age1...' recipients and 'AGE-SECRET-KEY-1...'
identities. Unlike BIP 173, age sets no 90-character limit."""

from __future__ import annotations

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """A string is not valid bech32; the message says why (never echoes the string)."""


def _polymod(values) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data, from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise Bech32Error("non-zero padding bits")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Lower-case bech32 of ``data`` under the human-readable part ``hrp``."""
    words = _convert_bits(data, 8, 5, pad=True)
    values = _hrp_expand(hrp) + words
    polymod = _polymod(values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[w] for w in words + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """(hrp, data) of a bech32 string, all lower or all upper case."""
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise Bech32Error("separator '1' missing or misplaced")
    hrp, rest = text[:pos], text[pos + 1:]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise Bech32Error("invalid character in the prefix")
    try:
        words = [_VALUES[c] for c in rest]
    except KeyError:
        raise Bech32Error("invalid character") from None
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise Bech32Error("bad checksum")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))
