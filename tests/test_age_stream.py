"""age v1 writer and reader: round trips, incremental writing, truncation, tampering."""

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.errors import AgeError, StorageFull
from recorder.evidence.age import (
    CHUNK_SIZE,
    NONCE_SIZE,
    AgeWriter,
    decrypt,
    encrypt_bytes,
    generate_identity,
    header_info,
    iter_decrypt,
)

CHIEF = generate_identity()
DEPUTY = generate_identity()
ENC = CHUNK_SIZE + 16


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 2_500_000])
def test_round_trip(size):
    data = os.urandom(size)
    result = decrypt(encrypt_bytes(data, [CHIEF[1]]), [CHIEF[0]])
    assert result.plaintext == data
    assert result.complete and result.reason is None
    assert result.chunks == max(1, -(-size // CHUNK_SIZE))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3 * CHUNK_SIZE + 10), st.lists(st.integers(0, 2 * CHUNK_SIZE), max_size=6))
def test_round_trip_any_split(data, cuts):
    out = io.BytesIO()
    writer = AgeWriter(out, [CHIEF[1]])
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:], strict=False):
        writer.write(data[start:end])
    size = writer.close()
    assert size == len(out.getvalue())
    assert writer.plaintext_size == len(data)
    result = decrypt(out.getvalue(), [CHIEF[0]])
    assert result.complete and result.plaintext == data


def test_two_recipients_each_decrypt():
    data = os.urandom(100_000)
    blob = encrypt_bytes(data, [CHIEF[1], DEPUTY[1]])
    assert header_info(blob).recipients == 2
    assert decrypt(blob, [CHIEF[0]]).plaintext == data
    assert decrypt(blob, [DEPUTY[0]]).plaintext == data


def test_full_chunks_reach_the_file_at_once(tmp_path):
    path = tmp_path / "seg.ts.age.part"
    with open(path, "wb") as f:
        writer = AgeWriter(f, [CHIEF[1]], sync_interval=1000)
        start = writer.header_size + NONCE_SIZE
        assert path.stat().st_size == start
        writer.write(b"x" * CHUNK_SIZE)          # could still be the last chunk: held
        assert path.stat().st_size == start
        writer.write(b"y")                      # now chunk 0 is known not to be last
        assert path.stat().st_size == start + ENC
        writer.write(b"z" * (3 * CHUNK_SIZE))
        assert path.stat().st_size == start + 4 * ENC   # 1 byte held for the final chunk
        assert writer.close() == path.stat().st_size == start + 4 * ENC + 17
    assert decrypt(path, [CHIEF[0]]).plaintext == b"x" * CHUNK_SIZE + b"y" + b"z" * (3 * CHUNK_SIZE)


def test_fsync_every_sync_interval_reports_durable_lengths(tmp_path):
    now = [0.0]
    durable = []
    with open(tmp_path / "a.age", "wb") as f:
        writer = AgeWriter(f, [CHIEF[1]], sync_interval=0.5, clock=lambda: now[0], on_durable=durable.append)
        for _ in range(40):                      # 40 writes of 20 kB, 0.125 s apart
            now[0] += 0.125
            writer.write(b"\0" * 20_000)
        assert len(durable) == 10                # at 0.5, 1.0, ... 5.0 s
        assert durable == sorted(durable) and writer.durable_size == durable[-1]
        assert durable[-1] <= os.path.getsize(f.name)
        total = writer.close()
    assert durable[-1] == total


def test_cut_after_sync_keeps_durable_chunks(tmp_path):
    """What a power cut leaves: the file at its last durable length, no final chunk."""
    data = os.urandom(5 * CHUNK_SIZE + 123)
    path = tmp_path / "seg.part"
    with open(path, "wb") as f:
        writer = AgeWriter(f, [CHIEF[1]])
        writer.write(data)
        durable = writer.sync()
    os.truncate(path, durable)
    result = decrypt(path, [CHIEF[0]])
    assert not result.complete
    assert result.chunks == 5 and result.plaintext == data[:5 * CHUNK_SIZE]
    assert "truncated" in result.reason and "chunk 4" in result.reason


def test_truncated_at_every_kind_of_place():
    data = os.urandom(3 * CHUNK_SIZE + 500)
    blob = encrypt_bytes(data, [CHIEF[1]])
    start = header_info(blob).header_size + NONCE_SIZE
    cases = {
        0: 0, 10: 0, start - 5: 0, start: 0, start + 8: 0, start + 100: 0,
        start + ENC: 1, start + ENC + 1000: 1, start + 2 * ENC: 2, start + 3 * ENC + 20: 3, len(blob) - 1: 3,
    }
    for cut, chunks in cases.items():
        result = decrypt(blob[:cut], [CHIEF[0]])
        assert not result.complete, cut
        assert result.chunks == chunks, cut
        assert result.plaintext == data[:chunks * CHUNK_SIZE]
        assert result.reason and ("truncated" in result.reason or "cut short" in result.reason), result.reason


