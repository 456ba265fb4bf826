"""`pieton vault verify`: re-check every stored recording, the journal chain, and the
register against the journal."""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.evidence.format import MANIFEST_FILE
from recorder.evidence.journal import read_journal as read_device_journal
from recorder.evidence.spool import last_good_line
from tools.vault.ingest import verify_recording_folder
from tools.vault.journal import read_journal
from tools.vault.layout import parse_time
from tools.vault.mirror import check_mirrors
from tools.vault.register import cross_check, read_register
from tools.vault.vault import Vault


@dataclass
class AuditReport:
    recordings: int = 0
    problems: list[str] = field(default_factory=list)
    journal_lines: int = 0
    register_lines: int = 0
    quarantined: int = 0  # folders kept in quarantine (reported at ingest, never deleted)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(vault: Vault) -> AuditReport:
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
        if last_good_line(folder / MANIFEST_FILE)[1] != row.last_hash:
            report.problems.append(f"{row.recording_id}: manifest's last line is not the one ingested")
    for camera_dir in vault.layout.recordings.iterdir():
        for folder in camera_dir.iterdir() if camera_dir.is_dir() else []:
            if folder.name not in indexed:
                report.problems.append(f"{camera_dir.name}/{folder.name}: in the vault's folder but not indexed "
                                       "(an ingest was interrupted: run `pieton vault ingest` again)")
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
    report.problems.extend(_index_against_journal(vault, journal))
    mirror_problems, report.notes = check_mirrors(vault)
    report.problems.extend(mirror_problems)
    return report


def _index_against_journal(vault: Vault, journal) -> list[str]:
    """Every recording the index holds was journaled when it came in, and every one it
    says was erased was journaled when it went (unless those entries were pruned)."""
    ingested, erased = set(), set()
    for line in journal.lines:
        if line.get("event") == "recording-ingested":
            ingested.add(line.get("recording"))
        elif line.get("event") == "recording-erased":
            erased.add(line.get("recording"))
    kept_from = 0.0  # entries before this were pruned under the journal's signed checkpoint
    if journal.lines and journal.lines[0].get("seq", 0) > 0:
        kept_from = parse_time(str(journal.lines[0].get("at")))
    problems = []
    for row in vault.index.recordings(state=None):
        if row.recording_id not in ingested and row.ingested_at >= kept_from:
            problems.append(f"{row.recording_id}: in the index but no ingest in the vault journal")
        if row.state == "purged" and row.recording_id not in erased and (row.purged_at or 0) >= kept_from:
            problems.append(f"{row.recording_id}: marked erased in the index but no erasure in the vault journal")
    return problems
