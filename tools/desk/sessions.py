"""Who is signed in: a designated person's age identity, unlocked with its passphrase and
kept in the server's memory for that session only.

A session locks after a spell without a request (10 minutes by default): locking drops the
identity, and the old cookie then gets the sign-in page. Signing out does the same at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from recorder.evidence.age_keys import as_identity, identity_to_recipient

IDLE_S = 10 * 60
MAX_FORMS = 256


@dataclass
class Session:
    token: str
    person: str
    recipient: str
    matricule: str                                 # the designated person's: the author of what they do
    identities: list = field(repr=False)
    last_seen: float
    tickets: dict = field(default_factory=dict)    # stream ticket -> recording id (a consultation logged)
    consulted: dict = field(default_factory=dict)  # recording id -> what was read for the consultation
    extracted: set = field(default_factory=set)    # extractions made, offered for download
    searched: dict = field(default_factory=dict)   # recording id -> what a search decrypted (memory only)
    opened: dict = field(default_factory=dict, repr=False)  # ticket -> the recording opened for its consultation
    form_tokens: dict = field(default_factory=dict)  # tokens of the forms shown, each accepted once

    def form_token(self) -> str:
        """A token for one form shown: a form sent twice (replayed) or forged is refused."""
        token = secrets.token_urlsafe(24)
        self.form_tokens[token] = None
        while len(self.form_tokens) > MAX_FORMS:  # the oldest pages' forms lapse
            del self.form_tokens[next(iter(self.form_tokens))]
        return token

    def spend(self, token) -> bool:
        """True once for a token this session issued."""
        return isinstance(token, str) and self.form_tokens.pop(token, False) is None


def author(session: Session) -> str:
    """The name the journal and the register give the person signed in: their matricule,
    found at sign-in from the recipient their identity opens (tools.vault.persons)."""
    return session.matricule


class Sessions:
    """Open sessions by cookie token; ``clock`` is injectable so tests can age them."""

    def __init__(self, idle_s: float = IDLE_S, clock=time.monotonic):
        self.idle_s = idle_s
        self.clock = clock
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, person: str, identities: list, matricule: str) -> Session:
        keys = [as_identity(i) for i in identities]  # parsed once, not at every file opened
        recipient = identity_to_recipient(keys[0])
        session = Session(secrets.token_urlsafe(32), person, recipient, matricule, keys, self.clock())
        with self._lock:
            self._open[session.token] = session
        return session

    def get(self, token: str | None) -> tuple[Session | None, str | None]:
        """The live session for ``token`` (its idle clock restarted), or None and why not."""
        if not token:
            return None, None
        with self._lock:
            session = self._open.get(token)
            if session is None:
                return None, "inconnue"
            now = self.clock()
            if now - session.last_seen > self.idle_s:
                self._drop(token)
                return None, "verrouillee"
            session.last_seen = now
            return session, None

    def close(self, token: str) -> Session | None:
        with self._lock:
            return self._drop(token)

    def _drop(self, token: str) -> Session | None:
        session = self._open.pop(token, None)
        if session is not None:  # no reference to the identity stays in the server
            session.identities.clear()
            session.tickets.clear()
            session.consulted.clear()
            session.extracted.clear()
            session.searched.clear()
            session.opened.clear()
            session.form_tokens.clear()
        return session

    def __len__(self) -> int:
        return len(self._open)
