"""`pieton vault verify`: re-check every stored recording, the journal chain, and the
register against the journal."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.vault.journal import read_journal
from tools.vault.register import cross_check, read_register
from tools.vault.vault import Vault


@dataclass
class AuditReport:
    recordings: int = 0
    problems: list[str] = field(default_factory=list)
    journal_lines: int = 0
    register_lines: int = 0
    quarantined: int = 0  # folders kept in quarantine (reported at ingest, never deleted)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(vault: Vault) -> AuditReport:
    from tools.vault.ingest import verify_recording_folder
    report = AuditReport()
    indexed = set()
    for row in vault.index.recordings(state=None):
        indexed.add(row.recording_id)
        folder = vault.layout.recording(row.camera_id, row.recording_id)
        if row.state == "purged":
            if folder.exists():
                report.problems.append(f"{row.recording_id}: erased in the index but still on disk "
                                       "(an erasure was interrupted: run `pieton vault purge`)")
            continue
        report.recordings += 1
        if not folder.is_dir():
            report.problems.append(f"{row.recording_id}: missing from the vault's disk")
            continue
        report.problems.extend(verify_recording_folder(vault, row.camera_id, folder))
        from recorder.evidence.spool import last_good_line
        if last_good_line(folder / "manifest.jsonl")[1] != row.last_hash:
            report.problems.append(f"{row.recording_id}: manifest's last line is not the one ingested")
    for camera_dir in vault.layout.recordings.iterdir():
        for folder in camera_dir.iterdir() if camera_dir.is_dir() else []:
            if folder.name not in indexed:
                report.problems.append(f"{camera_dir.name}/{folder.name}: in the vault's folder but not indexed "
                                       "(an ingest was interrupted: run `pieton vault ingest` again)")
    from recorder.evidence.journal import read_journal as read_device_journal
    for camera, key_hex, _at in vault.index.cameras():
        path = vault.layout.device_journal(camera)
        if path.is_file():
            report.problems.extend(f"device journal of {camera}: {p}"
                                   for p in read_device_journal(path, bytes.fromhex(key_hex)).problems)
    report.quarantined = sum((vault.layout.root / q[0]).exists() for q in vault.index.quarantined())
    journal = read_journal(vault.layout.journal, vault.public_key)
    report.journal_lines = len(journal.lines)
    report.problems.extend(f"vault journal {p}" for p in journal.problems)
    register = read_register(vault.settings["register"], vault.public_key)
    report.register_lines = len(register.lines)
    report.problems.extend(f"register {p}" for p in register.problems)
    report.problems.extend(cross_check(journal, register))
    return report
