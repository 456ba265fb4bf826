"""The chief's desk in a real browser: Debian's chromium, headless, driven by Selenium
through chromium-driver, against a vault filled by a short simulated patrol."""

from __future__ import annotations

import base64
import html
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from drivers.camera import read_counter
from tests.conftest import read_jsonl
from tests.desk_support import (
    ServedDesk,
    fill_consultation,
    fill_extraction,
    patrol_local,
    patrol_vault,
    sign_in,
)
from tools.cli import main as pieton
from tools.desk.browser import headless_chromium, missing_tools

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return patrol_vault(tmp_path_factory.mktemp("desk"))


@pytest.fixture(scope="module")
def desk(made):
    # The server's temporary folder, to look for decrypted media afterwards.
    server_tmp = made["root"] / "server-tmp"
    server_tmp.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(server_tmp)
    served = ServedDesk(made)
    served.started = time.time()
    yield served
    served.stop()
    tempfile.tempdir = saved


@pytest.fixture(scope="module")
def browser(made):
    for tool in missing_tools():
        pytest.fail(f"{tool} is not installed: `make system` installs chromium and chromium-driver")
    driver = headless_chromium(made["root"] / "profile", "--autoplay-policy=no-user-gesture-required",
                               "--window-size=1200,900")
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(10)  # a page after a click may still be on its way
    yield driver
    driver.quit()


def journal(made):
    return read_jsonl(made["vault"] / "journal.jsonl")


