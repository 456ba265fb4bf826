"""A chunk that reaches the segment file once part of the sync interval has passed is
fsynced at once, so a power cut keeps it (the interval alone would leave it waiting)."""

from __future__ import annotations

import os

import pytest
from conftest import read_jsonl
from test_evidence_support import Device

from recorder.evidence.age import CHUNK_SIZE


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def test_a_chunk_is_fsynced_when_it_reaches_the_file_after_part_of_the_interval(device):
    now = [100.0]
    spool = device.spool(monotonic=lambda: now[0], sync_interval=0.5)
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = rec.open_segment()
    header = seg.durable_size

    def progress():
        return [line["durable_bytes"] for line in read_jsonl(rec.path / "manifest.jsonl")
                if line["event"] == "progress"]

    now[0] += 0.05
    seg.write(os.urandom(CHUNK_SIZE + 10))      # a chunk reaches the file, too soon to fsync
    assert progress() == [] and seg.durable_size == header
    now[0] += 0.25                              # 0.3 s since the header's fsync
    seg.write(os.urandom(100))                  # no chunk reaches the file: no fsync
    assert progress() == []
    seg.write(os.urandom(CHUNK_SIZE))           # the second chunk: fsynced now, before 0.5 s
    [durable] = progress()
    assert durable == seg.durable_size == os.path.getsize(seg.part_path)
    assert durable > header + 2 * CHUNK_SIZE    # both chunks are durable
    seg.seal()
    rec.close("stop")
    spool.close()
