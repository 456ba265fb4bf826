"""Structure-aware mutants of valid age files, for the differential test against the age
CLI and for `pieton bench fuzz`.

The builder knows each file's key, so a mutated header can be given a correct MAC: the
mutants then reach the stanza rules and the STREAM rules, not only "header MAC mismatch".
"""

from __future__ import annotations

import base64
import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from recorder.evidence.age import CHUNK_SIZE
from recorder.evidence.age_format import ARMOR_BEGIN, ARMOR_END, b64encode, header_mac, hkdf
from recorder.evidence.age_keys import X25519_LABEL, ZERO_NONCE, _raw, _scrypt_key

SIZES = [0, 1, 47, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 7]
PRINTABLE = "".join(chr(c) for c in range(33, 127))


def plaintext(size: int, rng: random.Random) -> bytes:
    return rng.randbytes(min(size, 64)) * (size // 64) + rng.randbytes(size % 64)


def x25519_stanza(recipient: bytes, file_key: bytes, rng: random.Random) -> list:
    ephemeral = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    share = _raw(ephemeral.public_key())
    wrap_key = hkdf(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient)),
                    share + recipient, X25519_LABEL)
    return ["X25519", [b64encode(share)], ChaCha20Poly1305(wrap_key).encrypt(ZERO_NONCE, file_key, None)]


def scrypt_stanza(passphrase: bytes, file_key: bytes, log_n: int, rng: random.Random) -> list:
    salt = rng.randbytes(16)
    key = _scrypt_key(passphrase, salt, log_n)
    return ["scrypt", [b64encode(salt), str(log_n)], ChaCha20Poly1305(key).encrypt(ZERO_NONCE, file_key, None)]


def _word(rng: random.Random, longest: int = 12) -> str:
    return "".join(rng.choice(PRINTABLE) for _ in range(rng.randint(1, longest)))


def _stanza_text(kind: str, args: list[str], body: bytes, rng: random.Random) -> bytes:
    """A stanza as age writes it, or (sometimes) with its lines wrapped wrongly."""
    text = b64encode(body)
    width = 64 if rng.random() < 0.85 else rng.choice([0, 4, 60, 63, 65, 68])
    if width == 0:
        lines = [text]
    else:
        lines = [text[i:i + width] for i in range(0, len(text), width)]
        if len(text) % width == 0 and rng.random() < 0.9:
            lines.append("")
    if not lines:
        lines = [""]
    head = " ".join(["->", kind, *args])
    return (head + "\n" + "".join(line + "\n" for line in lines)).encode("utf-8")


def _mutate_stanzas(stanzas: list, rng: random.Random, identity_pub: bytes, file_key: bytes) -> None:
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        op = rng.randrange(11)
        i = rng.randrange(len(stanzas)) if stanzas else 0
        if op == 0:                       # an unknown stanza, as a plugin would write
            stanzas.insert(rng.randint(0, len(stanzas)),
                           [_word(rng), [_word(rng, 40) for _ in range(rng.randint(0, 3))],
                            rng.randbytes(rng.choice([0, 1, 32, 47, 48, 49, 96, 100]))])
        elif op == 1 and stanzas:         # drop one
            del stanzas[i]
        elif op == 2 and stanzas:         # duplicate one
            stanzas.insert(i, [stanzas[i][0], list(stanzas[i][1]), stanzas[i][2]])
        elif op == 3 and len(stanzas) > 1:
            j = rng.randrange(len(stanzas))
            stanzas[i], stanzas[j] = stanzas[j], stanzas[i]
        elif op == 4 and stanzas:         # body of another length
            body = stanzas[i][2]
            stanzas[i][2] = body[:rng.randrange(len(body) + 1)] + rng.randbytes(rng.choice([0, 0, 1, 16]))
        elif op == 5 and stanzas:         # arguments added, removed or altered
            args = stanzas[i][1]
            choice = rng.randrange(3)
            if choice == 0:
                args.append(_word(rng))
            elif choice == 1 and args:
                args.pop(rng.randrange(len(args)))
            elif args:
                k = rng.randrange(len(args))
                args[k] = rng.choice([args[k][:-1], args[k] + "A", args[k].lower(), args[k] + "=",
                                      args[k][:-1] + rng.choice(PRINTABLE), _word(rng)])
        elif op == 6 and stanzas:         # type spelled otherwise
            stanzas[i][0] = rng.choice([stanzas[i][0].lower(), stanzas[i][0].upper(), stanzas[i][0] + "x",
                                        "X25519", "scrypt", _word(rng)])
        elif op == 7:                     # a second valid stanza to our key
            stanzas.insert(rng.randint(0, len(stanzas)), x25519_stanza(identity_pub, file_key, rng))
        elif op == 8:                     # a stanza for someone else
            other = _raw(X25519PrivateKey.from_private_bytes(rng.randbytes(32)).public_key())
            stanzas.insert(rng.randint(0, len(stanzas)), x25519_stanza(other, rng.randbytes(16), rng))
        elif op == 9 and stanzas:         # a share of the wrong length or a low-order point
            stanzas[i][1] = [rng.choice([b64encode(rng.randbytes(31)), b64encode(rng.randbytes(33)),
                                         b64encode(bytes(32)), b64encode(b"\x01" + bytes(31))])]
        elif op == 10:                    # an scrypt stanza beside the others
            stanzas.insert(rng.randint(0, len(stanzas)),
                           ["scrypt", [b64encode(rng.randbytes(16)), rng.choice(["1", "10", "23", "01"])],
                            rng.randbytes(32)])