def test_sign_in_refuses_a_wrong_passphrase_then_opens_the_listing(browser, desk, made):
    sign_in(browser, desk.url, "pas la bonne phrase")
    assert "Phrase secrète incorrecte" in browser.find_element(By.ID, "erreur").text
    assert journal(made)[-1]["event"] == "desk-sign-in-refused"
    assert browser.get_cookie("pieton_desk") is None
    sign_in(browser, desk.url)
    browser.find_element(By.ID, "liste")
    assert browser.current_url.endswith("/enregistrements")
    cookie = browser.get_cookie("pieton_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    entry = journal(made)[-1]
    assert entry["event"] == "desk-sign-in" and entry["operator"] == made["matricule"]
    assert f"matricule {made['matricule']}" in browser.find_element(By.CLASS_NAME, "qui").text
    rows = browser.find_elements(By.CSS_SELECTOR, "#liste tbody tr")
    assert len(rows) == 2
    assert "CET" in rows[0].text and made["camera"] in rows[0].text
    # Newest first by default; the other order on request.
    assert made["recordings"][1] in rows[0].text
    browser.get(desk.url + "/enregistrements?tri=debut&ordre=asc")
    assert made["recordings"][0] in browser.find_element(By.CSS_SELECTOR, "#liste tbody tr").text
    assert "Registre : support présent" in browser.find_element(By.ID, "sante").text
    assert "Copie de secours : aucune" in browser.find_element(By.ID, "sante").text
    browser.get(desk.url + "/cameras")
    assert made["camera"] in browser.find_element(By.ID, "cameras").text
    # A listing is not a consultation: nothing went to the register.
    assert not [line for line in read_jsonl(made["register"]) if line["event"] == "consultation"]


def first_counter(made, rid):
    """The burnt-in counter of the recording's first frame, read from its extraction."""
    import av
    (mp4,) = made["exports"].glob("pv-desk-*.mp4")
    with av.open(str(mp4)) as container:
        frame = next(container.decode(video=0))
        return read_counter(frame.to_ndarray(format="gray"))


def canvas_counter(browser):
    """Draw the next frame the playing video presents into a canvas, pause, and read the
    counter from the pixels. Returns that frame's own media time: on a loaded machine the
    frame shown lags the player's clock (currentTime), so the clock is not compared with it."""
    browser.set_script_timeout(30)
    shot = browser.execute_async_script("""
        const done = arguments[0];
        const v = document.getElementById('video');
        v.requestVideoFrameCallback((now, frame) => {  // drawImage here paints that very frame
            const c = document.createElement('canvas');
            c.width = v.videoWidth; c.height = v.videoHeight;
            c.getContext('2d').drawImage(v, 0, 0);
            v.pause();
            done([frame.mediaTime, c.toDataURL('image/png')]);
        });""")
    t, url = shot
    png = base64.b64decode(url.split(",", 1)[1])
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return t, read_counter(gray), float(gray.std())


def test_consultation_asks_motive_and_requester_then_plays_the_recording(browser, desk, made):
    rid = made["recordings"][0]
    browser.get(f"{desk.url}/enregistrements/{rid}")
    browser.implicitly_wait(0)
    assert not browser.find_elements(By.ID, "chronologie")  # nothing decrypted before a motive
    browser.implicitly_wait(10)
    browser.find_element(By.ID, "consulter").click()  # no requester: refused, nothing logged
    assert "Indiquez le demandeur" in browser.find_element(By.ID, "raison").text
    assert not [line for line in read_jsonl(made["register"]) if line["event"] == "consultation"]
    browser.get(f"{desk.url}/enregistrements/{rid}")
    fill_consultation(browser, motive="judicial", requester="OPJ Durand")
    timeline = browser.find_element(By.ID, "chronologie").text
    assert "Avertissement donné (3,0 s)" in timeline and "Signet" in timeline
    assert "CET" in timeline
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#vignettes img")
    assert len(thumbs) >= 2 and all(img.get_property("naturalWidth") == 192 for img in thumbs)
    drawn = browser.find_element(By.CSS_SELECTOR, "#carte svg")
    assert drawn.find_element(By.TAG_NAME, "polyline") and drawn.find_element(By.TAG_NAME, "polygon")
    assert "Nord-ouest : 46.9" in drawn.text and " m" in drawn.text and "N" in drawn.text
    (line,) = [line for line in read_jsonl(made["register"]) if line["event"] == "consultation"]
    assert line["recordings"] == [rid] and line["requester"] == "OPJ Durand"
    assert line["operator"] == made["matricule"] and line["purpose"] == "judicial"
    # Played in the page: the frame shown is the recording's, at the time played.
    browser.execute_script("document.getElementById('video').play()")
    WebDriverWait(browser, 20).until(lambda b: b.execute_script(
        "return document.getElementById('video').currentTime") > 1.5)
    played, counter, spread = canvas_counter(browser)
    assert spread > 10  # not a blank frame
    assert counter is not None, "no frame counter in the frame drawn from the video"
    desk.played = (rid, played, counter)
    # The flagrant délit recording says so in words.
    other = made["recordings"][1]
    browser.get(f"{desk.url}/enregistrements/{other}")
    fill_consultation(browser, motive="administrative", requester="Maire de la commune")
    assert "Flagrant délit : pas d'avertissement" in browser.find_element(By.ID, "chronologie").text


def test_extraction_for_a_judicial_procedure_and_one_without_motive(browser, desk, made):
    rid = made["recordings"][0]
    browser.get(f"{desk.url}/enregistrements/{rid}")
    fill_extraction(browser, requester="OPJ Durand", recipient="Parquet d'Autun", name="pv-desk-001")  # no motive
    assert "Indiquez le motif" in browser.find_element(By.ID, "raison").text
    assert not list(made["exports"].iterdir())
    browser.get(f"{desk.url}/enregistrements/{rid}")
    fill_extraction(browser, motive="judicial", requester="OPJ Durand", recipient="Parquet d'Autun",
                    name="pv-desk-001")
    # the job's page, refreshed until the extraction is made
    assert WebDriverWait(browser, 300).until(lambda b: b.find_elements(By.ID, "extraction-faite"))
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#fichiers a")]
    assert [link.rsplit("/", 1)[1] for link in links] == ["pv-desk-001.mp4", "pv-desk-001.report.html",
                                                          "pv-desk-001.report.json"]
    mp4 = made["exports"] / "pv-desk-001.mp4"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
                            str(mp4)], capture_output=True, text=True, check=True)
    assert "h264" in probe.stdout
    vault_key = (made["vault"] / "keys" / "vault.pub").read_text().strip()
    assert pieton(["vault", "check-report", str(mp4.with_suffix(".report.json")), str(mp4),
                   "--vault-key", vault_key]) == 0
    browser.get(f"{desk.url}/registre?evenement=extraction")
    rows = browser.find_elements(By.CSS_SELECTOR, "#registre tbody tr")
    assert len(rows) == 1 and "Parquet d'Autun" in rows[0].text and "judiciaire" in rows[0].text
    assert str(made["exports"]) in rows[0].text and made["matricule"] in rows[0].text  # where it went, who
    # The frame played earlier shows the counter of the frame at that time in the recording.
    played_rid, played_at, counter = desk.played
    fps = 10
    assert counter == first_counter(made, played_rid) + round(played_at * fps)  # the frame of its media time


