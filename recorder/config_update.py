"""The device's acceptance of configuration bundles.

A bundle is accepted only if it is signed by a technician key trusted by the most recent
accepted configuration, targets this camera or its fleet, has a version strictly greater,
and passes the configuration check. It is applied between recordings (queued while one
runs); the previous configuration is kept. Every decision goes to the device journal with
the signer and the version.

On the device's state folder::

    config/v000007/      an installed bundle: bundle.pbn and the files it holds
    config/current ->    the configuration in force
    config/previous ->   the one before, kept
    config/pending ->    accepted during a recording, applied when it ends
    config/revoked.json  technician keys earlier configurations trusted and a later one removed
    config/floor.json    the highest version dropped by a fallback: the next must be newer
    config/fallback.json a fallback not yet written to the device journal

Before a bundle is accepted the device rehearses it (recorder.rehearsal): everything the
daemon builds from it is built, without hardware. A configuration that still fails (at
load or at start) is dropped for the previous one by :func:`fall_back`, never retried in a
loop; the floor and the revocations keep a fallback from reopening a rollback or trusting
a revoked key.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from recorder import card_answer, installed, provisioned
from recorder.bundle import (
    INSTALLED_NAME,
    Bundle,
    check_target,
    check_trust,
    check_version,
    fill_from,
    is_bundle,
    materialise,
    read_bundle,
)
from recorder.config import DEFAULT_CONFIG, Config, load_config, parse_config
from recorder.errors import BundleError, ConfigError
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.inputs import InputError, load_json_file, read_bounded
from recorder.rehearsal import rehearse

log = logging.getLogger(__name__)

# Codes of an accepted offer; anything else is a refusal reason code.
OK_CODES = ("applied", "queued", "assigned", "ended")


@dataclass(frozen=True)
class Answer:
    """The device's answer to what a technician sent: a reason code and words."""

    code: str
    message: str

    @property
    def ok(self) -> bool:
        return self.code in OK_CODES

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


def _point(link: Path, target: str | None) -> None:
    """Switch a symlink atomically (rename over it), or remove it."""
    if target is None:
        link.unlink(missing_ok=True)
    else:
        tmp = link.with_name(f".{link.name}.new")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)
    fsync_dir(link.parent)


def _load_installed(directory: Path) -> tuple[Bundle, Config]:
    """Re-read an installed bundle (signature and hashes again) and its configuration;
    one that no longer verifies is a ConfigError, never silently skipped."""
    try:
        bundle = read_bundle((directory / INSTALLED_NAME).read_bytes())
    except BundleError as exc:
        raise ConfigError([f"{directory / INSTALLED_NAME}: installed configuration does not verify "
                           f"[{exc.code}] {exc.reason}"]) from None
    except OSError as exc:
        raise ConfigError([f"{directory / INSTALLED_NAME}: installed configuration unreadable: "
                           f"{exc.strerror}"]) from None
    installed.restore(bundle, directory, time.time())  # a damaged notice is never played (L241-2)
    config = parse_config(bundle.files[0].data, f"bundle v{bundle.version} ({bundle.describe_target()})",
                          directory, signed=True)
    return bundle, replace(config, digest=bundle.digest)


def installed_config(state_dir: str | Path) -> tuple[Config, int] | None:
    """The configuration in force on this device and its version, or None when no bundle
    was ever installed (the provisioned plain configuration is in force, version 0)."""
    current = Path(state_dir) / "config" / "current"
    if not current.exists():
        return None
    bundle, config = _load_installed(current.resolve())
    return config, bundle.version


def _version_of(path: Path) -> int:
    try:
        return read_bundle(path.read_bytes()).version
    except (BundleError, OSError):
        return 0


