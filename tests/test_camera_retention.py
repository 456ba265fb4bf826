"""The camera erases a recording past its retention (one calendar month from the local
day, R241-13) even without a vault receipt, only while its clock is synchronised, with a
signed `recording erased` line; before that, from `[storage] offload_warning_days`, it
lists the recordings not offloaded. The clock is injected."""

from __future__ import annotations

import pytest
from test_evidence_support import Device, mpegts

from recorder.config import load_config
from recorder.errors import ConfigError
from recorder.evidence.chain import read_chain
from recorder.evidence.expiry import held_recordings, sweep
from recorder.evidence.format import JOURNAL_CONTEXT, JOURNAL_FILE, RECORDING_ERASED
from recorder.evidence.verify_spool import verify_journal
from tests.conftest import paris, write_config

DAY = 86400.0


@pytest.fixture
def device(tmp_path):
    dev = Device(tmp_path)
    dev.clock.t = paris(2027, 1, 31, 23, 30)   # 31 January, late evening, local time
    return dev


def record(device, spool, clock_source="gps"):
    rec = spool.open_recording(device.clock.now(), "agent", {"clock_source": clock_source})
    seg = rec.open_segment()
    seg.write(mpegts(1.0, 0))
    device.clock.advance(1)
    seg.seal({"duration_s": 1.0})
    rec.close("stop gesture")
    device.clock.advance(10)
    return rec


def journal(device):
    return read_chain(device.spool_dir / JOURNAL_FILE, JOURNAL_CONTEXT, device.signer.public_key).lines


def test_erased_at_the_end_of_february_for_a_recording_of_31_january(device):
    spool = device.spool()
    rec = record(device, spool)
    last_hash = rec.manifest.last_hash
    found = sweep(spool, paris(2027, 2, 28, 23, 59), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert found.erased == [] and found.offload_due == [rec.id]     # due for offload, not yet erased
    assert (device.spool_dir / rec.id).is_dir()

    found = sweep(spool, paris(2027, 3, 1, 0, 0, 1), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert found.erased == [rec.id]
    assert not (device.spool_dir / rec.id).exists()
    line = journal(device)[-1]
    assert line["event"] == RECORDING_ERASED
    data = line["data"]
    assert {k: data[k] for k in ("recording_id", "recording_seq", "last_line_hash", "reason")} == {
        "recording_id": rec.id, "recording_seq": rec.seq, "last_line_hash": last_hash, "reason": "retention"}
    assert data["offloaded"] is False and "R241-13" in data["rule"]
    # the verifier accounts for it: erased, not missing
    problems, notes = verify_journal(device.spool_dir, device.signer.public_key, [])
    assert problems == []
    assert any(rec.id in n for n in notes)


def test_kept_while_the_clock_is_not_synchronised_and_said_so(device):
    spool = device.spool()
    rec = record(device, spool)
    later = paris(2027, 6, 1, 12, 0)
    found = sweep(spool, later, synchronised=False, zone="Europe/Paris", warning_days=7)
    assert found.erased == [] and found.kept == [rec.id]
    assert found.status() == {"offload_due": 1, "kept_past_retention": 1,
                              "kept_because": "clock not synchronised: kept until it is"}
    assert (device.spool_dir / rec.id).is_dir()
    assert RECORDING_ERASED not in [line["event"] for line in journal(device)]


def test_not_erased_during_a_recording(device):
    spool = device.spool()
    rec = record(device, spool)
    found = sweep(spool, paris(2027, 6, 1), synchronised=True, zone="Europe/Paris", warning_days=7, erase=False)
    assert found.kept == [rec.id] and "recording is running" in found.kept_because
    assert (device.spool_dir / rec.id).is_dir()


def test_offload_warning_from_the_configured_age(device):
    spool = device.spool()
    rec = record(device, spool)
    start = paris(2027, 1, 31, 23, 30)
    assert sweep(spool, start + 2.9 * DAY, synchronised=True, zone=None, warning_days=3).offload_due == []
    assert sweep(spool, start + 3.1 * DAY, synchronised=True, zone=None, warning_days=3).offload_due == [rec.id]
    assert sweep(spool, start + 3.1 * DAY, synchronised=True, zone=None, warning_days=7).offload_due == []


def test_an_unsynchronised_recording_counts_from_the_last_synchronised_start_before_it(device):
    spool = device.spool()
    dated = record(device, spool)                    # 31 January, gps
    device.clock.t = paris(2027, 2, 20, 10, 0)          # the clock says 20 February, unsynchronised
    undated = record(device, spool, clock_source="rtc")
    held = {h.recording_id: h for h in held_recordings(spool)}
    assert held[undated.id].dated_by == f"start of {dated.id}"
    assert held[undated.id].counted_from == held[dated.id].counted_from
    found = sweep(spool, paris(2027, 3, 1, 0, 0, 1), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert found.erased == [dated.id, undated.id]


def test_a_recording_with_nothing_to_date_it_is_kept_and_listed(device):
    spool = device.spool()
    rec = record(device, spool, clock_source="unsynchronised")
    found = sweep(spool, paris(2030, 1, 1), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert found.erased == [] and found.undated == [rec.id] and found.status()["undated"] == 1
    assert (device.spool_dir / rec.id).is_dir()


def test_the_recording_in_progress_and_an_unsigned_folder_are_never_erased(device):
    spool = device.spool()
    done = record(device, spool)
    running = spool.open_recording(device.clock.now(), "agent", {"clock_source": "gps"})
    fake = device.spool_dir / "CAM-T-001_20260101T000000Z_000099"
    fake.mkdir()
    (fake / "manifest.jsonl").write_text('{"event":"opened"}\n')
    found = sweep(spool, paris(2027, 6, 1), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert found.erased == [done.id]
    assert running.path.is_dir() and fake.is_dir()


@pytest.mark.parametrize("days", [0, 28, "7"])
def test_the_offload_warning_comes_before_the_retention(tmp_path, days):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, {"storage": {"offload_warning_days": days}}))
    assert "[storage] offload_warning_days" in str(err.value) and "27" in str(err.value)
    ok = load_config(write_config(tmp_path / "ok", {"storage": {"offload_warning_days": 3}}))
    assert ok.storage.offload_warning_days == 3
