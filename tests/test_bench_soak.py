"""`pieton bench soak` on a tiny campaign: short shifts, the daemon and vault commands
killed, every recording made is verified in the vault; a recording deleted behind the
camera's back is counted lost (the soak's own check can fail)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random

import pytest

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity
from recorder.evidence.chain import ChainWriter
from recorder.evidence.format import JOURNAL_FILE, MANIFEST_FILE, OPENING_PREFIX, OPENING_UNDONE
from recorder.evidence.spool import Spool
from recorder.evidence.verify import verify_recordings
from recorder.evidence.verify_spool import verify_journal
from tools.benchmarks._soak_plan import plan_shift, resume
from tools.benchmarks.soak import campaign
from tools.cli import main as pieton


def test_a_short_campaign_with_kills_loses_nothing(tmp_path):
    lines: list[str] = []
    # Not at a recording's start: that window has a known fault (see the xfail below).
    figures = campaign(tmp_path / "c", shifts=2, hours=0.05, seed=11, kills_per_shift=2, out=lines.append,
                       phases=("sealing", "receipts", "configuration"))
    text = "\n".join(lines)
    assert any(k.startswith("daemon: ") for k in figures["kills"]), text
    assert figures["made"] >= 2, text
    assert figures["verified"] == figures["made"], text
    assert figures["lost"] == 0 and figures["verification_failures"] == 0, text
    assert figures["chains_intact"] and figures["tracebacks"] == 0, text
    assert "recordings:" in text and "chains: device journal intact" in text


def test_a_recording_deleted_behind_the_cameras_back_is_reported_lost(tmp_path):
    lines: list[str] = []
    figures = campaign(tmp_path / "c", shifts=1, hours=0.05, seed=4, kills_per_shift=0, inject_loss_at=1,
                       out=lines.append)
    text = "\n".join(lines)
    assert figures["made"] >= 2, text
    assert figures["lost"] == 1 and figures["verified"] == figures["made"] - 1, text
    assert figures["lost_items"][0] in text and "LOST" in text
    assert not figures["chains_intact"], "the spool's journal lists a recording that is gone"


def test_a_restart_resumes_the_shift_with_its_hardware_state():
    shift = plan_shift(3, 1.0, random.Random(1), dt.datetime(2027, 1, 4, 6, tzinfo=dt.UTC))
    lost = next(e["at"] for e in shift.events if e["do"] == "gps_lost")
    offset, events = resume(shift, lost + 1)
    assert offset > lost + 1
    head = [e for e in events if e["at"] < 1]
    assert {"battery", "light", "disk_fill"} <= {e["do"] for e in head}
    assert head[-1]["do"] == "gps_lost" or any(e["do"] == "gps_lost" for e in head), head
    assert all(e["at"] >= 0 for e in events)
    assert [e for e in events if e["at"] >= 1] == [
        {**e, "at": round(e["at"] - offset, 2)} for e in shift.events if e["at"] > offset]


def test_an_assignment_sent_while_the_camera_was_down_is_sent_again():
    shift = plan_shift(1, 1.0, random.Random(2), dt.datetime(2027, 1, 4, 6, tzinfo=dt.UTC))
    _, events = resume(shift, 0.5)     # killed before the assignment (t = 1 s) was played
    assert [e["do"] for e in events if e["at"] < 1].count("assign") == 1


@pytest.mark.parametrize("argv", [["soak", "--shifts", "0"], ["soak", "--hours", "-1"], ["soak", "--hours", "nan"],
                                  ["fuzz", "--target", "nope"]])
def test_bad_bench_arguments_are_a_clear_error(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        pieton(["bench", *argv])
    assert stop.value.code == 2
    assert "pieton bench" in capsys.readouterr().err


@pytest.mark.parametrize("kill_in", ["the opened line", "the rename into place"])
def test_a_recording_killed_before_its_opened_line_leaves_nothing_to_verify(tmp_path, monkeypatch, kill_in):
    """A SIGKILL between the folder's creation and its opened line once left a recording
    folder with no opened line: `pieton verify` failed it and ingest quarantined it at every
    dock. The folder now takes its recording id only once its opened line is durable."""
    signer = FileSigner.create(tmp_path / "device.key")
    _, recipient = generate_identity()

    def spool():
        return Spool(tmp_path / "spool", signer, [recipient], "CAM-T-001", "d" * 64, False, min_free_bytes=0)

    first = spool()
    first.recover()

    def killed(*args, **kwargs):     # SIGKILL at that point
        raise KeyboardInterrupt

    if kill_in == "the opened line":
        monkeypatch.setattr(ChainWriter, "append", killed)
    else:
        monkeypatch.setattr(os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        first.open_recording(1_790_000_000.0, "agent", {"clock_source": "gps"})
    monkeypatch.undo()
    first.close()
    assert not [p for p in (tmp_path / "spool").iterdir() if p.name.startswith("CAM-T-001_")]
    second = spool()
    second.recover()              # the next start
    assert not [p for p in (tmp_path / "spool").iterdir() if p.name.startswith(OPENING_PREFIX)]
    journal = [json.loads(line) for line in (tmp_path / "spool" / JOURNAL_FILE).read_text().splitlines()]
    assert journal[-1]["event"] == OPENING_UNDONE and "recording_id" not in journal[-1]["data"]
    writer = second.open_recording(1_790_000_100.0, "agent", {"clock_source": "gps"})
    assert writer.seq == 0         # no number was taken by the opening that did not happen
    writer.close("button")
    second.close()
    reports = verify_recordings(second.recordings(), device_key=signer.public_key)
    assert [r.ok for r in reports] == [True], [p.reason for r in reports for p in r.problems]
    problems, _ = verify_journal(tmp_path / "spool", signer.public_key, reports)
    assert problems == []


def test_a_real_recordings_deleted_manifest_is_still_tampering(tmp_path):
    """Removing a recording's manifest (its opened line with it) must not pass for a cut
    before the opening: verify fails it, at the next start and after."""
    signer = FileSigner.create(tmp_path / "device.key")
    _, recipient = generate_identity()

    def spool():
        return Spool(tmp_path / "spool", signer, [recipient], "CAM-T-001", "d" * 64, False, min_free_bytes=0)

    first = spool()
    writer = first.open_recording(1_790_000_000.0, "agent", {"clock_source": "gps"})
    writer.close("button")
    first.close()
    (writer.path / MANIFEST_FILE).unlink()
    spool().recover()             # the next start does not make it look like nothing was recorded
    assert writer.path.is_dir()
    (report,) = verify_recordings([writer.path], device_key=signer.public_key)
    assert not report.ok and any("opened" in p.reason for p in report.problems), report.problems
    journal = (tmp_path / "spool" / JOURNAL_FILE).read_text()
    assert OPENING_UNDONE not in journal
