"""`pieton bench desk`: the chief's desk under load.

- the server's time to render the recordings page with 10,000 recordings in the index
  (target ≤ 300 ms), after the sign-in, whose time (the passphrase's scrypt at age's
  default work factor) is reported too;
- from "play" to the first frame shown in a real browser (chromium headless) for a
  10-minute recording (target ≤ 1.5 s): the consultation form sent, the page loaded, the
  video playing;
- the server's memory while the recording streams: the resident size of the `pieton desk`
  process, sampled every 20 ms (target ≤ 150 MB); its high-water mark is reported too (the
  sign-in's scrypt at age's default work factor takes 256 MiB for a second).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from recorder.evidence.age_keys import SCRYPT_WORK_FACTOR
from tools.benchmarks.vault import _make_spool
from tools.vault.index import RecordingRow
from tools.vault.ingest import ingest
from tools.vault.persons import designate
from tools.vault.vault import Vault, init_vault

PASSPHRASE = "cheval agrafe batterie correcte"
PERSON = "Chef"


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, resident at most so far) of process ``pid``, in MB."""
    now = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return now, peak


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


def _serve(root: Path, chief: Path) -> tuple[subprocess.Popen, str]:
    """`pieton desk` in its own process, as on the desk machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tools.cli", "desk", str(root / "vault"), "--exports",
                               str(root / "exports"), "--person", f"{PERSON}={chief}", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "MALLOC_ARENA_MAX": "2"})  # as systemd/pieton-desk.service
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/connexion", timeout=5).close()
            return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the desk did not start: {server.stderr.read().decode()[-500:]}") from None
            time.sleep(0.2)


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
    # Selenium, a development dependency, only when the benchmark drives the browser.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tools.desk.browser import headless_chromium
    driver = headless_chromium(profile, "--autoplay-policy=no-user-gesture-required")
    try:
        driver.get(url + "/connexion")
        Select(driver.find_element(By.ID, "personne")).select_by_visible_text(PERSON)
        driver.find_element(By.ID, "phrase").send_keys(PASSPHRASE)
        driver.find_element(By.ID, "connexion").click()
        driver.implicitly_wait(30)
        driver.find_element(By.ID, "liste")  # signed in (the passphrase's scrypt takes a second or more)
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
            designate(vault, [identity], name="Chef (banc d'essai)", matricule="PM-BENCH", role="responsable",
                      designated_by="Maire", decision="banc d'essai", recipient=recipient)
            vault.enrol("CAM-BENCH-01", signer.public_key_hex)
            ingest(vault, spool, progress=False)
            vault.enrol("CAM-BENCH-09", "ab" * 32)
            _fill_index(vault, "CAM-BENCH-09", rows - 1, time.time() - 20 * 86400)
        server, url = _serve(root, chief)
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
            baseline, _ = _memory_mb(server.pid)
            page = client.get(f"/enregistrements/{rid}")
            client.post(f"/enregistrements/{rid}/consulter",
                        {"csrf": client.csrf(page), "motif": "judicial", "demandeur": "bench"})
            page = client.get(f"/enregistrements/{rid}")
            ticket = re.search(r'src="/lecture/([^"]+)"', page).group(1)
            peak = [baseline]
            streaming = threading.Event()
            streaming.set()

            def sample():  # the resident size while streaming (the sign-in's scrypt peaked before)
                while streaming.is_set():
                    peak[0] = max(peak[0], _memory_mb(server.pid)[0])
                    time.sleep(0.02)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            began = time.perf_counter()
            served = 0
            with client.opener.open(f"{url}/lecture/{ticket}", timeout=600) as response:
                while chunk := response.read(1 << 16):
                    served += len(chunk)
            streaming.clear()
            sampler.join()
            figures["server_hwm_mb"] = round(_memory_mb(server.pid)[1], 1)
            figures["stream_mb"] = round(served / 1e6, 1)
            figures["stream_s"] = round(time.perf_counter() - began, 2)
            figures["server_rss_mb_before"] = round(baseline, 1)
            figures["server_rss_mb_peak"] = round(peak[0], 1)
            print(f"streaming the {minutes:g}-minute recording ({figures['stream_mb']} MB in {figures['stream_s']} s): "
                  f"the desk's process resident {figures['server_rss_mb_before']} MB before, "
                  f"{figures['server_rss_mb_peak']} MB at most while streaming (target ≤ 150 MB); "
                  f"{figures['server_hwm_mb']} MB at most since it started (the sign-in's scrypt takes 256 MiB)")
            timed = _first_frame_s(url, client, rid, root / "profile")
            if timed is not None:
                figures["consultation_s"], figures["play_to_first_frame_s"] = (round(x, 3) for x in timed)
                print(f"consultation (form sent to the page with the timeline of {minutes:g} minutes): "
                      f"{figures['consultation_s']} s")
                print(f"play to the first frame in chromium: {figures['play_to_first_frame_s']} s (target ≤ 1.5 s)")
        finally:
            server.terminate()
            server.wait(10)
    return figures