class ConfigUpdater:
    """Receives bundles (serial link or SD card) and applies them between recordings.

    ``is_recording()`` tells whether a recording runs now; ``on_applied(config)`` is called
    (on the caller's thread) when a new configuration comes into force.
    """

    def __init__(self, state_dir: str | Path, running_config: Config, journal, device_id: str | None = None,
                 fleet: str | None = None, *, is_recording: Callable[[], bool] = lambda: False,
                 on_applied: Callable[[Config], None] | None = None, running_version: int | None = None):
        self.root = Path(state_dir) / "config"
        self.root.mkdir(parents=True, exist_ok=True)
        self.journal = journal
        self.device_id = device_id or running_config.device.camera_id
        self.fleet = fleet or running_config.device.fleet
        self.is_recording = is_recording
        self.on_applied = on_applied
        for leftover in self.root.glob(".staging-*"):  # an install cut by a power loss
            shutil.rmtree(leftover, ignore_errors=True)
        self.running = running_config
        self.running_version = 0
        self._running_bundle: Bundle | None = None
        if (self.root / "current").exists():
            self._running_bundle, _ = _load_installed((self.root / "current").resolve())
            self.running_version = self._running_bundle.version
        elif running_version:  # a provisioned bundle (given on the command line) is in force
            self.running_version = running_version
            kept = self.root / PROVISIONED_DIR
            if (kept / INSTALLED_NAME).exists():
                try:
                    bundle, _ = _load_installed(kept)
                    if bundle.version == running_version:
                        self._running_bundle = bundle   # its files fill thin transfers
                except ConfigError as exc:
                    log.warning("provisioned bundle unreadable: %s", exc)
        self.floor = _read_floor(self.root)
        self._journal_fallbacks()
        self.pending: tuple[Bundle, Config] | None = None
        self._origin = "pending at start"
        if (self.root / "pending").exists():
            try:
                self.pending = _load_installed((self.root / "pending").resolve())
            except ConfigError as exc:
                log.warning("dropping unreadable pending configuration: %s", exc)
                _point(self.root / "pending", None)

    # -- what the device holds --------------------------------------------------------

    @property
    def latest(self) -> tuple[int, Config]:
        """The most recent accepted configuration: the pending one, else the running one."""
        if self.pending is not None:
            return self.pending[0].version, self.pending[1]
        return self.running_version, self.running

    @property
    def version_floor(self) -> int:
        """A new bundle's version must exceed this: the latest accepted one, and any bundle
        dropped by a fallback."""
        return max(self.latest[0], self.floor)

    def trusted_technicians(self) -> list[str]:
        """The keys that may sign the next bundle or an assignment: the latest accepted
        configuration's, never a revoked one (after a fallback, the configuration in force
        may list a key the failed bundle revoked: it stays revoked)."""
        revoked = set(self._revoked())
        return [k for k in self.latest[1].keys.technicians if k not in revoked]

    def _journal_fallbacks(self) -> None:
        """Journal the fallbacks and repairs made before this start (the journal did not exist yet)."""
        if self.journal is not None:
            installed.journal_repairs(self.root, self.journal)
            provisioned.journal_faults(self.root, self.journal)
        note = self.root / FALLBACK_NOTE
        if not note.exists():
            return
        for entry in _read_json_list(note):
            self._journal("config fallback", entry)
        note.unlink(missing_ok=True)
        fsync_dir(self.root)

    def _held_bundles(self) -> list[Bundle]:
        """The running bundle and the pending one, those there are."""
        return [b for b in (self._running_bundle, self.pending[0] if self.pending else None) if b is not None]

    def held_file(self, sha256: str) -> bytes | None:
        """A file of the running or pending bundle, by hash (fills thin transfers)."""
        for bundle in self._held_bundles():
            for f in bundle.files:
                if f.sha256 == sha256:
                    return f.data
        return None

    def held_hashes(self) -> list[str]:
        hashes = []
        for bundle in self._held_bundles():
            hashes += [f.sha256 for f in bundle.files if f.sha256 not in hashes]
        return hashes

    def _revoked(self) -> list[str]:
        return _read_json_list(self.root / "revoked.json")

    def info(self) -> dict:
        return {"camera_id": self.device_id, "fleet": self.fleet, "config_version": self.running_version,
                "pending_version": self.pending[0].version if self.pending else None,
                "version_floor": self.version_floor, "files": self.held_hashes()}

    # -- offers -----------------------------------------------------------------------

    def offer(self, data: bytes, origin: str = "serial") -> Answer:
        """Check a bundle; install it now when no recording runs, else queue it."""
        bundle = None
        staging = None
        try:
            bundle = read_bundle(data)
            check_trust(bundle, self.trusted_technicians(), self._revoked())
            check_target(bundle, self.device_id, self.fleet)
            check_version(bundle, self.version_floor)
            bundle = fill_from(bundle, self.held_file)
            try:
                staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
                config = materialise(bundle, staging)
            except OSError as exc:
                raise BundleError("storage", f"cannot install: {exc.strerror or exc}") from None
            try:
                rehearse(config, self.root)
            except ConfigError as exc:
                raise BundleError("config-invalid", "\n".join(exc.problems)) from None
        except BundleError as exc:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            public = {"code": exc.code, "message": exc.reason, "origin": origin}
            if bundle is not None:
                public.update(version=bundle.version, signer=bundle.signer, target=bundle.describe_target())
            self._journal("config refused", public)
            log.warning("configuration refused: %s", exc)
            return Answer(exc.code, exc.reason)
        name = f"v{bundle.version:06d}"
        final = self.root / name
        if final.exists():  # a pending bundle of that version was replaced; never the running one
            shutil.rmtree(final)
        os.replace(staging, final)
        fsync_dir(self.root)
        stale = (self.root / "pending").resolve() if self.pending is not None else None
        _point(self.root / "pending", name)
        if stale is not None and stale != final:
            shutil.rmtree(stale, ignore_errors=True)
        self.pending = (bundle, config)
        self._origin = origin
        if self.is_recording():
            return Answer("queued", f"version {bundle.version} accepted; it will be applied when the "
                                    "current recording ends")
        self.apply_pending(False)
        return Answer("applied", f"version {bundle.version} signed by {bundle.signer[:16]}... is in force")

    def apply_pending(self, recording_active: bool | None = None) -> Config | None:
        """Bring the pending configuration into force, unless a recording runs.
        Returns the new Config, or None when nothing was applied."""
        if self.pending is None:
            return None
        if recording_active if recording_active is not None else self.is_recording():
            return None
        bundle, config = self.pending
        old_keys = set(self.running.keys.technicians)
        new_keys = set(config.keys.technicians)
        revoked = (set(self._revoked()) | (old_keys - new_keys)) - new_keys
        # durable: a torn revoked.json reads as no revocation at all
        write_atomic(self.root / "revoked.json", json.dumps(sorted(revoked)).encode())
        current = self.root / "current"
        old_dir = current.resolve() if current.exists() else None
        if old_dir is not None:
            _point(self.root / "previous", old_dir.name)
        _point(current, f"v{bundle.version:06d}")
        _point(self.root / "pending", None)
        previous_version = self.running_version
        for stale in self.root.glob("v*"):  # keep the running and the previous one only
            if stale.name not in (f"v{bundle.version:06d}", old_dir.name if old_dir else None):
                shutil.rmtree(stale, ignore_errors=True)
        self.running, self.running_version, self._running_bundle = config, bundle.version, bundle
        self.pending = None
        self._journal("config applied", {"version": bundle.version, "previous_version": previous_version,
                                         "signer": bundle.signer, "target": bundle.describe_target(),
                                         "created": bundle.created, "digest": config.digest,
                                         "origin": self._origin, "revoked": sorted(revoked & old_keys)})
        log.info("configuration version %d applied", bundle.version)
        if self.on_applied is not None:
            self.on_applied(config)
        return config

    def pickup_inbox(self, card_dir: str | Path, *, signer=None, now: Callable[[], float] = time.time
                     ) -> list[tuple[str, Answer]]:
        """Offer every bundle left in ``card_dir/inbox/`` (pieton config flash --dir), oldest
        version first; move each to ``inbox/done/`` (accepted) or ``inbox/refused/`` so it is
        offered once, and write the answer beside them, signed by ``signer`` (the device key;
        recorder.card_answer), for `pieton config answer --dir`."""
        inbox = Path(card_dir) / "inbox"
        if not inbox.is_dir():
            return []
        answers = []
        for path in sorted((p for p in inbox.iterdir() if p.is_file() and p.suffix == ".pbn"), key=_version_of):
            before = self.running_version
            try:
                data = path.read_bytes()
            except OSError as exc:
                answers.append((path.name, Answer("bad-format", f"cannot read {path}: {exc.strerror}")))
                continue
            answer = self.offer(data, origin=f"card:{path.name}")
            answers.append((path.name, answer))
            try:
                offered = read_bundle(data).version
            except BundleError:
                offered = None
            try:
                folder = inbox / (card_answer.DONE if answer.ok else card_answer.REFUSED)
                folder.mkdir(exist_ok=True)
                os.replace(path, folder / path.name)
                card_answer.write_answer(inbox, path.name, answer.code, answer.message, accepted=answer.ok,
                                         camera_id=self.device_id, offered_version=offered,
                                         version_before=before, version_after=self.running_version,
                                         now=now(), signer=signer)
            except OSError as exc:   # a card pulled out or full: the journal has the decision
                log.warning("cannot write the answer to %s on the card: %s", path.name, exc)
        return answers

    def _journal(self, event: str, public: dict) -> None:
        if self.journal is not None:
            self.journal.append(event, public)

    def __repr__(self) -> str:
        pending = self.pending[0].version if self.pending else None
        return f"<ConfigUpdater {self.device_id} running=v{self.running_version} pending={pending}>"


