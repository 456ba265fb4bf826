"""Making a copied recording folder durable on the vault's disk, in one flush.

An fsync per file makes the disk commit its journal and flush its cache once per file
(hundreds per recording); ``syncfs`` writes back everything dirty on the filesystem in one
pass, as ``cp -r`` followed by ``sync`` does. Linux reports writeback errors through
``syncfs`` since 5.8; on an older kernel, or without ``syncfs``, each file is fsynced.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from pathlib import Path

from recorder.evidence.chain import fsync_dir


def _kernel_reports_syncfs_errors() -> bool:
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
    except ValueError:
        return False
    return platform.system() == "Linux" and (major, minor) >= (5, 8)


def _load_syncfs():
    if not _kernel_reports_syncfs_errors():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_syncfs = _load_syncfs()


def make_durable(folder: Path) -> None:
    """Every file of ``folder`` and its listing on disk; raises OSError as fsync would."""
    if _syncfs is not None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _syncfs(fd) != 0:
                code = ctypes.get_errno() or errno.EIO
                raise OSError(code, f"syncfs of {folder}: {os.strerror(code)}")
        finally:
            os.close(fd)
        return
    for path in sorted(folder.iterdir()):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)
