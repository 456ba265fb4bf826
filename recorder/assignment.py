"""The shift's assignment of a camera to an agent, signed by an assigner (or a technician).

An assignment names the agent number (never a name), the camera it is bound to, a counter
against replay and an expiry (the end of the shift). The device keeps the agent number in
RAM only: its storage never holds an agent identity in clear, so after a restart the
camera is "agent not assigned" until assigned again. Only the highest counter accepted is
kept on disk, so an assignment cannot be replayed; the journal stores the agent number
encrypted to the chief (a personal field).

An end of assignment (``pieton assign --end``) is signed the same way with the next counter:
the camera drops the agent number at once, so a camera handed over never carries the
previous agent's number. Either can reach the camera over the serial link or as a file
(``*.assignment``) in the ``inbox/`` of the spool or of the SD card; a file is deleted once
offered, since it names the agent in clear.

Who may sign: the keys of ``[keys] assigners`` when the configuration lists any, and then
only them; a configuration without assigners keeps the technicians' keys (see
``assignment_signers``). An assigner key never signs a bundle: bundles trust
``[keys] technicians`` only, and the schema refuses a key listed in both.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.signer import verify_signature
from recorder.bundle import public_hex
from recorder.config_update import Answer
from recorder.errors import AssignmentError
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.evidence.format import (
    ASSIGNMENT_SUFFIX,
    CAMERA_ID_HELP,
    canonical,
    is_camera_id,
    parse_utc,
    utc_iso,
)
from recorder.inputs import InputError, loads_strict, read_bounded

CONTEXT = b"pieton/assignment/1"
KIND = "pieton/assignment/1"
END_KIND = "pieton/assignment-end/1"
MAX_SHIFT_S = 24 * 3600
MAX_BYTES = 4096
NOT_ASSIGNED = "agent not assigned"

REASONS = {
    "bad-format": "not a well-formed assignment",
    "bad-signature": "the signature does not verify",
    "unknown-signer": "the signer may not sign assignments for this device",
    "wrong-device": "the assignment is bound to another camera",
    "replayed": "the counter is not above the last accepted one (replay)",
    "expired": "the assignment's end of shift has passed",
    "too-long": "the assignment runs longer than a shift (24 h)",
}

_AGENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


_iso = utc_iso   # the one UTC time of the format module
_parse_iso = parse_utc


@dataclass(frozen=True)
class Assignment:
    agent: str
    device: str
    counter: int
    issued: float
    until: float
    signer: str

    def __repr__(self) -> str:  # no agent number: reprs end up in logs
        return f"<Assignment {self.device} counter={self.counter} until={_iso(self.until)}>"


@dataclass(frozen=True)
class AssignmentEnd:
    """The end of the assignment in force, before its expiry (a camera handed over)."""

    device: str
    counter: int
    issued: float
    signer: str


def assignment_signers(config) -> list[str]:
    """The keys that may sign assignments under ``config``: ``[keys] assigners`` when it
    lists any (the technicians' keys, which can reflash the fleet, then stay off the
    shift desk), else ``[keys] technicians``, so a configuration written before assigners
    existed keeps working."""
    keys = config.keys
    return list(keys.assigners) or list(keys.technicians)


def _check_common(device: str, counter) -> None:
    if not is_camera_id(device):
        raise AssignmentError("bad-format", f"device {device!r}: {CAMERA_ID_HELP}")
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 1:
        raise AssignmentError("bad-format", f"counter {counter!r}: a positive integer")


def _signed(key: Ed25519PrivateKey, body: dict) -> bytes:
    body["signer"] = public_hex(key)
    body["sig"] = key.sign(CONTEXT + b"\n" + canonical(body)).hex()
    return canonical(body)


def sign_assignment_end(key: Ed25519PrivateKey, device: str, counter: int, issued: float | None = None) -> bytes:
    """A signed end of assignment: the camera forgets its agent number."""
    _check_common(device, counter)
    return _signed(key, {"kind": END_KIND, "device": device, "counter": counter,
                         "issued": _iso(time.time() if issued is None else issued)})


def sign_assignment(key: Ed25519PrivateKey, agent: str, device: str, counter: int, until: float,
                    issued: float | None = None) -> bytes:
    """The signed assignment, as sent over the serial link (canonical JSON)."""
    if not isinstance(agent, str) or not _AGENT.fullmatch(agent):
        raise AssignmentError("bad-format", f"agent number {agent!r}: letters, digits and '-', at most 16")
    _check_common(device, counter)
    return _signed(key, {"kind": KIND, "agent": agent, "device": device, "counter": counter,
                         "issued": _iso(time.time() if issued is None else issued), "until": _iso(until)})


def read_assignment(data: bytes) -> Assignment:
    """An assignment (not an end), its signature checked."""
    offer = read_offer(data)
    if not isinstance(offer, Assignment):
        raise AssignmentError("bad-format", f"an end of assignment, not a {KIND} object")
    return offer


def read_offer(data: bytes) -> Assignment | AssignmentEnd:
    """Parse an assignment or an end of assignment and check its signature (trust,
    device, counter and expiry are the keeper's)."""
    if len(data) > MAX_BYTES:
        raise AssignmentError("bad-format", f"{len(data)} bytes, more than {MAX_BYTES}")
    try:
        body = loads_strict(data, "assignment")
    except InputError as exc:
        raise AssignmentError("bad-format", str(exc)) from None
    if not isinstance(body, dict) or body.get("kind") not in (KIND, END_KIND):
        raise AssignmentError("bad-format", f"not a {KIND} or {END_KIND} object")
    ending = body["kind"] == END_KIND
    expected = ({"kind", "device", "counter", "issued", "signer", "sig"} if ending else
                {"kind", "agent", "device", "counter", "issued", "until", "signer", "sig"})
    if set(body) != expected:
        raise AssignmentError("bad-format", f"fields {sorted(body)} are not {sorted(expected)}")
    if not ending and (not isinstance(body["agent"], str) or not _AGENT.fullmatch(body["agent"])):
        raise AssignmentError("bad-format", "agent number is not letters, digits and '-'")
    if not is_camera_id(body["device"]):
        raise AssignmentError("bad-format", f"device {body['device']!r} is not a camera id")
    counter = body["counter"]
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 1:
        raise AssignmentError("bad-format", f"counter {counter!r} is not a positive integer")
    try:
        issued = _parse_iso(body["issued"])
        until = None if ending else _parse_iso(body["until"])
    except ValueError as exc:
        raise AssignmentError("bad-format", str(exc)) from None
    for name in ("signer", "sig"):
        if not isinstance(body[name], str) or not re.fullmatch(r"[0-9a-f]+", body[name]):
            raise AssignmentError("bad-format", f"{name} is not hex")
    if not _HEX64.fullmatch(body["signer"]) or len(body["sig"]) != 128:
        raise AssignmentError("bad-format", "signer or signature has the wrong length")
    signed = {k: v for k, v in body.items() if k != "sig"}
    if not verify_signature(bytes.fromhex(body["signer"]), bytes.fromhex(body["sig"]),
                            CONTEXT + b"\n" + canonical(signed)):
        raise AssignmentError("bad-signature", f"signature by {body['signer'][:16]}... does not verify")
    if ending:
        return AssignmentEnd(body["device"], counter, issued, body["signer"])
    return Assignment(body["agent"], body["device"], counter, issued, until, body["signer"])


def _counter_of(data) -> int:
    """The counter a file claims, only to offer the files in order (the offer checks it)."""
    try:
        counter = json.loads(data)["counter"]
        return counter if isinstance(counter, int) else 0
    except (ValueError, TypeError, KeyError, RecursionError):
        return 0


class AssignmentKeeper:
    """The device's current assignment. ``trusted_keys()`` gives the keys that may sign
    assignments under the configuration in force (``assignment_signers``);
    ``wall_clock()`` the device's UTC time in seconds."""

    def __init__(self, state_dir: str | Path, journal, device_id: str, trusted_keys: Callable[[], list[str]],
                 *, wall_clock: Callable[[], float] = time.time):
        self.path = Path(state_dir) / "assignment-counter.json"
        self.journal = journal
        self.device_id = device_id
        self.trusted_keys = trusted_keys
        self.wall_clock = wall_clock
        self._current: Assignment | None = None
        self.on_unassigned: Callable[[str], None] | None = None   # told when an assignment ends or expires
        try:
            self.counter = int(json.loads(self.path.read_text())["counter"])
        except (OSError, ValueError, KeyError, TypeError):
            self.counter = 0

    def offer(self, data: bytes, origin: str = "serial") -> Answer:
        offer = None
        try:
            offer = read_offer(data)
            if offer.signer not in self.trusted_keys():
                raise AssignmentError("unknown-signer", f"signer {offer.signer[:16]}... may not sign assignments "
                                                        "here: it is not in [keys] assigners (or, with no "
                                                        "assigners, [keys] technicians) of the running configuration")
            if offer.device != self.device_id:
                raise AssignmentError("wrong-device", f"assignment for camera {offer.device!r}, "
                                                      f"this is {self.device_id!r}")
            if offer.counter <= self.counter:
                raise AssignmentError("replayed", f"counter {offer.counter} is not above "
                                                  f"{self.counter}, the last accepted")
            now = self.wall_clock()
            if isinstance(offer, Assignment):
                if offer.until <= now:
                    raise AssignmentError("expired", f"ended at {_iso(offer.until)}, now is {_iso(now)}")
                if offer.until - now > MAX_SHIFT_S:
                    raise AssignmentError("too-long", f"runs until {_iso(offer.until)}, more than 24 h ahead")
        except AssignmentError as exc:
            public = {"result": "refused", "code": exc.code, "message": exc.reason, "origin": origin}
            if offer is not None:
                public.update(counter=offer.counter, signer=offer.signer, device=offer.device)
            self._journal("assignment", public)
            return Answer(exc.code, exc.reason)
        # durable before it is used: a counter rolled back by a power cut would accept a replay
        write_atomic(self.path, json.dumps({"counter": offer.counter}).encode())
        self.counter = offer.counter
        if isinstance(offer, AssignmentEnd):
            return self._end(offer, origin)
        self._current = offer
        self._journal("assignment", {"result": "assigned", "device": offer.device, "counter": offer.counter,
                                     "until": _iso(offer.until), "signer": offer.signer,
                                     "origin": origin},
                      {"agent": offer.agent})
        return Answer("assigned", f"camera {offer.device} assigned until {_iso(offer.until)}")

    def _end(self, end: AssignmentEnd, origin: str) -> Answer:
        """The assignment in force ends now: recordings from here carry no agent number."""
        ended, self._current = self._current, None
        self._journal("assignment", {"result": "ended", "device": end.device, "counter": end.counter,
                                     "signer": end.signer, "origin": origin,
                                     "ended_counter": ended.counter if ended is not None else None,
                                     "status": NOT_ASSIGNED})
        what = f"assignment {ended.counter} ended" if ended is not None else "no assignment was in force"
        self._unassigned("assignment ended")
        return Answer("ended", f"camera {end.device}: {what}; {NOT_ASSIGNED}")

    def pickup_inbox(self, inbox: str | Path, origin: str = "inbox") -> list[tuple[str, Answer]]:
        """Offer every ``*.assignment`` file in ``inbox`` (the spool's or the SD card's),
        lowest counter first, then delete it: it names the agent in clear, which the
        device's storage never keeps. A file that cannot be read is refused and journaled."""
        inbox = Path(inbox)
        if not inbox.is_dir():
            return []
        found = []
        for path in inbox.iterdir():
            if path.suffix != ASSIGNMENT_SUFFIX or not path.is_file() or path.is_symlink():
                continue
            try:
                data = read_bounded(path, "assignment", limit=MAX_BYTES)
            except InputError as exc:
                data = exc
            found.append((_counter_of(data), path.name, path, data))
        answers = []
        for _, name, path, data in sorted(found, key=lambda f: f[:2]):
            if isinstance(data, InputError):
                answer = Answer("bad-format", str(data).replace(str(path), name))
                self._journal("assignment", {"result": "refused", "code": answer.code, "message": answer.message,
                                             "origin": f"{origin}:{name}"})
            else:
                answer = self.offer(data, origin=f"{origin}:{name}")
            answers.append((name, answer))
            path.unlink(missing_ok=True)
            fsync_dir(inbox)
        return answers

    def current(self, now: float | None = None) -> Assignment | None:
        """The assignment in force, or None (never assigned, or its shift has ended)."""
        now = self.wall_clock() if now is None else now
        if self._current is not None and self._current.until <= now:
            expired, self._current = self._current, None
            self._journal("assignment", {"result": "expired", "counter": expired.counter,
                                         "until": _iso(expired.until), "status": NOT_ASSIGNED})
            self._unassigned("assignment expired")
        return self._current

    def carry_over(self, previous: AssignmentKeeper) -> None:
        """Keep the shift's assignment across an in-place restart (a configuration
        applied between recordings): it lives in RAM only, never on the storage."""
        if previous._current is not None and previous._current.device == self.device_id:
            self._current = previous._current

    def agent_number(self, now: float | None = None) -> str | None:
        """The agent number recordings carry, or None: "agent not assigned"."""
        current = self.current(now)
        return current.agent if current is not None else None

    def status(self) -> dict:
        """For the status display and logs: no agent number."""
        current = self.current()
        if current is None:
            # "agent" is withheld from readable status (it may hold a number elsewhere):
            # "state" says it where `pieton ctl status` shows it
            return {"agent": NOT_ASSIGNED, "state": "NOT ASSIGNED: recordings carry no agent number",
                    "until": None}
        return {"agent": "assigned", "state": "assigned", "until": _iso(current.until)}

    def recording_static(self) -> dict:
        """What a recording's encrypted metadata carries about its agent."""
        current = self.current()
        if current is None:
            return {"agent": None, "agent_status": NOT_ASSIGNED}
        return {"agent": current.agent, "agent_status": "assigned", "assignment_counter": current.counter,
                "assignment_until": _iso(current.until)}

    def _unassigned(self, why: str) -> None:
        if self.on_unassigned is not None:
            self.on_unassigned(why)

    def _journal(self, event: str, public: dict, personal: dict | None = None) -> None:
        if self.journal is not None:
            self.journal.append(event, public, personal)

    def __repr__(self) -> str:
        return f"<AssignmentKeeper {self.device_id} counter={self.counter} {self.status()['agent']}>"