def _mutate_scrypt(stanza: list, rng: random.Random) -> None:
    salt, log_n = stanza[1]
    op = rng.randrange(10)     # 8, 9: left valid
    if op == 0:
        stanza[1][1] = rng.choice(["0", "01", "-1", "+2", "1.0", "23", "99", "100", "2 ", log_n + "0",
                                   "9" * 30, "٣"])
    elif op == 1:
        stanza[1][0] = b64encode(rng.randbytes(rng.choice([0, 15, 17, 32])))
    elif op == 2:
        stanza[1][0] = salt + "A"
    elif op == 3:
        stanza[2] = stanza[2][:rng.randrange(len(stanza[2]))]
    elif op == 4:
        stanza[2] += b"\0"
    elif op == 5:
        stanza[1].append(rng.choice(["x", log_n]))
    elif op == 6:
        stanza[1].pop()
    elif op == 7:
        stanza[0] = rng.choice(["Scrypt", "SCRYPT", "scrypt2", "x"])


def _chunks(data: bytes, stream_key: bytes, rng: random.Random) -> bytes:
    aead = ChaCha20Poly1305(stream_key)
    pieces = [data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]
    plan = [[p, n, n == len(pieces) - 1] for n, p in enumerate(pieces)]
    op = rng.randrange(12) if rng.random() < 0.5 else -1
    if op == 0:
        plan[-1][2] = False                         # no final flag
    elif op == 1:
        plan.append([b"", len(plan), True])         # an empty final chunk after data
        plan[-2][2] = False
    elif op == 2:
        plan.append([b"more", len(plan), True])     # a chunk after the final one
    elif op == 3 and len(plan) > 1:
        plan[0][2] = True                           # final flag too early
    elif op == 4 and len(plan) > 1:
        plan[0], plan[1] = plan[1], plan[0]         # chunks swapped
    elif op == 5:
        plan[-1][1] += 1                            # counter skipped
    elif op == 6 and len(plan) > 1:
        del plan[0]
    elif op == 7:
        plan.insert(0, [plan[0][0], 0, plan[0][2]])  # a chunk repeated
    elif op == 8 and plan[-1][0]:
        plan[-1][0] = plan[-1][0] + bytes(CHUNK_SIZE - len(plan[-1][0]))   # a full final chunk
    elif op == 9 and len(plan) > 1 and len(plan[-1][0]) < CHUNK_SIZE:
        plan[-2][2] = True                          # final chunk full, then one more
    out = bytearray()
    for piece, counter, last in plan:
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        out += aead.encrypt(nonce, piece, None)
    if op == 10:
        out += rng.randbytes(rng.choice([1, 15, 16, 17]))
    elif op == 11:
        del out[rng.randrange(len(out) + 1):]
    return bytes(out)


def _mutate_bytes(blob: bytes, rng: random.Random, rounds: int) -> bytes:
    data = bytearray(blob)
    for _ in range(rounds):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and pos < len(data):
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = rng.choice([b"\n", b"\r", b" ", b"=", b"-", b"A", b"\x00", rng.randbytes(3)])
        elif op == 2:
            del data[pos:pos + rng.randint(1, 4)]
        elif op == 3:
            del data[pos:]
        elif op == 4 and pos < len(data):
            data[pos] = rng.randrange(256)
        elif op == 5 and pos < len(data):          # a line's end changed
            nl = data.find(b"\n", pos)
            if nl >= 0:
                data[nl:nl + 1] = rng.choice([b"\r\n", b"", b"\n\n", b" \n"])
    return bytes(data)