def _read_json_list(path: Path) -> list:
    """A small JSON list the device wrote itself; a missing or damaged one reads as empty."""
    try:
        value = load_json_file(path, "settings")
    except InputError:
        return []
    return value if isinstance(value, list) else []


def _read_floor(root: Path) -> int:
    """The version floor a fallback left (0 without one)."""
    try:
        value = load_json_file(root / FLOOR_FILE, "settings")
    except InputError:
        return 0
    version = value.get("version") if isinstance(value, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def fall_back(state_dir: str | Path, reason: str) -> dict | None:
    """Drop the installed configuration in force (it fails at load or at start) for the one
    before it: the previous installed bundle, else the provisioned configuration. The failed
    bundle's version becomes the floor the next bundle must exceed, revoked.json is left as
    it is (every revocation made since stays), and the fallback is noted for the device
    journal. Returns the note, or None when nothing installed is left to drop."""
    root = Path(state_dir) / "config"
    current = root / "current"
    if not current.is_symlink():
        return None
    failed_dir = root / os.readlink(current)
    try:
        failed_version = int(failed_dir.name.lstrip("v"))
    except ValueError:
        failed_version = 0
    floor = max(_read_floor(root), failed_version)
    write_atomic(root / FLOOR_FILE, json.dumps({"version": floor}).encode())
    previous = root / "previous"
    back_to = os.readlink(previous) if previous.is_symlink() and previous.exists() else None
    _point(current, back_to)
    _point(previous, None)
    if failed_dir.name != back_to:
        shutil.rmtree(failed_dir, ignore_errors=True)
    note = {"failed_version": failed_version, "reason": reason[:2000],
            "version": int(back_to.lstrip("v")) if back_to else 0,
            "to": back_to or "provisioned configuration", "version_floor": floor}
    notes = _read_json_list(root / FALLBACK_NOTE) + [note]
    write_atomic(root / FALLBACK_NOTE, json.dumps(notes[-16:]).encode())
    log.error("configuration v%d failed (%s): fell back to %s", failed_version, reason, note["to"])
    return note


PROVISIONED_DIR = provisioned.PROVISIONED_DIR
FLOOR_FILE = "floor.json"
FALLBACK_NOTE = "fallback.json"


def load_device_config(path: str | Path | None, state_dir: str | Path) -> tuple[Config, int]:
    """The configuration a device starts with, and its version.

    A bundle flashed since provisioning wins. Otherwise the file given on the command
    line: a signed bundle (installed at provisioning; its signer must be one of the
    technicians it lists itself, the first trust anchor) or a plain TOML (version 0,
    accepted only in simulation or with --unsigned-config; the daemon checks that).
    An installed bundle that no longer loads is dropped for the one before (fall_back)."""
    while True:
        try:
            installed = installed_config(state_dir)
            break
        except ConfigError as exc:
            if fall_back(state_dir, "; ".join(exc.problems)) is None:
                raise
    if installed is not None:
        return installed
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        data = read_bounded(path, "bundle", what=f"{path}: configuration")  # never an endless read
    except InputError as exc:
        if path.suffix in (".bundle", ".pbn") or provisioned.has_copy(state_dir):
            return provisioned.load(path, None, state_dir, str(exc))
        raise ConfigError([str(exc)]) from None
    if not is_bundle(data) and path.suffix not in (".bundle", ".pbn"):
        # a plain TOML (simulation, development); a notice at fault does not stop the daemon
        return load_config(path, notice_fault_ok=True), 0
    return provisioned.load(path, data, state_dir)   # a damaged one never stops the daemon
