"""The device journal: one signed chain across all of the camera's events.

Boot, configuration applied or refused, assignment, recording opened / closed / refused /
recovered, offload receipt, space freed. Public fields are clear text (no person, no
place); personal fields are an age-encrypted base64 blob to the chief's recipients.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from pathlib import Path

from drivers.signer import Signer
from recorder.clock import wall_now
from recorder.errors import EvidenceError
from recorder.evidence.age import decrypt, encrypt_bytes
from recorder.evidence.chain import ChainReport, ChainWriter, read_chain
from recorder.evidence.format import JOURNAL_CONTEXT, JOURNAL_EVENTS, canonical, utc_iso
from recorder.inputs import InputError, loads_strict


class DeviceJournal:
    """Appends journal events; each line is signed, chained and fsynced."""

    def __init__(self, path: str | Path, signer: Signer, recipients: list[str], *,
                 wall_clock=time.time, on_durable=None):
        self.path = Path(path)
        self.recipients = list(recipients)
        self._now = wall_now(wall_clock)
        self._chain = ChainWriter(self.path, JOURNAL_CONTEXT, signer, on_durable=on_durable)
        self._lock = threading.Lock()   # the spool's opening thread appends too (Spool.begin_recording)

    @property
    def last_hash(self) -> str:
        return self._chain.last_hash

    def append(self, event: str, public: dict, personal: dict | None = None) -> dict:
        if event not in JOURNAL_EVENTS:
            raise EvidenceError(f"journal {self.path}: unknown event {event!r}; known: {', '.join(JOURNAL_EVENTS)}")
        blob = encrypt_bytes(canonical(personal), self.recipients) if personal else None
        with self._lock:   # the time read in the lock: times follow the chain's order
            record = {"event": event, "time": utc_iso(self._now()), "data": dict(public)}
            if blob is not None:
                record["personal"] = base64.b64encode(blob).decode("ascii")
            return self._chain.append(record)

    def close(self) -> None:
        self._chain.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DeviceJournal {self.path} next_seq={self._chain.next_seq}>"


def read_journal(path: str | Path, public_key: bytes | None, identities: list | None = None) -> ChainReport:
    """Check the journal's chain; with identities, each line's personal blob is decrypted
    into ``line["personal_clear"]`` (problems are reported, not raised)."""
    report = read_chain(path, JOURNAL_CONTEXT, public_key)
    if identities:
        for number, line in enumerate(report.lines, start=1):
            if "personal" not in line:
                continue
            try:
                if not isinstance(line["personal"], str):
                    raise EvidenceError("not base64 text")
                result = decrypt(base64.b64decode(line["personal"], validate=True), identities)
                line["personal_clear"] = loads_strict(result.plaintext, "personal fields")
            except (binascii.Error, InputError, ValueError, EvidenceError) as exc:
                report.problems.append(f"seq {line.get('seq', number)}: personal fields unreadable: {exc}")
    return report