def build(rng: random.Random, *, identity_pub: bytes | None = None, passphrase: bytes | None = None,
          log_n: int = 2, mutate: bool = True) -> bytes:
    """A binary age file to ``identity_pub`` (or with ``passphrase``), mutated at every level
    unless ``mutate`` is false (then it is valid)."""
    file_key = rng.randbytes(16)
    if passphrase is not None:
        stanzas = [scrypt_stanza(passphrase, file_key, log_n, rng)]
    else:
        stanzas = [x25519_stanza(identity_pub, file_key, rng)]
    if mutate and passphrase is not None and rng.random() < 0.6:
        _mutate_scrypt(stanzas[0], rng)
    elif mutate:
        _mutate_stanzas(stanzas, rng, identity_pub or rng.randbytes(32), file_key)
    for kind, args, _ in stanzas:     # never ask either side for a costly scrypt (2**22 is 4 GiB)
        if kind == "scrypt" and len(args) > 1 and args[1].isdigit() and 10 < int(args[1]) <= 22:
            args[1] = "23"
    head = b"age-encryption.org/v1\n" + b"".join(_stanza_text(k, a, b, rng) for k, a, b in stanzas)
    if mutate and rng.random() < 0.15:
        head = _mutate_bytes(head, rng, 1)
    mac_input = head + b"---"
    mac = header_mac(file_key, mac_input)
    if mutate and rng.random() < 0.1:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    footer = b" " + b64encode(mac).encode() + b"\n"
    if mutate and rng.random() < 0.05:
        footer = rng.choice([b"  " + footer[1:], footer[:-1] + b"\r\n", footer[:-2] + b"B\n", b"\n"])
    nonce = rng.randbytes(16)
    data = plaintext(rng.choice(SIZES), rng)
    body = _chunks(data, hkdf(file_key, nonce, b"payload"), rng) if mutate else _chunks_plain(data, file_key, nonce)
    blob = mac_input + footer + nonce + body
    if mutate and rng.random() < 0.3:
        blob = _mutate_bytes(blob, rng, rng.randint(1, 3))
    return blob


def _chunks_plain(data: bytes, file_key: bytes, nonce: bytes) -> bytes:
    aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
    pieces = [data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]
    return b"".join(aead.encrypt(n.to_bytes(11, "big") + (b"\x01" if n == len(pieces) - 1 else b"\x00"),
                                 p, None) for n, p in enumerate(pieces))


def armor_mutant(binary: bytes, rng: random.Random, mutate: bool = True) -> bytes:
    """``binary`` in age's ASCII armor, as age writes it or with its lines, padding,
    line ends or surroundings altered."""
    text = base64.b64encode(binary)
    if not mutate:
        width, op = 64, -1
    else:
        width = 64 if rng.random() < 0.85 else rng.choice([4, 60, 63, 65, 76])
        op = rng.randrange(14) if rng.random() < 0.6 else -1
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    if op == 0:
        lines.append(b"")                                   # an empty short line
    elif op == 1 and lines:
        lines[-1] = lines[-1].rstrip(b"=")                  # padding dropped
    elif op == 2 and lines and lines[-1].endswith(b"="):
        k = len(lines[-1].rstrip(b"=")) - 1
        lines[-1] = lines[-1][:k] + bytes([rng.choice(b"BCDEFGHIJKLMNOP")]) + lines[-1][k + 1:]   # stray bits
    elif op == 3 and lines:
        k = rng.randrange(len(lines))
        cut = rng.randrange(len(lines[k]) + 1)
        lines[k] = lines[k][:cut] + b"\r" + lines[k][cut:]  # a CR inside a line
    elif op == 4 and lines:
        lines.insert(rng.randrange(len(lines) + 1), b"")    # a blank line
    elif op == 5 and lines:
        del lines[rng.randrange(len(lines))]
    end = b"\n"
    if op == 6:
        end = b"\r\n"
    out = ARMOR_BEGIN + end + b"".join(line + end for line in lines) + ARMOR_END + end
    if op == 7:
        out = rng.choice([b" ", b"\n", b"\t\n", b"\r\n"]) + out          # before BEGIN
    elif op == 8:
        out += rng.choice([b"\n", b"  \n", b"\xc2\xa0", b"\x1c", b"\x0b", b"\n" * 1023, b"\n" * 1024,
                           b"x", b"\n-----BEGIN AGE ENCRYPTED FILE-----\n"])   # after END
    elif op == 9:
        out = out[:-1]                                      # no newline after END
    elif op == 10:
        out = out.replace(ARMOR_END, ARMOR_END.lower())
    elif op == 11:
        out = out.replace(ARMOR_BEGIN + end, ARMOR_BEGIN + b" " + end)
    elif op == 12:
        out = out.replace(ARMOR_END + end, b"")             # no END line
    elif op == 13 and lines:
        out = out.replace(b"\n", b"\r\n", 1)                # mixed line ends
    if mutate and rng.random() < 0.2:
        out = _mutate_bytes(out, rng, 1)
    return out
