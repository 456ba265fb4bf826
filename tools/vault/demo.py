"""The end of `pieton demo`: the patrol's recordings go into a vault, one is extracted for
a judicial procedure to an MP4 that ffprobe reads, and the register is printed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from recorder.config import DEFAULT_CONFIG
from recorder.evidence.age import load_identities
from recorder.evidence.format import MANIFEST_FILE, parse_recording_id
from recorder.localtime import format_local
from recorder.position.geofence import load_boundary
from tools.vault import authorisation
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.persons import designate, identify, read_persons
from tools.vault.register_view import as_text, register_rows
from tools.vault.report import check_report
from tools.vault.vault import Vault, init_vault


def _device_key(spool_dir: Path) -> tuple[str, str] | None:
    """(camera id, device key) as the first recording's opened line states them; a real
    chief reads the key off the camera at provisioning, the demo reads its own spool."""
    for folder in sorted(spool_dir.iterdir()):
        if parse_recording_id(folder.name) and (folder / MANIFEST_FILE).is_file():
            first = json.loads((folder / MANIFEST_FILE).read_text().splitlines()[0])
            return first["camera_id"], first["device_key"]
    return None


def vault_epilogue(root: str | Path, spool_dir: str | Path, chief_identity: str | Path, recipient: str,
                   *, out=print) -> int:
    """Ingest ``spool_dir`` into ``root/vault`` (register in ``root/police``), extract the
    first stored recording for a judicial procedure, check the MP4 with ffprobe and the
    report with the vault key, print the register. Returns an exit code."""
    root, spool_dir = Path(root), Path(spool_dir)
    found = _device_key(spool_dir)
    if found is None:
        out("vault: the patrol left no recording to offload")
        return 1
    camera, device_key = found
    vault_dir, police = root / "vault", root / "police"
    police.mkdir(parents=True, exist_ok=True)
    register = police / "register.jsonl"
    if not (vault_dir / "vault.json").exists():
        communes = sorted((DEFAULT_CONFIG.parent / "communes").glob("*.geojson"))
        init_vault(vault_dir, [recipient], register, communes=[str(c) for c in communes])
    identities = load_identities(chief_identity)
    with Vault.open(vault_dir) as vault:
        if not read_persons(vault):  # the chief designates himself first, as a real chief does
            designate(vault, identities, name="Chef de la police municipale (démo)", matricule="PM-DEMO",
                      role="responsable", designated_by="Maire (démo)", decision="arrêté de démonstration",
                      recipient=recipient)
            out("vault: the demo's chief designated as PM-DEMO (`pieton vault designate`, R241-12)")
        identify(vault, identities, "demo")  # every operation below is logged as PM-DEMO's
        if authorisation.current(vault) is None:  # a demo arrêté: a real one comes from the prefect
            communes = sorted({b.insee for b in map(load_boundary, vault.settings["communes"]) if b.insee})
            authorisation.authorise(vault, "DEMO-0001", format_local(vault.now(), vault.timezone)[:10], 1, communes)
            out(f"vault: demo arrêté DEMO-0001 recorded (1 camera, communes {', '.join(communes)})")
        if vault.index.camera_key(camera) != device_key:
            authorisation.enrol(vault, camera, device_key)
        report = ingest(vault, spool_dir, progress=False)
        out(f"\nvault: {len(report.stored)} recording(s) offloaded from {camera} and verified, "
            f"{len(report.already)} already held, {len(report.quarantined)} quarantined; "
            f"receipt {report.receipt.name if report.receipt else '(none)'}")
        for rid, problems in report.quarantined:
            out(f"  QUARANTINED {rid}: {problems[0]}")
        stored = [r.recording_id for r in vault.index.recordings(camera=camera)]
        if not stored:
            out("vault: nothing stored to extract")
            return 1
        target = stored[0]
        exports = root / "exports"
        exports.mkdir(exist_ok=True)
        n = 1
        while (exports / f"pv-demo-{n:03d}.mp4").exists():
            n += 1
        mp4 = exports / f"pv-demo-{n:03d}.mp4"
        result = extract(vault, Request([target], "judicial", "OPJ Durand, commissariat d'Autun",
                                        "Parquet du tribunal judiciaire d'Autun", mp4), identities)
        vault_key = vault.signer.public_key_hex
        rows = register_rows(vault)
    out(f"vault: extracted {target} for a judicial procedure to {mp4} "
        f"({result.report['mp4']['duration_s']} s), report {result.report_path.name} and {result.html_path.name}")
    if shutil.which("ffprobe"):
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
                                "-of", "json", str(mp4)], capture_output=True, text=True)
        if probe.returncode != 0:
            out(f"vault: ffprobe cannot read {mp4}: {probe.stderr.strip()}")
            return 1
        info = json.loads(probe.stdout)
        out(f"ffprobe: {', '.join(s['codec_name'] for s in info['streams'])}, "
            f"{float(info['format']['duration']):.1f} s")
    check_report(result.report_path, mp4, vault_key)
    out(f"check-report: signature and MP4 hash verify against vault key {vault_key[:16]}...")
    out(f"\nregister ({register}; `pieton vault register` prints it):")
    out(as_text(rows))
    return 0
