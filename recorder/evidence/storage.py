"""The one judge of free space on the camera's storage.

Three thresholds, all from ``[storage]`` on a device: below ``low_space_mb`` the agent is
warned; a recording starts only with ``min_free_mb`` free beyond the reserve; every write
keeps ``reserve_bytes`` untouched so a segment can still be sealed, its metadata written and
the recording closed with its reason. The daemon's start check, the low-space warning and
the spool's own refusals all ask this one object, so a threshold (or a scenario's simulated
"disk filling") is seen the same everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from recorder.errors import StorageFull

MB = 1_000_000          # the configuration counts in MB, as `df -H` does
MiB = 1024 * 1024
DEFAULT_MIN_FREE_MB = 64
DEFAULT_RESERVE_BYTES = 1 * MiB


class Storage:
    """Free space of the medium holding ``directory``.

    ``min_free_bytes``: needed (beyond the reserve) to start a recording; ``low_space_bytes``:
    below it the agent is warned; ``reserve_bytes``: never given to media, kept to seal and
    close. ``simulated_free_mb``, when set, stands for the measured free space (a scenario's
    filling disk)."""

    def __init__(self, directory: str | Path, *, min_free_bytes: int = DEFAULT_MIN_FREE_MB * MB,
                 low_space_bytes: int = 0, reserve_bytes: int = DEFAULT_RESERVE_BYTES):
        self.directory = Path(directory)
        self.min_free_bytes = min_free_bytes
        self.low_space_bytes = low_space_bytes
        self.reserve_bytes = reserve_bytes
        self.simulated_free_mb: float | None = None

    @classmethod
    def from_config(cls, directory: str | Path, storage_config) -> Storage:
        """The storage authority a device's ``[storage]`` section describes."""
        return cls(directory, min_free_bytes=int(storage_config.min_free_mb * MB),
                   low_space_bytes=int(storage_config.low_space_mb * MB))

    def free_bytes(self) -> int:
        if self.simulated_free_mb is not None:
            return int(self.simulated_free_mb * MB)
        st = os.statvfs(self.directory)
        return st.f_bavail * st.f_frsize

    def capacity_bytes(self) -> int:
        """The size of the medium (what a recording could ever have, free or not)."""
        st = os.statvfs(self.directory)
        return st.f_blocks * st.f_frsize

    def unusable(self) -> str | None:
        """Why no recording could ever start on this medium with these thresholds, or None."""
        needed = self.min_free_bytes + self.reserve_bytes
        capacity = self.capacity_bytes()
        if needed > capacity:
            return (f"min_free_mb = {self.min_free_bytes // MB} needs more than the whole storage "
                    f"({capacity // MB} MB): no recording could ever start")
        return None

    def free_mb(self) -> float:
        return self.free_bytes() / MB

    def low(self) -> bool:
        """True when the agent should be told storage is running low."""
        return self.free_bytes() < self.low_space_bytes

    def start_refusal(self) -> str | None:
        """Why a recording may not start now (not enough free space), or None."""
        free = self.free_bytes()
        if free < self.min_free_bytes + self.reserve_bytes:
            return (f"storage full ({free // MB} MB free in {self.directory}, at least "
                    f"{-(-(self.min_free_bytes + self.reserve_bytes) // MB)} MB needed to start a recording)")
        return None

    def check_start(self) -> None:
        """StorageFull when a recording may not start."""
        why = self.start_refusal()
        if why is not None:
            raise StorageFull(why)

    def check_write(self, where: Path, incoming: int) -> None:
        """Refuse a write that would eat into the reserve kept for sealing and closing."""
        if self.free_bytes() - incoming < self.reserve_bytes:
            raise StorageFull(f"storage full: writing {incoming} bytes to {where} would leave less than "
                              f"the {self.reserve_bytes // 1024} KiB kept to seal and close")

    def __repr__(self) -> str:
        simulated = f" simulated={self.simulated_free_mb} MB" if self.simulated_free_mb is not None else ""
        return (f"<Storage {self.directory} min_free={self.min_free_bytes // MB} MB "
                f"reserve={self.reserve_bytes // 1024} KiB{simulated}>")
