"""Making a copied recording folder durable on the vault's disk.

An fsync per file, one after the other, makes the filesystem commit its journal (and the
disk flush its cache) once per file: hundreds of times per recording. Started together
from a few threads, the fsyncs of a folder's files join the same journal commits (ext4
and xfs group them), while each still covers exactly its own file, whatever else writes
to the same disk (``syncfs`` would also wait for every other writer's data).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recorder.evidence.chain import fsync_dir

FSYNC_THREADS = 8


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_durable(folder: Path) -> None:
    """Every file of ``folder`` and its listing on disk; raises the first OSError."""
    files = [path for path in sorted(folder.iterdir()) if path.is_file()]
    with ThreadPoolExecutor(min(FSYNC_THREADS, max(1, len(files))), thread_name_prefix="vault-fsync") as pool:
        for done in [pool.submit(_fsync, path) for path in files]:
            done.result()
    fsync_dir(folder)
