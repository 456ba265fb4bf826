"""What an audit of the desk against issue 15 found missing: a retired camera shown as such
(and not counted as late in the health line); a clear page, not bare English text, for a
request to another host name (logged: DNS rebinding is an attempt to access), a method the
address does not take, or a form carrying a file; the extraction's range chosen on the
timeline."""

from __future__ import annotations

import html
import http.client
import json
import re
import time

import pytest
from conftest import read_jsonl
from test_desk_training import Client, desk, made  # noqa: F401 - fixtures
from test_vault_flow import CAMERA

from tools.desk.health import HealthCheck
from tools.vault.authorisation import retire
from tools.vault.vault import Vault


def raw(desk, method, path, headers, body=b""):  # noqa: F811
    host, port = desk.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode("utf-8", "replace")


def test_a_retired_camera_is_shown_and_not_counted_as_late(desk, made):  # noqa: F811
    later = time.time() + 8 * 86400   # a week and a day without an offload
    with Vault.open(made["vault"], clock=lambda: later) as vault:
        assert HealthCheck()(vault, None).cameras_late == [CAMERA]
        retire(vault, CAMERA, "stolen")
        assert HealthCheck()(vault, None).cameras_late == []
    client = Client(desk.url)
    client.sign_in()
    status, page = client.get("/cameras")
    assert status == 200 and "<th scope=\"col\">Retirée du service</th>" in page
    assert "volée, le " in html.unescape(page)


def test_odd_requests_get_a_clear_page_and_another_host_is_logged(desk, made):  # noqa: F811
    status, page = raw(desk, "GET", "/enregistrements", {"Host": "evil.example:8484"})
    assert status == 400 and "Adresse refusée" in page and "evil.example" in html.unescape(page)
    entry = read_jsonl(made["vault"] / "journal.jsonl")[-1]
    assert entry["event"] == "desk-refused" and "evil.example" in entry["reason"]
    client = Client(desk.url)
    client.sign_in()
    status, page = client.get("/deconnexion")            # a form's address, opened as a page
    assert status == 405 and "Méthode refusée" in html.unescape(page) and 'lang="fr"' in page
    client.get("/enregistrements")
    token = client.token("/deconnexion")
    body = (b"--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + token.encode()
            + b"\r\n--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n")
    status, page = raw(desk, "POST", "/deconnexion", {
        "Host": desk.url.removeprefix("http://"), "Origin": desk.url, "Cookie": client.cookie_header(),
        "Content-Type": "multipart/form-data; boundary=x"}, body)
    assert status == 400 and "mal formée" in html.unescape(page) and 'lang="fr"' in page


def test_the_extractions_range_is_chosen_on_the_timeline(desk, made):  # noqa: F811
    rid = made["rid"]
    client = Client(desk.url)
    client.sign_in()
    client.send(f"/enregistrements/{rid}", f"/enregistrements/{rid}/consulter",
                {"motif": "judicial", "demandeur": "OPJ Durand"})
    starts = re.findall(r'<a href="\?debut=([\d.]+)&amp;fin=#t-extraire"[^>]*>début ici</a>', client.page)
    assert len(starts) >= 2, "a start link on each moment of the timeline"
    start = next(s for s in starts if float(s) > 0)
    client.get(f"/enregistrements/{rid}?debut={start}&fin=")
    end = re.findall(rf'<a href="\?debut={re.escape(start)}&amp;fin=([\d.]+)#t-extraire"', client.page)[-1]
    client.get(f"/enregistrements/{rid}?debut={start}&fin={end}")
    assert f'id="e-debut" name="debut" inputmode="decimal" value="{start}"' in client.page
    assert f'id="e-fin" name="fin" inputmode="decimal" value="{end}"' in client.page
    status, page = client.post(f"/enregistrements/{rid}/extraire", {
        "csrf": client.token(f"/enregistrements/{rid}/extraire"), "motif": "judicial", "demandeur": "OPJ Durand",
        "destinataire": "Parquet", "nom": "plage", "debut": start, "fin": end})
    status, page = client.finish_job()
    assert status == 200 and 'id="extraction-faite"' in page
    report = json.loads((made["exports"] / "plage.report.json").read_text())
    assert report["mp4"]["range_s"][0] == pytest.approx(float(start), abs=0.05)
    assert report["mp4"]["range_s"][1] == pytest.approx(float(end), abs=0.05)
    # A bound that is not a number is simply not filled in.
    client.get(f"/enregistrements/{rid}?debut=..%2Fetc&fin=nan")
    assert 'name="debut" inputmode="decimal" value=""' in client.page and 'value="nan"' not in client.page
