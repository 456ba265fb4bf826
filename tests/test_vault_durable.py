"""Ingest makes each copied recording durable with one flush of the vault's filesystem
(as ``cp -r`` + ``sync``), before anything is stored or receipted; a flush the disk
refuses stores nothing and receipts nothing of that recording."""

from __future__ import annotations

import ctypes
import errno
import os
import threading

import pytest
from test_vault_flow import CAMERA, chief, make_spool, vault  # noqa: F401 (fixtures)

from tools.vault import durable
from tools.vault.ingest import ingest

needs_syncfs = pytest.mark.skipif(durable._syncfs is None, reason="no syncfs that reports errors here")


@needs_syncfs
def test_a_recording_is_flushed_once_not_fsynced_file_by_file(tmp_path, chief, vault, monkeypatch):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=3)
    vault.enrol(CAMERA, signer.public_key_hex)
    flushes, fsyncs = [], []
    real_syncfs, real_fsync = durable._syncfs, os.fsync

    def syncfs(fd):
        flushes.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_syncfs(fd)

    def fsync(fd):
        fsyncs.append(threading.current_thread().name)
        return real_fsync(fd)

    monkeypatch.setattr(durable, "_syncfs", syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok and len(report.stored) == 2
    # one flush per copied recording, made from its staged folder; no file-by-file fsync
    assert sorted(os.path.basename(p) for p in flushes) == sorted(report.stored)
    assert not [name for name in fsyncs if name != threading.main_thread().name]


@needs_syncfs
def test_a_flush_the_disk_refuses_stores_and_receipts_nothing_of_it(tmp_path, chief, vault, monkeypatch):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=2)
    vault.enrol(CAMERA, signer.public_key_hex)

    def failing_syncfs(fd):
        ctypes.set_errno(errno.EIO)  # the disk's write-back failed
        return -1

    monkeypatch.setattr(durable, "_syncfs", failing_syncfs)
    report = ingest(vault, spool_dir, progress=False)
    assert report.stored == []
    [(rid, why)] = report.failed
    assert "Input/output error" in why
    assert not vault.layout.recording(CAMERA, rid).exists()
    assert vault.index.recording(rid) is None