def test_flipped_byte_stops_at_the_altered_chunk():
    data = os.urandom(3 * CHUNK_SIZE)
    blob = bytearray(encrypt_bytes(data, [CHIEF[1]]))
    start = header_info(bytes(blob)).header_size + NONCE_SIZE
    blob[start + ENC + 777] ^= 0x01
    result = decrypt(bytes(blob), [CHIEF[0]])
    assert not result.complete and result.chunks == 1
    assert result.plaintext == data[:CHUNK_SIZE]
    assert "chunk 1 fails authentication" in result.reason


def test_trailing_data_after_final_chunk_is_reported():
    data = os.urandom(CHUNK_SIZE)               # a full final chunk: the extra bytes stand apart
    result = decrypt(encrypt_bytes(data, [CHIEF[1]]) + b"extra", [CHIEF[0]])
    assert not result.complete and result.plaintext == data
    assert "after the final chunk" in result.reason
    # after a short final chunk, extra bytes make that chunk fail instead
    result = decrypt(encrypt_bytes(b"hello", [CHIEF[1]]) + b"extra", [CHIEF[0]])
    assert not result.complete and result.chunks == 0 and "chunk 0 fails" in result.reason


def test_iter_decrypt_streams_and_reports(tmp_path):
    data = os.urandom(4 * CHUNK_SIZE + 9)
    path = tmp_path / "big.age"
    path.write_bytes(encrypt_bytes(data, [CHIEF[1]])[:-20])
    stream = iter_decrypt(path, [CHIEF[0]])
    pieces = list(stream)
    assert all(len(p) == CHUNK_SIZE for p in pieces) and len(pieces) == 4
    assert b"".join(pieces) == data[:4 * CHUNK_SIZE]
    assert not stream.complete and stream.chunks == 4 and "chunk 4" in stream.reason


def test_wrong_identity_names_the_file(tmp_path):
    path = tmp_path / "seg-000001.ts.age"
    path.write_bytes(encrypt_bytes(b"secret", [CHIEF[1]]))
    with pytest.raises(AgeError, match=f"no identity matches any recipient of {path}"):
        decrypt(path, [DEPUTY[0]])


def test_not_an_age_file(tmp_path):
    path = tmp_path / "clip.ts"
    path.write_bytes(b"\x47" + os.urandom(5000))
    with pytest.raises(AgeError, match=f"{path} is not an age file"):
        decrypt(path, [CHIEF[0]])
    with pytest.raises(AgeError, match="is not an age file"):
        decrypt(b"age-encryption.org/v2\n-> X25519 x\n", [CHIEF[0]])


def test_altered_header_fails_its_mac():
    blob = encrypt_bytes(b"secret", [CHIEF[1], DEPUTY[1]])
    header = blob[:header_info(blob).header_size]
    lines = header.split(b"\n")
    lines[3], lines[4], lines[1], lines[2] = lines[1], lines[2], lines[3], lines[4]   # swap the stanzas
    swapped = b"\n".join(lines) + blob[len(header):]
    with pytest.raises(AgeError, match="header MAC mismatch"):
        decrypt(swapped, [CHIEF[0]])


def test_disk_full_is_storage_full():
    with open("/dev/full", "wb", buffering=0) as full:
        with pytest.raises(StorageFull, match="no space left"):
            AgeWriter(full, [CHIEF[1]])


def test_no_recipient_is_refused():
    with pytest.raises(AgeError, match="no age recipient"):
        AgeWriter(io.BytesIO(), [])


def test_disk_full_mid_stream_keeps_what_was_durable(tmp_path):
    path = tmp_path / "seg.part"
    data = os.urandom(4 * CHUNK_SIZE)
    with open(path, "wb") as f:
        writer = AgeWriter(f, [CHIEF[1]])
        writer.write(data[:2 * CHUNK_SIZE + 10])
        durable = writer.sync()
        assert writer.durable_plaintext_size == 2 * CHUNK_SIZE
        with open("/dev/full", "wb") as full:      # the disk fills up: writes now get ENOSPC
            os.dup2(full.fileno(), f.fileno())
        with pytest.raises(StorageFull, match="no space left"):
            writer.write(data[2 * CHUNK_SIZE + 10:])
        assert writer.sync() == durable == writer.durable_size
        with pytest.raises(AgeError, match="failed earlier"):
            writer.write(b"more")
    result = decrypt(path, [CHIEF[0]])
    assert result.chunks == 2 and result.plaintext == data[:2 * CHUNK_SIZE] and not result.complete


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3 * CHUNK_SIZE + 100), st.integers(0, 4 * ENC + 400))
def test_any_cut_keeps_exactly_the_whole_chunks_before_it(size, cut):
    data = bytes(size)
    blob = encrypt_bytes(data, [CHIEF[1]])
    start = header_info(blob).header_size + NONCE_SIZE
    result = decrypt(blob[:cut], [CHIEF[0]])
    if cut >= len(blob):
        assert result.complete and result.plaintext == data
        return
    whole = max(0, cut - start) // ENC
    # a full chunk before the cut is kept unless it is the final one (then the cut is inside it)
    expect = min(whole, -(-size // CHUNK_SIZE) - 1 if size else 0)
    assert not result.complete and result.chunks == expect
    assert result.plaintext == data[:expect * CHUNK_SIZE]
