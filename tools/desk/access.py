"""The desk's way into the vault: one vault command at a time (the vault's own lock), the
signed-in person named as the operator of everything logged, and refusals as clear pages."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from recorder.errors import VaultError
from tools.vault.retention import retention_end as vault_retention_end
from tools.vault.vault import Vault

BUSY_WAIT_S = 10.0  # another vault command (a job's extraction, the hourly purge) holds the vault: wait this long
JOB_HELD_WAIT_S = 3.0  # ... but only this long when it is one of the desk's jobs (minutes, often): its page says which


class Refused(Exception):
    """A request the desk refuses: shown as a page giving the reason (French), with its
    HTTP status; ``attempt`` ones are logged in the vault's journal as attempts to access."""

    def __init__(self, status: int, title: str, reason: str, *, attempt: bool = False):
        super().__init__(reason)
        self.status, self.title, self.reason, self.attempt = status, title, reason, attempt


def busy(job: str | None = None) -> Refused:
    """``job``: the line of the desk's job that holds the vault, when it is one."""
    if job:
        return Refused(503, "Coffre occupé", f"Le coffre sert une tâche en cours : {job}. Il ne prend qu'une "
                       "commande à la fois. Rien n'a été fait ; cette page sera de nouveau disponible quand la tâche "
                       "sera finie (elle se suit sur sa propre page, qui reste ouverte).")
    return Refused(503, "Coffre occupé", "Le coffre sert une autre commande (une extraction en cours, ou la purge "
                   "horaire) : il n'en prend qu'une à la fois. Rien n'a été fait ; rechargez cette page dans un "
                   "moment (une extraction se suit sur sa propre page, qui reste ouverte).")


class DeskVault:
    """The vault for the desk's requests, one at a time. A request waits for it at most
    ``busy_wait_s`` (an extraction holds it for minutes: the page says so instead of hanging)
    and never on the event loop, where a wait would stop every other page with it, the
    running job's included. While one of the desk's jobs holds it, a request waits only a
    few seconds (a long extraction would not end within the wait), and the page names the job."""

    def __init__(self, root: str | Path, clock=time.time):
        self.root = Path(root)
        self.clock = clock
        self.busy_wait_s = BUSY_WAIT_S
        self.job_wait_s = JOB_HELD_WAIT_S
        self._lock = threading.Lock()
        self.job: str | None = None  # the line of the desk's job holding the vault, if one does

    @contextmanager
    def open(self, operator: str | None = None, *, wait_s: float | None = None, job: str | None = None):
        """The vault, opened for one request; ``operator`` is who every entry is logged for.
        ``wait_s``: how long to wait for it (``busy_wait_s`` by default; 0: only if it is free
        now, the one way allowed on the event loop); then the refusal ``busy()``. ``job``: the
        line of the desk's job opening it (a job waits its turn; a request waits for a job only
        ``job_wait_s``)."""
        wait_s = self.busy_wait_s if wait_s is None else wait_s
        if wait_s > 0 and _on_event_loop():
            raise RuntimeError("the desk waits for the vault on its event loop: use run_in_threadpool")
        deadline = time.monotonic() + wait_s
        if job is None and self.job is not None:  # a job's minutes: a short wait, then say which job
            wait_s = min(wait_s, self.job_wait_s)
        if not self._lock.acquire(timeout=wait_s):  # 0: a try, never a wait
            raise busy(self.job if job is None else None)
        self.job = job
        try:
            while True:
                try:
                    vault = Vault.open(self.root, clock=self.clock)
                    break
                except VaultError as exc:
                    if "another vault command" not in str(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise busy() from None
                    time.sleep(0.2)
            vault.operator = operator
            try:
                yield vault
            finally:
                vault.close()
        finally:
            self.job = None
            self._lock.release()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def retention_end(vault: Vault, row) -> float:
    """When the purge erases a recording (holds apart): the vault's one rule."""
    return vault_retention_end(vault, row)


def duration_s(row) -> float | None:
    if row.started_at is None or row.ended_at is None:
        return None
    return max(0.0, row.ended_at - row.started_at)
