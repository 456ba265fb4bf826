"""Our age reader against the real `age -d` (Debian's Go CLI), on mutants of valid files:
binary and armored, to an X25519 key and with a passphrase (scrypt). A file is accepted as
whole by us exactly when age accepts it, and we release the same bytes.

The mutants (tools/benchmarks/_age_mutants.py) know each file's key, so a mutated header
still carries a correct MAC and reaches the stanza and STREAM rules. About 260 age runs.
"""

import random
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.errors import AgeError
from recorder.evidence.age import decrypt, encrypt_bytes, generate_identity
from recorder.evidence.age_format import MAX_LINE, MAX_STANZAS, armor
from recorder.evidence.age_keys import ScryptIdentity, parse_recipient
from tests.test_age_interop import run_on_tty
from tools.benchmarks._age_mutants import armor_mutant, build

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")]

IDENTITY, RECIPIENT = generate_identity()
PUBLIC = parse_recipient(RECIPIENT)
PASSPHRASE = "grain de sel"
PROFILE = settings(max_examples=100, deadline=None, derandomize=False,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("age") / "chief.txt"
    path.write_text(IDENTITY + "\n")
    return path


def ours(blob: bytes, identity) -> tuple[bool, bytes, bool]:
    """(accepted as whole, bytes released, raised)."""
    try:
        result = decrypt(blob, [identity])
    except AgeError:
        return False, b"", True
    return result.complete, result.plaintext, False


def theirs_x25519(blob: bytes, keyfile) -> tuple[bool, bytes]:
    run = subprocess.run(["age", "-d", "-i", str(keyfile)], input=blob, capture_output=True, timeout=30)
    return run.returncode == 0, run.stdout


def theirs_scrypt(blob: bytes, folder) -> tuple[bool, bytes]:
    """age reads a passphrase from the terminal only: give it a pseudo-terminal."""
    src, out = folder / "in.age", folder / "out"
    src.write_bytes(blob)
    out.unlink(missing_ok=True)
    code, _ = run_on_tty(["age", "-d", "-o", str(out), str(src)], [PASSPHRASE])
    return code == 0, out.read_bytes() if out.exists() else b""


def agree(blob: bytes, mine, their, *, exact_release: bool) -> None:
    accepted, released, _ = mine
    age_ok, age_out = their
    assert accepted == age_ok, f"we {'accept' if accepted else 'refuse'}, age does not: {blob[:300]!r}"
    if accepted:
        assert released == age_out
    elif exact_release:
        # binary files: what we release of a damaged file is exactly what age writes before it stops
        assert released == age_out, f"released {len(released)} bytes, age {len(age_out)}"
    else:
        assert age_out.startswith(released)


@PROFILE
@given(st.integers(0, 2**64))
def test_binary_x25519_agrees_with_age(keyfile, seed):
    blob = build(random.Random(seed), identity_pub=PUBLIC)
    agree(blob, ours(blob, IDENTITY), theirs_x25519(blob, keyfile), exact_release=True)


@PROFILE
@given(st.integers(0, 2**64))
def test_armored_x25519_agrees_with_age(keyfile, seed):
    rng = random.Random(seed)
    blob = armor_mutant(build(rng, identity_pub=PUBLIC, mutate=rng.random() < 0.3), rng)
    agree(blob, ours(blob, IDENTITY), theirs_x25519(blob, keyfile), exact_release=False)


@settings(PROFILE, max_examples=40)
@given(st.integers(0, 2**64))
def test_scrypt_agrees_with_age(tmp_path_factory, seed):
    rng = random.Random(seed)
    blob = build(rng, passphrase=PASSPHRASE.encode(), log_n=rng.randint(1, 4), mutate=rng.random() < 0.8)
    armored = rng.random() < 0.4
    if armored:
        blob = armor_mutant(blob, rng, mutate=rng.random() < 0.5)
    folder = tmp_path_factory.mktemp("scrypt")
    agree(blob, ours(blob, ScryptIdentity(PASSPHRASE)), theirs_scrypt(blob, folder), exact_release=not armored)


def test_valid_mutant_builder_makes_files_age_accepts(keyfile):
    """The builder's unmutated files are valid: otherwise the properties prove little."""
    for seed in range(5):
        rng = random.Random(seed)
        blob = build(rng, identity_pub=PUBLIC, mutate=False)
        for sample in (blob, armor_mutant(blob, rng, mutate=False)):
            mine, their = ours(sample, IDENTITY), theirs_x25519(sample, keyfile)
            assert mine[0] and their[0] and mine[1] == their[1]


def test_header_bounds_are_a_deliberate_refusal():
    """Where we part from age on purpose: a header line over MAX_LINE bytes or more than
    MAX_STANZAS stanzas is refused with a clear error (age has no bound), so a hostile header
    cannot make the reader hold unbounded memory. age itself never writes such a header."""
    rng = random.Random(1)
    for extra in (["-> big " + "A" * MAX_LINE + "\n\n"], ["-> x\n\n"] * (MAX_STANZAS + 1)):
        blob = build(rng, identity_pub=PUBLIC, mutate=False)
        head, rest = blob.split(b"\n", 1)
        with pytest.raises(AgeError, match="too long|too many stanzas"):
            decrypt(head + b"\n" + "".join(extra).encode() + rest, [IDENTITY])


# Where our reader parted from age before (each case failed then), and its neighbours.
def _armor_cases():
    short = armor(encrypt_bytes(b"a short line", [RECIPIENT]))     # last line padded
    lines = short.split(b"\n")
    full = encrypt_bytes(b"x" * 10, [RECIPIENT])
    full = encrypt_bytes(b"x" * (10 + -len(full) % 48), [RECIPIENT])  # no short line
    full_lines = armor(full).split(b"\n")
    last = lines[-3]
    k = len(last.rstrip(b"=")) - 1
    stray = last[:k] + bytes([last[k] ^ 1 if chr(last[k] ^ 1).isalnum() else last[k] + 1]) + last[k + 1:]
    return {
        "leading newline": (b"\n" + short, False),
        "leading space": (b" " + short, False),
        "stray bits in the padded line": (b"\n".join(lines[:-3] + [stray] + lines[-2:]), False),
        "empty short line before END": (b"\n".join(full_lines[:-2] + [b""] + full_lines[-2:]), True),
        "CR inside the short line": (short.replace(last, last[:4] + b"\r" + last[4:]), True),
        "CR inside a full line": (short.replace(lines[1], lines[1][:10] + b"\r" + lines[1][10:]), False),
        "CRLF line ends": (short.replace(b"\n", b"\r\n"), True),
        "1023 bytes of white space after END": (short + b" " * 1023, True),
        "1024 bytes of white space after END": (short + b" " * 1024, False),
        "no-break space after END": (short + "\u00a0".encode(), True),
        "information separator after END": (short + b"\x1c", False),
        "no newline after END": (short[:-1], True),
        "padding dropped": (short.replace(last, last.rstrip(b"=")), False),
    }


@pytest.mark.parametrize("case", list(_armor_cases()))
def test_armor_edges_agree_with_age(keyfile, case):
    blob, age_accepts = _armor_cases()[case]
    assert theirs_x25519(blob, keyfile)[0] == age_accepts      # the case is what it says
    agree(blob, ours(blob, IDENTITY), theirs_x25519(blob, keyfile), exact_release=False)