def post_from(desk, browser, path, data, origin=None):
    """A form sent outside the browser, with the browser's session cookie."""
    cookie = browser.get_cookie("pieton_desk")["value"]
    headers = {"Cookie": f"pieton_desk={cookie}", "Origin": origin or desk.url,
               "Content-Type": "application/x-www-form-urlencoded"}
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in data.items()).encode()
    request = urllib.request.Request(desk.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, html.unescape(response.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, html.unescape(exc.read().decode())


def fresh_token(browser, desk, path):
    """The token of a form on the page at ``path``, as the browser just got it."""
    browser.get(desk.url + path)
    return browser.find_element(By.NAME, "csrf").get_attribute("value")


def test_forged_replayed_foreign_or_odd_requests_get_a_clear_page(browser, desk, made):
    rid = made["recordings"][1]
    page = f"/enregistrements/{rid}"
    before = len(journal(made))
    status, text = post_from(desk, browser, f"{page}/retenir", {"csrf": "forged", "procedure": "PV 2026/1"})
    assert status == 403 and "jeton de sécurité absent, faux ou rejoué" in text
    token = fresh_token(browser, desk, page)
    status, text = post_from(desk, browser, f"{page}/retenir", {"csrf": token, "procedure": "PV 2026/1"},
                             origin="http://evil.example")
    assert status == 403 and "vient de http://evil.example" in text
    refused = [e for e in journal(made)[before:] if e["event"] == "desk-refused"]
    assert len(refused) == 2 and all(e["operator"] == made["matricule"] for e in refused)
    status, text = post_from(desk, browser, f"{page}/extraire",
                             {"csrf": fresh_token(browser, desk, page), "motif": "judicial", "demandeur": "x",
                              "destinataire": "y", "nom": "../../etc/passwd"})
    assert status == 400 and "un chemin n'est jamais accepté" in text
    browser.get(desk.url + "/enregistrements/CAM-SIM-001_20261127T000000Z_000099")
    assert browser.find_element(By.ID, "refus").text == "Enregistrement introuvable"
    browser.get(desk.url + "/extractions/..%2F..%2Fvault%2Fvault.json")
    assert browser.find_element(By.ID, "refus").text in ("Paramètre refusé", "Page introuvable")
    # A hold with its procedure, from the page, journaled with its author; the same form
    # sent again (replayed) does nothing.
    token = fresh_token(browser, desk, page)
    status, _ = post_from(desk, browser, f"{page}/retenir", {"csrf": token, "procedure": "PV 2026/1"})
    assert status == 200 and journal(made)[-1]["event"] == "hold"
    assert journal(made)[-1]["procedure"] == "PV 2026/1"
    status, _ = post_from(desk, browser, f"{page}/liberer", {"csrf": token, "procedure": "PV 2026/1"})
    assert status == 403 and journal(made)[-1]["event"] == "desk-refused"


def test_sign_out_and_idle_lock_drop_the_session(browser, desk, made):
    old = browser.get_cookie("pieton_desk")["value"]
    csrf = fresh_token(browser, desk, "/enregistrements")
    browser.find_element(By.ID, "deconnexion").click()
    browser.find_element(By.ID, "raison-connexion")
    assert "/connexion" in browser.current_url and "Vous êtes déconnecté" in browser.page_source
    assert len(desk.app.state.desk.sessions) == 0
    # The old cookie gets the sign-in page; a form replayed with it does nothing.
    browser.add_cookie({"name": "pieton_desk", "value": old, "path": "/"})
    browser.get(desk.url + "/enregistrements")
    assert "/connexion" in browser.current_url
    status, page = post_from(desk, browser, f"/enregistrements/{made['recordings'][0]}/retenir",
                             {"csrf": csrf, "procedure": "PV 2026/2"})
    assert status == 401 and "Session expirée" in page
    # Idle past the limit: locked.
    sign_in(browser, desk.url)
    browser.find_element(By.ID, "liste")
    desk.clock.t += 601
    browser.get(desk.url + "/registre")
    assert "/connexion" in browser.current_url
    assert "verrouillée" in browser.find_element(By.ID, "raison-connexion").text


def served_stream(desk, browser, ticket):
    cookie = browser.get_cookie("pieton_desk")["value"]
    request = urllib.request.Request(f"{desk.url}/lecture/{ticket}", headers={"Cookie": f"pieton_desk={cookie}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "video/mp4"
        return response.read()


def test_no_block_of_the_media_served_is_left_on_disk(browser, desk, made):
    """After playing, no 4 KiB block of what was served is in the browser's profile, the
    server's temporary folder or /dev/shm (consult() elsewhere decrypts there)."""
    sign_in(browser, desk.url)
    browser.find_element(By.ID, "liste")
    rid = made["recordings"][0]
    browser.get(f"{desk.url}/enregistrements/{rid}")
    fill_consultation(browser, motive="judicial", requester="OPJ Durand")
    browser.find_element(By.ID, "video")  # the consultation's page, not the form's still on screen
    browser.execute_script("document.getElementById('video').play()")
    WebDriverWait(browser, 20).until(lambda b: b.execute_script(
        "return document.getElementById('video').currentTime") > 1.0)
    ticket = browser.find_element(By.ID, "video").get_attribute("src").rsplit("/", 1)[1]
    media = served_stream(desk, browser, ticket)
    assert len(media) > 64 * 1024
    browser.get(desk.url + "/enregistrements")  # the player is gone; the profile is flushed as it goes
    blocks = {media[i:i + 4096] for i in range(0, len(media) - 4096, 4096)}
    places = [made["root"] / "profile", made["root"] / "server-tmp"]
    shm = [p for p in Path("/dev/shm").glob("*") if p.is_file() and p.stat().st_mtime >= desk.started
           and p.stat().st_uid == os.getuid()] if Path("/dev/shm").is_dir() else []
    files = [p for place in places for p in place.rglob("*") if p.is_file() and not p.is_symlink()] + shm
    assert files  # the profile exists: the search is not vacuous
    probes = sorted(blocks)[:: max(1, len(blocks) // 24)]  # two dozen blocks spread over the stream
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for block in probes:
            assert block not in data, f"a block of the decrypted media is in {path}"


def test_a_search_needs_a_motive_and_is_journaled(browser, desk, made):
    browser.get(desk.url + "/recherche")
    browser.find_element(By.ID, "s-demandeur").send_keys("Commissaire")
    browser.find_element(By.ID, "s-du").send_keys(patrol_local(-40))
    browser.find_element(By.ID, "s-au").send_keys(patrol_local(20))
    browser.find_element(By.ID, "s-agent").send_keys("A-1234")
    browser.find_element(By.ID, "chercher").click()  # an agent without a motive: watching the agents
    assert "surveiller les agents" in browser.find_element(By.ID, "raison").text
    assert journal(made)[-1]["event"] != "search"

    def search(**fields):
        browser.get(desk.url + "/recherche")
        Select(browser.find_element(By.ID, "s-motif")).select_by_value(fields.pop("motif"))
        for name, value in fields.items():
            element = browser.find_element(By.ID, f"s-{name}")
            if element.tag_name == "select":
                Select(element).select_by_value(value)
            else:
                element.send_keys(value)
        browser.find_element(By.ID, "chercher").click()
        browser.find_element(By.ID, "resultats")  # the answer's page (waited for)
        browser.implicitly_wait(0)
        rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#resultats tbody tr")]
        browser.implicitly_wait(10)
        return rows

    period = {"demandeur": "Commissaire", "du": patrol_local(-10), "au": patrol_local(20)}
    assert len(search(motif="judicial", **period)) == 2
    entry = journal(made)[-1]
    assert entry["event"] == "search" and entry["purpose"] == "judicial"  # not a person's access request
    assert [r["purpose"] for r in read_jsonl(made["register"]) if r["event"] == "search"][-1] == "judicial"
    assert search(motif="judicial", agent="A-1234", **period) == []  # the patrol's camera had no assignment
    (flagrant,) = search(motif="disciplinary", avertissement="absent", **period)
    assert made["recordings"][1] in flagrant
    near = search(motif="access", lieu="46.9535,4.2990", rayon="300", **period)
    assert len(near) == 2 and all(" m" in row for row in near)
    assert search(motif="access", lieu="46.8600,4.2800", rayon="300", **period) == []
    entry = journal(made)[-1]
    assert entry["event"] == "search" and entry["purpose"] == "access" and entry["found"] == []
    assert entry["operator"] == made["matricule"] and entry["filters"]["radius_m"] == 300
    # The yearly figures count the two access requests only.
    browser.get(desk.url + "/chiffres?annee=2026")
    figures = browser.find_element(By.ID, "chiffres").text
    assert "Demandes d'accès d'une personne (recherches) 2" in figures
