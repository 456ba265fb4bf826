"""What the chief types to the vault's commands: times (the one rule of
``recorder/localtime``, in the vault's own zone) and camera ids (any case; a near miss is
named)."""

from __future__ import annotations

import difflib

from recorder.errors import VaultError
from recorder.localtime import format_local, parse_time
from tools.vault.vault import Vault


def typed_time(vault: Vault, text: str, what: str) -> float:
    """A time typed by a person: without a zone, local time in the vault's zone."""
    return parse_time(text, vault.timezone, what=what)


def shown_time(vault: Vault, epoch: float | None) -> str:
    """A time printed for a person: local, with its zone."""
    return "time unknown" if epoch is None else format_local(epoch, vault.timezone)


def camera_id(vault: Vault, typed: str | None, what: str = "--camera") -> str | None:
    """The camera the vault knows as ``typed``, whatever its case; an unknown one is an
    error that suggests the close ids (a filter on a typo would silently find nothing)."""
    if typed is None:
        return None
    known = {c for c, _key, _at in vault.index.cameras()}
    known.update(r.camera_id for r in vault.index.recordings(state=None))
    if typed in known:
        return typed
    same = sorted(c for c in known if c.casefold() == typed.casefold())
    if len(same) == 1:
        return same[0]
    close = same or difflib.get_close_matches(typed.upper(), sorted(known), n=3, cutoff=0.6) \
        or difflib.get_close_matches(typed, sorted(known), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else \
        (f"; the vault knows {', '.join(sorted(known))}" if known else "; no camera is enrolled yet")
    raise VaultError(f"{what} {typed!r}: no such camera in this vault{hint}")
