"""Freeing space on the device after the vault's signed offload receipt."""

from collections import Counter

import pytest
from test_evidence_support import Device

from drivers.signer import FileSigner
from recorder.evidence.chain import read_chain
from recorder.evidence.format import INBOX, JOURNAL_CONTEXT, MANIFEST_FILE
from recorder.evidence.journal import DeviceJournal
from recorder.evidence.receipt import make_receipt, write_receipt
from recorder.evidence.spool import last_good_line
from recorder.evidence.verify import verify_recordings
from recorder.evidence.verify_spool import verify_journal


def _receipt(vault, device, recs, *, last_hash=None, camera=None):
    covered = [{"id": r.id, "last_hash": last_hash or last_good_line(r.path / MANIFEST_FILE)[1],
                "segments": r.segments} for r in recs]
    return make_receipt(vault, camera or device.camera_id, device.signer.public_key.hex(), covered,
                        "2026-09-22T08:00:00Z")


def test_receipt_frees_exactly_what_the_vault_holds(tmp_path):
    device = Device(tmp_path)
    vault = FileSigner.create(tmp_path / "vault.key")
    spool = device.spool()
    first, second, third = (device.record(spool) for _ in range(3))
    inbox = device.spool_dir / INBOX
    write_receipt(inbox, _receipt(vault, device, [first]))
    write_receipt(inbox, _receipt(vault, device, [second], last_hash="0" * 64))  # an older state
    assert spool.apply_receipts(vault.public_key) == [first.id]
    assert not first.path.exists() and second.path.exists() and third.path.exists()
    assert spool.apply_receipts(vault.public_key) == []  # receipts are filed once applied

    stranger = FileSigner.create(tmp_path / "stranger.key")
    write_receipt(inbox, _receipt(stranger, device, [third]))
    write_receipt(inbox, _receipt(vault, device, [third], camera="CAM-OTHER"))
    assert spool.apply_receipts(vault.public_key) == []
    assert third.path.exists() and len(list((inbox / "refused").iterdir())) == 2

    journal = read_chain(device.spool_dir / "journal.jsonl", JOURNAL_CONTEXT, device.signer.public_key)
    assert journal.ok
    events = Counter((line["event"], line["data"].get("accepted")) for line in journal.lines[-5:])
    assert events == {("offload receipt", True): 2, ("space freed", None): 1, ("offload receipt", False): 2}
    freed = next(line for line in journal.lines if line["event"] == "space freed")
    assert freed["data"]["recording_id"] == first.id and freed["data"]["bytes"] > 0
    spool.close()
    # The sequence goes on after the freed recordings.
    spool = device.spool()
    spool.recover()
    assert spool.next_seq == 3


def test_a_malformed_receipt_is_set_aside_and_the_valid_ones_after_it_apply(tmp_path):
    """NaN, JSON nested 100000 deep, a number of 5000 digits or plain garbage in one
    receipt: that one is refused, journaled and set aside; the valid receipt after it
    still frees its recording, this round and not never."""
    import json

    device = Device(tmp_path)
    vault = FileSigner.create(tmp_path / "vault.key")
    spool = device.spool()
    first = device.record(spool)
    inbox = device.spool_dir / INBOX
    inbox.mkdir()
    signed = _receipt(vault, device, [first])
    bad = {
        "receipt-0000-nan.json": json.dumps(dict(signed, issued_at=float("nan"))),
        "receipt-0001-deep.json": "[" * 100_000 + "]" * 100_000,
        "receipt-0002-digits.json": json.dumps(dict(signed, issued_at=None))[:-1] + ', "n": ' + "9" * 5000 + "}",
        "receipt-0003-garbage.json": "\x00\xff not json",
    }
    for name, text in bad.items():
        (inbox / name).write_text(text, encoding="latin-1")
    valid = write_receipt(inbox, signed)
    assert sorted(bad)[-1] < valid.name, "the valid receipt comes after the bad ones"

    assert spool.apply_receipts(vault.public_key) == [first.id]
    assert not first.path.exists()
    assert sorted(p.name for p in (inbox / "refused").iterdir()) == sorted(bad)
    assert [p.name for p in (inbox / "applied").iterdir()] == [valid.name]
    journal = read_chain(device.spool_dir / "journal.jsonl", JOURNAL_CONTEXT, device.signer.public_key)
    assert journal.ok
    refused = {line["data"]["receipt"]: line["data"]["reason"] for line in journal.lines
               if line["event"] == "offload receipt" and not line["data"]["accepted"]}
    assert set(refused) == set(bad)
    assert "NaN" in refused["receipt-0000-nan.json"]
    assert "nested" in refused["receipt-0001-deep.json"]
    assert "digits" in refused["receipt-0002-digits.json"]
    assert all(str(inbox) not in reason for reason in refused.values())
    spool.close()


@pytest.mark.parametrize("kill", ["before the space freed line", "after the space freed line",
                                  "after the receipt's line"])
def test_a_kill_while_a_receipt_frees_leaves_the_journal_whole(tmp_path, monkeypatch, kill):
    """A SIGKILL in the soak's receipts phase once left a recording erased with no
    ``space freed`` line (verify: in the journal but not in the spool), or the receipt
    journalled a second time by the next start. Now, after a kill at any of these points,
    the next start journals each receipt once and each recording freed once, and the
    journal and the spool verify."""
    device = Device(tmp_path)
    vault = FileSigner.create(tmp_path / "vault.key")
    spool = device.spool()
    first, second = device.record(spool), device.record(spool)
    write_receipt(device.spool_dir / INBOX, _receipt(vault, device, [first, second]))
    original = DeviceJournal.append

    def killed(journal, event, public, personal=None):   # SIGKILL at that point
        if kill == "before the space freed line" and event == "space freed":
            raise KeyboardInterrupt
        line = original(journal, event, public, personal)
        if (kill == "after the space freed line" and event == "space freed") or (
                kill == "after the receipt's line" and event == "offload receipt"):
            raise KeyboardInterrupt
        return line

    monkeypatch.setattr(DeviceJournal, "append", killed)
    with pytest.raises(KeyboardInterrupt):
        spool.apply_receipts(vault.public_key)
    monkeypatch.undo()
    spool.close()

    spool = device.spool()          # the next start
    spool.recover()
    spool.apply_receipts(vault.public_key)
    spool.close()
    assert not first.path.exists() and not second.path.exists()
    assert [p.name for p in device.spool_dir.iterdir() if p.name.startswith(".")] == []
    journal = read_chain(device.spool_dir / "journal.jsonl", JOURNAL_CONTEXT, device.signer.public_key)
    assert journal.ok, journal.problems
    said = Counter((line["event"], line["data"].get("recording_id")) for line in journal.lines
                   if line["event"] in ("offload receipt", "space freed"))
    assert said == {("offload receipt", None): 1, ("space freed", first.id): 1, ("space freed", second.id): 1}
    reports = verify_recordings(spool.recordings(), device_key=device.signer.public_key)
    problems, _ = verify_journal(device.spool_dir, device.signer.public_key, reports)
    assert problems == []
