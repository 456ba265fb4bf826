"""`pieton bench flash`: flashing round trips over a pty pair throttled to 115200 baud.

A camera (real listener, ConfigUpdater, device journal) on one end of a simulated cable
whose relay paces both directions at 10 bits a byte; `FlashClient` on the other. Each
round trip is timed from the first INFO frame to the device's RESULT, so it includes the
device's verification and installation. Flashes measured:

- configuration only: a changed TOML; the notice and boundaries the camera holds are left out;
- a new notice audio (spoken by espeak-ng), shipped as Opus (the default);
- the same notice shipped as raw WAV, as the peer figure (skipped with --quick).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from drivers.signer import FileSigner
from drivers.simcable import PtyCable
from recorder.bundle import build_bundle, load_technician_key, public_hex, read_bundle
from recorder.config import DEFAULT_CONFIG, load_config
from recorder.config_update import ConfigUpdater
from recorder.errors import BundleError
from recorder.evidence.age import generate_identity
from recorder.evidence.journal import DeviceJournal
from recorder.link.listener import device_listener
from tools.link_client import FlashClient

BAUD = 115200
TARGETS = {"config_only_s": 2.0, "new_notice_s": 15.0}
NEW_NOTICE = ("Attention, cette intervention est enregistrée par une caméra piéton. "
              "Vous pouvez demander que l'enregistrement soit déclenché.")


def _config(folder: Path, version_text: str, technician: str, recipient: str, notice: Path | None) -> Path:
    folder.mkdir(parents=True)
    shutil.copytree(DEFAULT_CONFIG.parent / "communes", folder / "communes")
    shutil.copy(notice or DEFAULT_CONFIG.with_name("notice-fr.wav"), folder / "notice-fr.wav")
    text = DEFAULT_CONFIG.read_text()
    text = text.replace("technicians = []", f'technicians = ["{technician}"]')
    text = text.replace("recipients = []", f'recipients = ["{recipient}"]')
    text = text.replace("Attention, cette intervention est enregistrée.", version_text)
    # a bundle is a device configuration: real feedback drivers, the vault key, the authorisation
    for kind, backend in (("leds", "gpiozero"), ("speaker", "sounddevice"), ("haptic", "gpiozero"),
                          ("button", "gpiozero")):
        text = text.replace(f'{kind} = "simulated"', f'{kind} = "{backend}"')
    text = text.replace('vault = ""', f'vault = "{technician}"')   # any Ed25519 public key will do here
    text = text.replace('arrete = ""', 'arrete = "2026-DSC-0412"').replace("communes = []", 'communes = ["71014"]')
    text = text.replace("# until = 2031-06-30", "until = 2099-12-31")
    (folder / "pieton.toml").write_text(text)
    return folder / "pieton.toml"


def _flash(client: FlashClient, data_full: bytes) -> dict:
    start = time.perf_counter()
    info = client.info()
    data = read_bundle(data_full).to_bytes(omit=set(info["files"]))
    answer = client.send("bundle", data)
    elapsed = time.perf_counter() - start
    if not answer.ok:
        raise BundleError(answer.code, f"the device refused the benchmark's bundle: {answer.message}")
    return {"seconds": round(elapsed, 3), "bytes_sent": len(data), "bundle_bytes": len(data_full),
            "answer": answer.code}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="pieton-bench-flash-") as tmp:
        tmp = Path(tmp)
        FileSigner.create(tmp / "tech.key")
        key = load_technician_key(tmp / "tech.key")
        tech = public_hex(key)
        _, recipient = generate_identity()
        notice = tmp / "new-notice.wav"
        subprocess.run(["espeak-ng", "-v", "fr", "-w", str(notice), NEW_NOTICE], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wav_bytes = notice.stat().st_size

        base = _config(tmp / "v1", "Attention, cette intervention est enregistrée.", tech, recipient, None)
        running = load_config(base)
        signer = FileSigner.create(tmp / "device" / "device.key")
        journal = DeviceJournal(tmp / "device" / "journal.jsonl", signer, [recipient])
        updater = ConfigUpdater(tmp / "device", running, journal)

        def bundle(version: int, notice_path=None, encoding="opus") -> bytes:
            path = _config(tmp / f"b{version}", f"Attention, enregistrement (v{version}).", tech, recipient,
                           notice_path)
            return build_bundle(path, key, version, device="CAM-SIM-001", notice_encoding=encoding)

        results: dict = {"baud": BAUD, "new_notice_wav_bytes": wav_bytes}
        with PtyCable(baud=BAUD) as cable, device_listener(cable.device_url, updater).start(), \
                FlashClient(cable.host_url, result_timeout=120) as client:
            first = _flash(client, bundle(1))  # the camera's first bundle: everything is sent
            print(f"first bundle, everything sent: {first['bytes_sent']} bytes in {first['seconds']:.2f} s")
            results["first_full"] = first
            runs = [("config_only", bundle(2)), ("new_notice_opus", bundle(3, notice))]
            if not args.quick:
                runs.append(("new_notice_wav", bundle(4, notice, "raw")))
            for name, data in runs:
                figures = _flash(client, data)
                results[name] = figures
                rate = figures["bytes_sent"] / figures["seconds"] / 1000
                print(f"{name:16s} {figures['bytes_sent']:7d} bytes sent of {figures['bundle_bytes']:7d}  "
                      f"{figures['seconds']:6.2f} s  ({rate:.1f} kB/s on a {BAUD}-baud line, "
                      f"answer {figures['answer']})")
            results["resends"] = client.resends
        results["config_only_s"] = results["config_only"]["seconds"]
        results["new_notice_s"] = results["new_notice_opus"]["seconds"]
        for key_name, target in TARGETS.items():
            verdict = "OK" if results[key_name] <= target else "OVER TARGET"
            print(f"{key_name}: {results[key_name]:.2f} s (target <= {target:.0f} s) {verdict}")
        print(f"new notice: {wav_bytes} bytes as WAV, "
              f"{results['new_notice_opus']['bytes_sent']} bytes sent as Opus")
        return results
