"""`pieton bench desk`: the chief's desk under load.

- the server's time to render the recordings page with 10,000 recordings in the index
  (target ≤ 300 ms), after the sign-in, whose time (the passphrase's scrypt at age's
  default work factor) is reported too;
- from "play" to the first frame shown in a real browser (chromium headless) for a
  10-minute recording (target ≤ 1.5 s): the consultation form sent, the page loaded, the
  video playing;
- the server's memory (this process's resident size) while the recording streams
  (target ≤ 150 MB).
"""

from __future__ import annotations

import re
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import uvicorn

from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from recorder.evidence.age_keys import SCRYPT_WORK_FACTOR
from tools.benchmarks.vault import _make_spool
from tools.desk.app import DeskConfig, create_app
from tools.vault.index import RecordingRow
from tools.vault.ingest import ingest
from tools.vault.layout import init_vault
from tools.vault.vault import Vault

PASSPHRASE = "cheval agrafe batterie correcte"
PERSON = "Chef"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Client:
    """A browser's HTTP side: cookies kept, forms sent from the desk's own origin."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=120) as response:
            return response.read().decode()

    def post(self, path: str, fields: dict) -> str:
        request = urllib.request.Request(self.url + path, data=urllib.parse.urlencode(fields).encode(),
                                         headers={"Origin": self.url})
        with self.opener.open(request, timeout=120) as response:
            return response.read().decode()

    def sign_in(self) -> None:
        token = re.search(r'name="jeton" value="([^"]+)"', self.get("/connexion")).group(1)
        page = self.post("/connexion", {"jeton": token, "personne": PERSON, "phrase": PASSPHRASE})
        assert "Enregistrements" in page, "sign-in failed"

    def csrf(self, page: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _serve(config: DeskConfig):
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def _fill_index(vault: Vault, camera: str, count: int, start: float) -> None:
    """Index rows only (the listing reads nothing else): ``count`` recordings of 5 minutes."""
    vault.index.db.execute("BEGIN")
    for i in range(count):
        t = start + i * 400.0
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
        vault.index.add_recording(RecordingRow(f"{camera}_{stamp}_{i:06d}", camera, i, t, True, t + 3600,
                                               "stored", 150, 150 * 300_000, "0" * 64, False, None, t + 300))
    vault.index.db.execute("COMMIT")


def _first_frame_s(url: str, client: _Client, rid: str, profile: Path) -> tuple[float, float] | None:
    """Seconds from sending the consultation form (motive, requester) to its page shown with
    the timeline, and from "play" there to the first frame shown by chromium."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("play to first frame: chromium and chromium-driver are not installed (make system)")
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio", "--disable-gpu",
                 "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url + "/connexion")
        Select(driver.find_element(By.ID, "personne")).select_by_visible_text(PERSON)
        driver.find_element(By.ID, "phrase").send_keys(PASSPHRASE)
        driver.find_element(By.ID, "connexion").click()
        driver.get(f"{url}/enregistrements/{rid}")
        driver.find_element(By.ID, "c-demandeur").send_keys("bench")
        began = time.perf_counter()
        driver.find_element(By.ID, "consulter").click()
        driver.find_element(By.ID, "chronologie")
        consulted = time.perf_counter() - began
        began = time.perf_counter()
        driver.execute_script("""
            const v = document.getElementById('video');
            window.firstFrame = null;
            v.requestVideoFrameCallback(() => { window.firstFrame = performance.now(); });
            v.play();""")
        WebDriverWait(driver, 60, poll_frequency=0.02).until(
            lambda d: d.execute_script("return window.firstFrame !== null"))
        return consulted, time.perf_counter() - began
    finally:
        driver.quit()


def run(args) -> dict:
    quick = getattr(args, "quick", False)
    rows = 1000 if quick else 10_000
    minutes = 1.0 if quick else 10.0
    size = (320, 240, 10, 300) if quick else (1280, 720, 25, 4000)
    figures: dict = {"index_rows": rows, "recording_minutes": minutes}
    identity, recipient = generate_identity()
    with tempfile.TemporaryDirectory(prefix="pieton-bench-desk-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        chief = root / "chief.age"
        chief.write_bytes(encrypt_with_passphrase(identity.encode() + b"\n", PASSPHRASE,
                                                  work_factor=SCRYPT_WORK_FACTOR))
        (root / "police").mkdir()
        (root / "exports").mkdir()
        init_vault(root / "vault", [recipient], root / "police" / "register.jsonl")
        spool, signer, (rid,) = _make_spool(root, recipient, minutes, size)
        with Vault.open(root / "vault") as vault:
            vault.enrol("CAM-BENCH-01", signer.public_key_hex)
            ingest(vault, spool, progress=False)
            vault.enrol("CAM-BENCH-09", "ab" * 32)
            _fill_index(vault, "CAM-BENCH-09", rows - 1, time.time() - 20 * 86400)
        config = DeskConfig(root / "vault", {PERSON: chief}, root / "exports")
        server, thread, url = _serve(config)
        try:
            client = _Client(url)
            began = time.perf_counter()
            client.sign_in()
            figures["sign_in_s"] = round(time.perf_counter() - began, 3)
            print(f"sign-in (scrypt work factor {SCRYPT_WORK_FACTOR}, then the listing): {figures['sign_in_s']} s")
            times = []
            for _ in range(5):
                began = time.perf_counter()
                page = client.get("/enregistrements?tri=debut&ordre=desc&page=3")
                times.append(time.perf_counter() - began)
            assert "CAM-BENCH-09" in page
            figures["listing_ms"] = round(statistics.median(times) * 1000, 1)
            print(f"recordings page with {rows} recordings in the index: {figures['listing_ms']} ms "
                  f"(median of 5; target ≤ 300 ms)")
            baseline = _rss_mb()
            peak = [baseline]
            streaming = threading.Event()

            def sample():
                while streaming.is_set():
                    peak[0] = max(peak[0], _rss_mb())
                    time.sleep(0.05)
            page = client.get(f"/enregistrements/{rid}")
            client.post(f"/enregistrements/{rid}/consulter",
                        {"csrf": client.csrf(page), "motif": "judicial", "demandeur": "bench"})
            page = client.get(f"/enregistrements/{rid}")
            ticket = re.search(r'src="/lecture/([^"]+)"', page).group(1)
            streaming.set()
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            began = time.perf_counter()
            served = 0
            with client.opener.open(f"{url}/lecture/{ticket}", timeout=600) as response:
                while chunk := response.read(1 << 16):
                    served += len(chunk)
            streaming.clear()
            sampler.join()
            figures["stream_mb"] = round(served / 1e6, 1)
            figures["stream_s"] = round(time.perf_counter() - began, 2)
            figures["server_rss_mb_before"] = round(baseline, 1)
            figures["server_rss_mb_peak"] = round(peak[0], 1)
            print(f"streaming the {minutes:g}-minute recording ({figures['stream_mb']} MB in {figures['stream_s']} s): "
                  f"server resident {figures['server_rss_mb_before']} MB before, "
                  f"{figures['server_rss_mb_peak']} MB at most (target ≤ 150 MB)")
            timed = _first_frame_s(url, client, rid, root / "profile")
            if timed is not None:
                figures["consultation_s"], figures["play_to_first_frame_s"] = (round(x, 3) for x in timed)
                print(f"consultation (form sent to the page with the timeline of {minutes:g} minutes): "
                      f"{figures['consultation_s']} s")
                print(f"play to the first frame in chromium: {figures['play_to_first_frame_s']} s (target ≤ 1.5 s)")
        finally:
            server.should_exit = True
            thread.join(10)
    return figures
