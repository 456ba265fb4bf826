"""A stored vault for tests: spools written by the real evidence code (``make_spool``), a
vault made for the test's chief (``open_test_vault``, the ``vault`` fixture of conftest) and
recordings stored in it (``store_recordings``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from test_vault_media import make_segments

from drivers.signer import FileSigner
from recorder.evidence.spool import Spool
from tools.vault.ingest import ingest
from tools.vault.vault import Vault, init_vault

CAMERA = "CAM-T-001"
START = 1795000000.0  # 2026-11-18


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def make_spool(tmp_path, recipients, *, recordings=2, segments=2, name="spool", camera=CAMERA,
               signer=None, clock_source="gps", start=START):
    """A spool of ``recordings`` closed recordings of ``segments`` sealed 2 s segments each,
    10 minutes apart from ``start``, encrypted for ``recipients`` and signed by the camera."""
    spool_dir = tmp_path / name
    signer = signer or FileSigner.create(tmp_path / f"{name}-key" / "device-signing.key")
    wall = Clock(start)
    media = make_segments(segments)
    with Spool(spool_dir, signer, recipients, camera, "0" * 64, False, wall_clock=wall) as spool:
        spool.recover()
        for r in range(recordings):
            rec = spool.open_recording(wall.t, "agent", {"clock_source": clock_source, "pre_event_s": 4.0})
            rec.static["agent"] = "A-1234"
            rec.note({"type": "notice", "played": True})
            for s in range(segments):
                seg = rec.open_segment()
                rec.note({"type": "gps", "lat": 46.95 + 0.001 * s, "lon": 4.30 + 0.001 * r, "eph_m": 5})
                seg.write(media[s])
                wall.t += 2
                seg.seal()
            rec.note({"type": "bookmark"})
            rec.close("agent stop")
            wall.t += 600
    return spool_dir, signer


@contextlib.contextmanager
def open_test_vault(tmp_path, recipient: str) -> Iterator[Vault]:
    """A new vault in tmp_path/vault (its police register in tmp_path/police) for
    ``recipient``, its clock two hours after the recordings ``make_spool`` writes."""
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl")
    vault = Vault.open(tmp_path / "vault", clock=Clock(START + 7200))
    try:
        yield vault
    finally:
        vault.close()


def store_recordings(vault: Vault, tmp_path, recipient: str, *, recordings: int, segments: int):
    """Recordings of CAMERA (enrolled) written on a spool for ``recipient`` and ingested:
    the ids stored and the camera's signer."""
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=recordings, segments=segments)
    vault.enrol(CAMERA, signer.public_key_hex)
    return ingest(vault, spool_dir, progress=False).stored, signer
