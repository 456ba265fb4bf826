"""The municipal police register: a separate file on the police's own medium.

Each line says who, when, why, for whom, which recordings from which camera, and carries
the hash of the vault-journal entry it mirrors, so neither log can gain or lose an entry
without the other showing it. It is a signed chain too (context ``pieton/register/1``),
so an edited or removed line shows.
"""

from __future__ import annotations

from pathlib import Path

from drivers.signer import Signer
from recorder.errors import VaultError
from recorder.evidence.chain import ChainReport, ChainWriter, line_hash
from recorder.evidence.format import REGISTER_CONTEXT
from tools.vault.logs import read_log

# Journal events that the register mirrors, one line each (R241-14: every operation on the
# recordings with its author): communication and consultation, collection, searches,
# holds, every erasure, and the designations of who may do them.
MIRRORED_ALWAYS = ("extraction", "extraction-failed", "consultation")
REGISTERED_EVENTS = (*MIRRORED_ALWAYS, "recording-ingested", "recording-quarantined", "search", "hold",
                     "release", "recording-erased", "quarantine-erased", "mirror-erased",
                     "recording-erased-on-camera", "person-designated", "person-revoked",
                     "training-approved", "training-rejected")


class Register:
    def __init__(self, path: str | Path, signer: Signer):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise VaultError(f"register {self.path}: folder not found (is the police's medium mounted?)")
        try:
            self._chain = ChainWriter(self.path, REGISTER_CONTEXT, signer)
        except OSError as exc:
            raise VaultError(f"register {self.path}: cannot open for writing: {exc.strerror}") from None

    def append(self, record: dict) -> dict:
        return self._chain.append(record)

    def close(self) -> None:
        self._chain.close()


def read_register(path: str | Path, vault_key: bytes) -> ChainReport:
    return read_log(Path(path), REGISTER_CONTEXT, vault_key)


def cross_check(journal: ChainReport, register: ChainReport) -> list[str]:
    """A register line without its journal entry, or a journal entry the register should
    mirror and does not, is an error."""
    problems = []
    wanted = {}
    for raw, line in zip(journal.raw, journal.lines, strict=True):
        # The events added to the register later are mirrored from the entries that say so
        # (a journal kept before them has none in the register).
        if line.get("event") in MIRRORED_ALWAYS or (line.get("event") in REGISTERED_EVENTS
                                                    and line.get("registered") is True):
            wanted[line_hash(raw)] = line
    seen = set()
    # Entries before the journal's first kept line were pruned under its signed checkpoint.
    first_seq = journal.lines[0].get("seq", 0) if journal.lines else 0
    for number, line in enumerate(register.lines, start=1):
        if line.get("event") == "register-opened":
            continue
        if isinstance(line.get("journal_seq"), int) and line["journal_seq"] < first_seq:
            continue
        ref = line.get("journal_hash")
        if ref not in wanted:
            problems.append(f"register line {number} ({line.get('event')} at {line.get('at')}): "
                            "no such entry in the vault journal")
        else:
            seen.add(ref)
    for ref, line in wanted.items():
        if ref not in seen:
            problems.append(f"journal entry {line.get('seq')} ({line.get('event')} at {line.get('at')}): "
                            "missing from the register")
    return problems
