"""Ingest fsyncs every file of each copied recording, together from a few threads so they
share the filesystem's journal commits, before anything is stored or receipted; an fsync
the disk refuses stores nothing and receipts nothing of that recording."""

from __future__ import annotations

import errno
import json
import os
import threading

from test_vault_flow import chief  # noqa: F401 (a fixture)
from vault_support import CAMERA, make_spool

from tools.vault.ingest import ingest


def test_every_copied_file_is_fsynced_by_the_fsync_threads(tmp_path, chief, vault, monkeypatch):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=3)
    vault.enrol(CAMERA, signer.public_key_hex)
    fsynced: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd):
        fsynced.append((threading.current_thread().name, os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok and len(report.stored) == 2
    by_threads = {os.path.relpath(path, vault.layout.incoming) for name, path in fsynced
                  if name.startswith("vault-fsync")}
    for rid in report.stored:
        files = {f"{rid}/{p.name}" for p in (spool_dir / rid).iterdir() if p.is_file()}
        assert files <= by_threads  # each file of the copy, before it was stored
    assert len({name for name, _ in fsynced if name.startswith("vault-fsync")}) > 1  # side by side


def test_an_fsync_the_disk_refuses_stores_and_receipts_nothing_of_it(tmp_path, chief, vault, monkeypatch):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)
    real_fsync = os.fsync

    def fsync(fd):
        if threading.current_thread().name.startswith("vault-fsync") and \
                os.readlink(f"/proc/self/fd/{fd}").endswith("seg-000002.ts.age"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))  # the disk's write-back failed
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    report = ingest(vault, spool_dir, progress=False)
    assert report.stored == []
    [(rid, why)] = report.failed
    assert "Input/output error" in why
    assert not vault.layout.recording(CAMERA, rid).exists()
    assert vault.index.recording(rid) is None


def test_fsync_threads_stopped_by_any_error_store_and_receipt_nothing_of_it(tmp_path, chief, vault, monkeypatch):  # noqa: F811
    # Not only an OSError: whatever stops the fsyncs of a copy (here a RuntimeError, as the
    # fsync pool raises when it cannot start) leaves it not known durable, so not stored.
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)
    real_fsync = os.fsync
    second = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))[1]

    def fsync(fd):
        if threading.current_thread().name.startswith("vault-fsync") and second in os.readlink(f"/proc/self/fd/{fd}"):
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    report = ingest(vault, spool_dir, progress=False)
    [(rid, why)] = report.failed
    assert rid == second and "not made durable (RuntimeError" in why
    assert len(report.stored) == 1 and second not in report.stored
    receipt = json.loads(report.receipt.read_text())
    assert [r["id"] for r in receipt["recordings"]] == report.stored  # the camera keeps the other
    assert vault.index.recording(second) is None and not vault.layout.recording(CAMERA, second).exists()

