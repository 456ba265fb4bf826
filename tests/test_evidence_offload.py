"""Freeing space on the device after the vault's signed offload receipt."""

from collections import Counter

from test_evidence_support import Device

from drivers.signer import FileSigner
from recorder.evidence.chain import read_chain
from recorder.evidence.format import INBOX, JOURNAL_CONTEXT, MANIFEST_FILE
from recorder.evidence.receipt import make_receipt, write_receipt
from recorder.evidence.spool import last_good_line


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
