"""Disk full while recording, on a real small filesystem (a tmpfs; needs root to mount)."""

import subprocess

import pytest
from test_evidence_support import Device, mpegts

from recorder.errors import StorageFull
from recorder.evidence.age import load_identities
from recorder.evidence.verify import verify_recording


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "sd"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(rec, writes_per_segment=6):
    """Record until the disk refuses; returns the segment that hit it."""
    data = mpegts(2.0, 1)
    while True:
        seg = rec.open_segment()
        for _ in range(writes_per_segment):
            try:
                seg.write(data)
            except StorageFull:
                return seg
        seg.seal()


def sealed_files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(".age")}


def test_reserve_lets_the_segment_and_recording_close(small_disk, tmp_path):
    device = Device(tmp_path)
    device.spool_dir = small_disk / "spool"
    spool = device.spool(reserve_bytes=192 * 1024)
    rec = spool.open_recording(device.clock.now(), "agent", {})
    seg = fill(rec)
    before = sealed_files(rec.path)
    assert seg.index >= 2 and before
    seg.abort("storage full")
    rec.close("storage full")
    after = sealed_files(rec.path)
    assert all(after[name] == data for name, data in before.items())  # nothing earlier damaged
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok, report.problems
    assert report.closed_reason == "storage full" and report.segments == seg.index
    journal = (device.spool_dir / "journal.jsonl").read_text()
    assert '"reason":"storage full"' in journal
    with pytest.raises(StorageFull, match="at least"):
        device.spool(reserve_bytes=192 * 1024, min_free_bytes=1024 * 1024).open_recording(
            device.clock.now() + 5, "agent", {})


def test_real_enospc_is_recovered_at_next_start(small_disk, tmp_path):
    device = Device(tmp_path)
    device.spool_dir = small_disk / "spool"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 200_000)  # something outside the spool, freed later
    spool = device.spool(reserve_bytes=0)
    rec = spool.open_recording(device.clock.now(), "agent", {})
    spool.storage.reserve_bytes = -(1 << 40)  # no reserve: the age writer meets ENOSPC itself
    seg = fill(rec)
    sealed_before = {n: d for n, d in sealed_files(rec.path).items()}
    seg.abort("storage full")
    try:
        rec.close("storage full")
    except StorageFull:
        pass  # not even the closed line fits: recovery will say what is there
    spool.close()
    filler.unlink()
    spool = device.spool(reserve_bytes=0)
    spool.recover()
    report = verify_recording(rec.path, device_key=device.signer.public_key,
                              identities=load_identities(device.identity_file))
    assert report.ok, report.problems
    assert report.segments == seg.index - 1 and report.truncated
    after = sealed_files(rec.path)
    assert all(after[name] == data for name, data in sealed_before.items())
