"""A vault filled by a short simulated patrol (small video), a chief's identity protected
by a passphrase, the desk served in this process (its session clock in the test's hands),
and the desk's forms as a chief fills them in a browser."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from recorder.localtime import DEFAULT_ZONE, zone
from tests.conftest import SMALL_VIDEO
from tests.patrol_support import play_patrol
from tests.vault_support import CAMERA, make_spool
from tools.desk.app import DeskConfig, create_app
from tools.vault.demo import _device_key
from tools.vault.ingest import ingest
from tools.vault.persons import designate
from tools.vault.vault import Vault, init_vault

PASSPHRASE = "cheval agrafe batterie correcte"
PERSON = "Chef Martin"
MATRICULE = "PM-0042"
# Two recordings: one started by a press (notice given, a bookmark), one by a flagrant délit.
# Played yesterday at 17:40 UTC: within its month of retention whenever the tests run.
PATROL_START = (datetime.now(UTC) - timedelta(days=1)).replace(hour=17, minute=40, second=0, microsecond=0)
GESTURES = [{"at": 0.5, "do": "light", "lux": 350}, {"at": 3, "do": "press"}, {"at": 9, "do": "press"},
            {"at": 14, "do": "hold", "seconds": 3.5}, {"at": 21, "do": "hold", "seconds": 2},
            {"at": 30, "do": "hold", "seconds": 3.5}]


def patrol_local(minutes: float) -> str:
    """A local time in the vault's zone, ``minutes`` from the patrol's start, as a chief types it."""
    return (PATROL_START + timedelta(minutes=minutes)).astimezone(zone(DEFAULT_ZONE)).strftime("%d/%m/%Y %H:%M")


def patrol_vault(root: Path) -> dict:
    """Play the short patrol on simulated hardware, then init, enrol and ingest a vault."""
    identity, recipient = generate_identity()
    chief = root / "chief.age"
    chief.write_bytes(encrypt_with_passphrase(identity.encode() + b"\n", PASSPHRASE, work_factor=10))
    _player, config = play_patrol(root, recipient, GESTURES, 36, settings=SMALL_VIDEO, start=PATROL_START,
                                  name="Short patrol for the desk")
    device = root / "device"
    (root / "police").mkdir()
    (root / "exports").mkdir()
    init_vault(root / "vault", [recipient], root / "police" / "register.jsonl",
               communes=[str(c) for c in sorted((config.parent / "communes").glob("*.geojson"))])
    camera, key = _device_key(device / "spool")
    with Vault.open(root / "vault") as vault:
        designate(vault, [identity], name=PERSON, matricule=MATRICULE, role="responsable",
                  designated_by="Maire d'Autun", decision="arrêté 2026-118", recipient=recipient)
        vault.enrol(camera, key)
        report = ingest(vault, device / "spool", progress=False)
        assert report.ok and len(report.stored) == 2, report
    return {"root": root, "vault": root / "vault", "chief": chief, "recipient": recipient, "camera": camera,
            "matricule": MATRICULE,
            "recordings": sorted(report.stored), "exports": root / "exports",
            "register": root / "police" / "register.jsonl"}


def small_vault(root: Path, recordings: int = 1) -> dict:
    """A vault holding ``recordings`` recordings of 4 s (320x240) made yesterday, 10 minutes
    apart; the chief designated (their identity protected by PASSPHRASE)."""
    identity, recipient = generate_identity()
    chief = root / "chief.age"
    chief.write_bytes(encrypt_with_passphrase(identity.encode() + b"\n", PASSPHRASE, work_factor=10))
    (root / "police").mkdir()
    (root / "exports").mkdir()
    init_vault(root / "vault", [recipient], root / "police" / "register.jsonl")
    spool_dir, signer = make_spool(root, [recipient], recordings=recordings, segments=2, start=time.time() - 86400)
    with Vault.open(root / "vault") as vault:
        designate(vault, [identity], name=PERSON, matricule=MATRICULE, role="responsable",
                  designated_by="Maire", decision="arrêté 2026-118", recipient=recipient)
        vault.enrol(CAMERA, signer.public_key_hex)
        rids = sorted(ingest(vault, spool_dir, progress=False).stored)
        vault_key = vault.signer.public_key_hex
    return {"root": root, "vault": root / "vault", "chief": chief, "identity": identity, "recipient": recipient,
            "rids": rids, "exports": root / "exports", "register": root / "police" / "register.jsonl",
            "vault_key": vault_key}


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class ServedDesk:
    """The desk app under uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, made: dict, *, idle_s: float = 600.0):
        self.clock = ManualClock()
        config = DeskConfig(made["vault"], {PERSON: made["chief"]}, made["exports"], idle_s=idle_s)
        self.app = create_app(config, session_clock=self.clock)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the desk did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


def sign_in(driver, url: str, passphrase: str = PASSPHRASE) -> None:
    """Sign in to the desk at ``url`` as the chief, with ``passphrase``."""
    driver.get(url + "/connexion")
    Select(driver.find_element(By.ID, "personne")).select_by_visible_text(PERSON)
    driver.find_element(By.ID, "phrase").send_keys(passphrase)
    driver.find_element(By.ID, "connexion").click()


def fill_consultation(driver, *, requester: str, motive: str | None = None) -> None:
    """Fill the consultation form of the recording's page on screen and send it; with no
    ``motive`` the form's first one stays chosen."""
    if motive is not None:
        Select(driver.find_element(By.ID, "c-motif")).select_by_value(motive)
    driver.find_element(By.ID, "c-demandeur").send_keys(requester)
    driver.find_element(By.ID, "consulter").click()


def fill_extraction(driver, *, requester: str, recipient: str, name: str, motive: str | None = None) -> None:
    """Fill the extraction form of the recording's page on screen and send it; with no
    ``motive`` the motive is left unchosen (the desk must refuse)."""
    if motive is not None:
        Select(driver.find_element(By.ID, "e-motif")).select_by_value(motive)
    driver.find_element(By.ID, "e-demandeur").send_keys(requester)
    driver.find_element(By.ID, "e-destinataire").send_keys(recipient)
    driver.find_element(By.ID, "e-nom").send_keys(name)
    driver.find_element(By.ID, "extraire").click()
