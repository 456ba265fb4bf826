"""The vault's own journal: the shared signed chain (``recorder.evidence.chain``) with the
context ``pieton/vault-journal/1``, one line per thing that happened to evidence."""

from __future__ import annotations

from pathlib import Path

from drivers.signer import Signer
from recorder.evidence.chain import ChainReport, ChainWriter
from recorder.evidence.format import VAULT_JOURNAL_CONTEXT
from tools.vault.logs import read_log


class VaultJournal:
    def __init__(self, path: str | Path, signer: Signer):
        self.path = Path(path)
        self._chain = ChainWriter(self.path, VAULT_JOURNAL_CONTEXT, signer)

    def append(self, event: str, at: str, fields: dict) -> tuple[dict, str]:
        """Append one entry; returns the signed line and its hash (which the register cites)."""
        line = self._chain.append({"event": event, "at": at, **fields})
        return line, self._chain.last_hash

    def close(self) -> None:
        self._chain.close()


def read_journal(path: str | Path, vault_key: bytes) -> ChainReport:
    """The journal's chain, checked from its signed checkpoint on when it was pruned."""
    return read_log(Path(path), VAULT_JOURNAL_CONTEXT, vault_key)
