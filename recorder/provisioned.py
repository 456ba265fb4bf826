"""The provisioned bundle: the signed configuration installed with the daemon
(``/etc/pieton/pieton.bundle``, given to `pieton run --config`), in force until a bundle is
flashed.

It is read again at every start. A good one (it verifies, and its signer is one of the
technicians it lists: the first trust anchor) is installed under ``config/provisioned/``,
staged first, so a damaged one never overwrites the last good copy. A damaged one
(unreadable, cut short, altered, signed by a key it does not list) never stops the daemon,
which must stay reachable (CSI L241-2 "refusing starts", DESIGN.md):

- the copy installed at the last good start is run instead: the damage is journaled
  (a "config fallback" naming the file) and named in the status (``config.provisioned_fault``);
- with no good copy, the daemon serves its status and serial link only, recording nothing
  (maintenance), its status naming the bundle and the fault, and starts again on the file
  as soon as it changes. No technician key is trusted then, so the link refuses a flashed
  bundle and says why: a camera takes its first trust anchor only from the file installed
  with the daemon, never from whoever holds a cable.

`pieton config check` stays strict: it reads the file itself, not this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from recorder import installed
from recorder.bundle import INSTALLED_NAME, OWN, check_trust, materialise, read_bundle
from recorder.config import DEFAULT_CONFIG, Config, load_config, parse_config
from recorder.errors import BundleError, ConfigError
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.evidence.format import utc_iso
from recorder.inputs import InputError, load_json_file

log = logging.getLogger(__name__)

PROVISIONED_DIR = "provisioned"
FAULT_NOTE = "provisioned-fault.json"
JOURNAL_EVENT = "config fallback"   # from the damaged bundle to its kept copy
WATCH_INTERVAL_S = 5.0


class ProvisionedDamaged(ConfigError):
    """The provisioned bundle is damaged and no good copy of it is installed: the daemon
    runs in maintenance on ``stand_in`` (link settings only, no technician trusted)."""

    def __init__(self, problems: list[str], stand_in: Config):
        super().__init__(problems)
        self.stand_in = stand_in


def load(path: Path, data: bytes | None, state_dir: str | Path, problem: str | None = None) -> tuple[Config, int]:
    """The provisioned bundle at ``path`` (its bytes ``data``, or None with ``problem`` when
    it could not be read), installed; else its last good copy; else ProvisionedDamaged."""
    root = Path(state_dir) / "config"
    if data is not None:
        try:
            return _install(data, root, path)
        except BundleError as exc:
            problem = f"{path}: configuration bundle refused [{exc.code}] {exc.reason}"
    problem = problem or f"{path}: configuration bundle unreadable"
    try:
        config, version = _kept_copy(root / PROVISIONED_DIR)
    except ConfigError as exc:
        why = [problem, "no good copy of it is installed on this camera"
               + (f" ({'; '.join(exc.problems)})" if (root / PROVISIONED_DIR / INSTALLED_NAME).exists() else "")
               + ": recording nothing until a good bundle is installed in its place"]
        log.error("%s", "; ".join(why))
        raise ProvisionedDamaged(why, stand_in(path, why)) from None
    log.error("%s: running on the copy of version %d installed at the last good start", problem, version)
    _note(root, {"failed": str(path), "reason": problem[:2000], "version": version,
                 "to": "the kept copy of the provisioned bundle", "at": utc_iso(time.time())})
    return replace(config, provisioned_fault=problem), version


def _install(data: bytes, root: Path, path: Path) -> tuple[Config, int]:
    bundle = read_bundle(data)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        config = materialise(bundle, staging)
        check_trust(bundle, list(config.keys.technicians), where=OWN)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = root / PROVISIONED_DIR
    old = root / ".staging-replaced"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    fsync_dir(root)
    shutil.rmtree(old, ignore_errors=True)
    # read back from where it now lives (the files the configuration references)
    config = parse_config(bundle.files[0].data, config.source, final, signed=True)
    return replace(config, source=str(path), digest=bundle.digest), bundle.version


def has_copy(state_dir: str | Path) -> bool:
    return (Path(state_dir) / "config" / PROVISIONED_DIR / INSTALLED_NAME).is_file()


def _kept_copy(directory: Path) -> tuple[Config, int]:
    """The copy installed at the last good start, verified again as at its first start."""
    try:
        bundle = read_bundle((directory / INSTALLED_NAME).read_bytes())
    except BundleError as exc:
        raise ConfigError([f"{directory / INSTALLED_NAME}: [{exc.code}] {exc.reason}"]) from None
    except OSError as exc:
        raise ConfigError([f"{directory / INSTALLED_NAME}: {exc.strerror}"]) from None
    installed.restore(bundle, directory, time.time())   # its notice and boundaries as signed
    config = parse_config(bundle.files[0].data, f"{directory / INSTALLED_NAME} (kept copy, v{bundle.version})",
                          directory, signed=True)
    try:
        check_trust(bundle, list(config.keys.technicians), where=OWN)
    except BundleError as exc:
        raise ConfigError([f"{directory / INSTALLED_NAME}: [{exc.code}] {exc.reason}"]) from None
    return replace(config, digest=bundle.digest), bundle.version


def stand_in(path: Path, why: list[str]) -> Config:
    """What maintenance runs on when nothing verified is left: the packaged defaults for the
    link and storage, no technician, no recipient, named after the damaged bundle."""
    config = load_config(DEFAULT_CONFIG, notice_fault_ok=True)
    return replace(config, source=f"{path} (damaged: {'; '.join(why)[:300]})", provisioned_fault=why[0])


def _note(root: Path, entry: dict) -> None:
    same = {k: v for k, v in entry.items() if k != "at"}
    notes = [n for n in pending_notes(root) if {k: v for k, v in n.items() if k != "at"} != same] + [entry]
    try:
        write_atomic(root / FAULT_NOTE, json.dumps(notes[-16:]).encode())
    except OSError as exc:
        log.error("cannot note the damaged provisioned bundle for the journal: %s", exc)


def pending_notes(root: Path) -> list[dict]:
    try:
        notes = load_json_file(root / FAULT_NOTE, "settings")
    except InputError:
        return []
    return [n for n in notes if isinstance(n, dict)] if isinstance(notes, list) else []


def journal_faults(root: Path, journal) -> None:
    """Write the noted faults to the device journal (not open when the configuration was
    loaded), then forget them."""
    for note in pending_notes(root):
        journal.append(JOURNAL_EVENT, note)
    if (root / FAULT_NOTE).exists():
        (root / FAULT_NOTE).unlink()
        fsync_dir(root)


def _signature(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


async def watch(path: Path, on_change, interval: float = WATCH_INTERVAL_S) -> None:
    """Call ``on_change()`` once the damaged file at ``path`` is replaced (maintenance)."""
    first = _signature(path)
    while _signature(path) == first:
        await asyncio.sleep(interval)
    log.info("%s changed: starting again on it", path)
    on_change()
