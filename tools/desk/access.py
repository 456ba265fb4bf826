"""The desk's way into the vault: one vault command at a time (the vault's own lock), the
signed-in person named as the operator of everything logged, and refusals as clear pages."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

from recorder.errors import VaultError
from tools.vault.retention import retention_end as vault_retention_end
from tools.vault.vault import Vault

BUSY_WAIT_S = 10.0  # another vault command (the hourly purge) holds the vault: wait this long


class Refused(Exception):
    """A request the desk refuses: shown as a page giving the reason (French), with its
    HTTP status; ``attempt`` ones are logged in the vault's journal as attempts to access."""

    def __init__(self, status: int, title: str, reason: str, *, attempt: bool = False):
        super().__init__(reason)
        self.status, self.title, self.reason, self.attempt = status, title, reason, attempt


class DeskVault:
    def __init__(self, root: str | Path, clock=time.time):
        self.root = Path(root)
        self.clock = clock
        self._lock = threading.Lock()

    @contextmanager
    def open(self, operator: str | None = None):
        """The vault, opened for one request; ``operator`` is who every entry is logged for."""
        with self._lock:
            deadline = time.monotonic() + BUSY_WAIT_S
            while True:
                try:
                    vault = Vault.open(self.root, clock=self.clock)
                    break
                except VaultError as exc:
                    if "another vault command" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            vault.operator = operator
            try:
                yield vault
            finally:
                vault.close()


def retention_end(vault: Vault, row) -> float:
    """When the purge erases a recording (holds apart): the vault's one rule."""
    return vault_retention_end(vault, row)


def duration_s(row) -> float | None:
    if row.started_at is None or row.ended_at is None:
        return None
    return max(0.0, row.ended_at - row.started_at)
