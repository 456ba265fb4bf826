"""The extraction report is read by whoever receives it (issue 15, item 4): who recorded,
with which camera, where (coordinates and commune) and when (local time with its zone), the
timeline without internals, every thumbnail on paper, and how to check its signature."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
from test_vault_flow import chief  # noqa: F401 - the fixture: an identity as text
from vault_support import CAMERA, make_spool

from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.report_events import rows as timeline_rows
from tools.vault.report_html import _when, render_html


@pytest.fixture
def report(tmp_path, chief, vault):  # noqa: F811
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=3)
    vault.enrol(CAMERA, signer.public_key_hex)
    (rid,) = ingest(vault, spool_dir, progress=False).stored
    (tmp_path / "out").mkdir()
    result = extract(vault, Request([rid], "judicial", "OPJ Martin", "Parquet d'Autun", tmp_path / "out" / "pv-1.mp4"),
                     [chief[0]])
    return result, vault.signer.public_key_hex


def test_the_report_says_who_where_and_when_in_local_time(report):
    result, vault_key = report
    html = result.html_path.read_text()
    who = re.search(r"<table class=who>(.*?)</table>", html).group(1)
    assert "<th>Matricule de l&#x27;agent</th><td>A-1234</td>" in who and f"<th>Caméra</th><td>{CAMERA}</td>" in who
    assert "départ 46,95000 ; 4,30000" in who and "arrivée 46,95200 ; 4,30000" in who   # the recording's GPS points
    assert "CET" in who                                              # 18 November: winter time in Paris
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", html)  # no UTC internals on the page
    assert "Images d&#x27;avant le déclenchement : 4,0 s (vidéo seule, sans son)" in html
    assert "<html lang=fr>" in html and "<h3>Déroulement</h3>" in html and "Vérifier ce rapport" in html
    for english in ("agent number", "Timeline", "pre-event span", "spoken notice", "Prefect", "recorded"):
        assert english not in html, english
    assert (f"pieton vault check-report pv-1.report.json pv-1.mp4 --vault-key {vault_key}") in html


def test_the_timeline_shows_no_internals():
    summary = {"started_at": "2026-11-27T17:41:11.000Z", "pre_event_s": 30.133333333333383,
               "events": [{"kind": "media", "pre_event_from": 1796035399.88, "pre_event_s": 30.133333333333383,
                           "time": 1796035430.0}]}
    rows = timeline_rows(summary, _when)
    text = " ".join(f"{_when(row.at)} {row.text}" for row in rows)
    assert "27/11/2026 18:41:11 CET" in text and "pre-event span: 30.1 s" in text   # the signed JSON's words
    assert "1796035399" not in text and "30.133" not in text
    assert "pre event from 30/11/2026 11:43:19 CET" in text and "pre event s 30.13" in text
    page = " ".join(f"{_when(row.at)} {row.text}" for row in timeline_rows(summary, _when, french=True))
    assert "27/11/2026 18:41:11 CET Images d'avant le déclenchement : 30,1 s (vidéo seule, sans son)" in page
    assert "1796035399" not in page and "30,133" not in page and "30.1" not in page
    assert ("avant le déclenchement depuis 30/11/2026 11:43:19 CET" in page
            and "avant le déclenchement (s) 30,13" in page)


@pytest.mark.integration
def test_printed_the_report_keeps_every_thumbnail(report, tmp_path):
    """Printed by chromium (headless, to PDF): every picture of the strip is on paper (a
    picture shown twice is embedded once)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    result, _ = report
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(result.html_path.as_uri())
        assert len(driver.find_elements("css selector", ".strip img")) == 8
        pdf = base64.b64decode(driver.print_page())
    finally:
        driver.quit()
    pictures = set(re.findall(r'<div class="strip">.*?</div>', result.html_path.read_text())[0].split('src="')[1:])
    pictures = {piece.split('"')[0] for piece in pictures}
    assert len(pictures) >= 5 and pdf.count(b"/Subtype /Image") == len(pictures)


def test_the_page_says_its_facts_in_french(tmp_path):
    """The page is French for its reader; the JSON beside it keeps its English values."""
    report = {"extraction_id": "X-1", "vault_key": "ab" * 32, "created": "2026-11-27T17:41:11Z",
              "purpose": "judicial", "requester": "OPJ Martin", "deliver_to": "Parquet d'Autun",
              "truncated": "the recording ends early: exported up to its last good frame (s1.ts)",
              "recordings": [{"id": "R-1", "camera": CAMERA, "started_at": "2026-11-27T17:41:11Z",
                              "recording": {"agent": "A-1234", "trigger_reason": "intervention"},
                              "events": [{"type": "bookmark", "time": 1795801275.0}], "gps_track": [],
                              "closed": {"reason": "stopped by the agent", "ended_at": 1795801331.0},
                              "segments": [{"file": "s1.ts", "sha256": "00" * 32, "size": 10, "complete": False,
                                            "reason": "cut"}]}],
              "mp4": {"name": "pv-1.mp4", "duration_s": 125.0, "sha256": "00" * 32, "audio": "muted",
                      "truncated_segments": ["s1.ts"]}}
    page = render_html(report, tmp_path / "pv-1.mp4", [], thumbs=[(75.0, "data:image/jpeg;base64,AA==")])
    for said in ("<th>Établi le</th><td>27/11/2026 18:41:11 CET</td>", "<th>Motif</th><td>procédure judiciaire</td>",
                 "<th>Son</th><td>coupé</td>", "2 min 05 s", "exporté jusqu'à sa dernière image intacte (s1.ts)",
                 "Début de l&#x27;enregistrement — déclenchement : intervention de l&#x27;agent", "Signet",
                 "Fin de l&#x27;enregistrement — arrêté par l&#x27;agent", "Aucune position enregistrée",
                 "tronqué : cut", "<figcaption>1 min 15 s</figcaption>", "du 27/11/2026 18:41:11 CET au 27/11/2026"):
        assert said in page, said
    for english in ("ends early", "muted", "judicial", "bookmark", "stopped by", "created", "No position"):
        assert english not in page, english
