"""Ingest's staging: recordings copied ahead on their own thread while the ones before are
committed, each file hashed as the copy reads back; a cut or a copy altered before its
hash stores and receipts nothing of it."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import read_jsonl
from test_vault_flow import chief  # noqa: F401 (a fixture)
from vault_support import CAMERA, make_spool

from recorder.evidence.format import INBOX
from tools.vault.ahead import Ahead
from tools.vault.ingest import ingest
from tools.vault.spool_read import SpoolReader


def test_a_copy_altered_between_its_copy_and_its_hash_is_quarantined_not_receipted(
        tmp_path, chief, vault, monkeypatch):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)
    first = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[0]
    real_sendfile = os.sendfile

    def sendfile(out, src, offset, count):
        sent = real_sendfile(out, src, offset, count)
        target = os.readlink(f"/proc/self/fd/{out}")
        if first in target and target.endswith("seg-000002.ts.age"):
            os.pwrite(out, b"\x00" * 16, 200)  # the vault's copy changes after the copy
        return sent

    monkeypatch.setattr(os, "sendfile", sendfile)
    report = ingest(vault, spool_dir, progress=False)
    [(rid, problems)] = report.quarantined
    assert rid == first and any("seg-000002.ts.age" in p and "SHA-256 differs" in p for p in problems)
    assert first not in report.stored and len(report.stored) == 1
    receipt = json.loads(report.receipt.read_text())
    assert [r["id"] for r in receipt["recordings"]] == report.stored
    assert (spool_dir / first / "seg-000002.ts.age").is_file()  # the camera keeps it


def test_ahead_gives_each_result_in_order_and_raises_a_failure_at_its_turn():
    def stage(n):
        if n == 3:
            raise ValueError("three")
        return n * 10

    ahead = Ahead(stage, [1, 2, 3, 4], depth=1)
    taken = []
    with pytest.raises(ValueError, match="three"):
        for result in ahead:
            taken.append(result)
    assert taken == [10, 20]
    assert ahead.close() in ([], [40])  # staged before the stop, handed back for clean-up


def test_ahead_close_stops_a_stage_waiting_for_room():
    staged = []
    ahead = Ahead(lambda n: staged.append(n) or n, range(100), depth=2)
    first = next(iter(ahead))
    left = ahead.close()
    assert first == 0 and len(staged) < 100 and left == staged[1:]


def test_a_cut_while_later_recordings_are_copied_receipts_nothing_and_the_next_ingest_stores_each_once(
        tmp_path, chief, vault, monkeypatch):  # noqa: F811
    # The copies run ahead of the commits; a cut (the ingest stopped by what it does not
    # handle) at the first commit, after later recordings were copied, leaves no receipt,
    # no staged copy, and the next ingest stores every recording once.
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=4, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    real_add = vault.index.add_recording
    copied: list[str] = []
    real_copy = SpoolReader.copy_recording

    def copy_recording(self, folder, dst, *args, **kwargs):
        copied.append(folder)
        return real_copy(self, folder, dst, *args, **kwargs)

    def cut(row):
        deadline = time.monotonic() + 30
        while len(copied) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # the next recordings are copied meanwhile
        raise KeyboardInterrupt

    monkeypatch.setattr(SpoolReader, "copy_recording", copy_recording)
    monkeypatch.setattr(vault.index, "add_recording", cut)
    with pytest.raises(KeyboardInterrupt):
        ingest(vault, spool_dir, progress=False)
    assert len(copied) >= 3  # copied ahead while the first was committed
    assert not (spool_dir / INBOX).exists() or not list((spool_dir / INBOX).iterdir())
    assert not list(vault.layout.incoming.iterdir())
    monkeypatch.setattr(vault.index, "add_recording", real_add)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok and len(report.stored) + len(report.already) == 4
    receipt = json.loads(report.receipt.read_text())
    assert len(receipt["recordings"]) == 4
    assert len([line for line in read_jsonl(vault.layout.journal) if line["event"] == "recording-ingested"]) == 4
