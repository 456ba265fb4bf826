"""Training extractions on the chief's desk (issue 15 on issue 13, item 4): the clips awaiting
sign-off are listed, their contact sheet shown, plate boxes given, and the clip signed off or
refused through the vault's own functions, logged as `pieton vault training-approve` logs it.
Over real HTTP (the desk under uvicorn in this process), as a browser without JavaScript."""

from __future__ import annotations

import html
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import read_jsonl

from tests.desk_support import PASSPHRASE, PERSON, ServedDesk, small_vault
from tools.cli import main as pieton
from tools.vault.training_approval import PENDING, PLATES

MATRICULE = "PM-0042"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A vault holding one recording of 4 s (320x240), made yesterday; the chief designated."""
    made = small_vault(tmp_path_factory.mktemp("desk-training"))
    made["rid"] = made["rids"][0]
    return made


@pytest.fixture(scope="module")
def desk(made):
    served = ServedDesk(made)
    yield served
    served.stop()


class Client:
    """A browser without JavaScript: cookies kept, forms sent from the desk's own pages."""

    def __init__(self, url: str):
        self.url = url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.page = ""

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)

    def _open(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=120) as response:
                status, body = response.status, response.read()
                self.headers = response.headers
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
            self.headers = exc.headers
        self.page = body.decode("utf-8", "replace")
        return status, self.page

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.url + path))

    def post(self, path: str, fields: dict) -> tuple[int, str]:
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.url + path, data=data, headers={"Origin": self.url}))

    def token(self, action: str) -> str:
        """The CSRF token of the form posting to ``action`` on the page last read."""
        found = re.search(rf'action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"',
                          self.page)
        assert found, f"no form to {action}"
        return found.group(1)

    def send(self, page: str, action: str, fields: dict) -> tuple[int, str]:
        """Open ``page``, then fill and send its form to ``action``."""
        self.get(page)
        return self.post(action, {"csrf": self.token(action), **fields})

    def finish_job(self, timeout: float = 300) -> tuple[int, str]:
        """Follow the job page a form led to (as its refresh does) until it shows the result."""
        deadline = time.monotonic() + timeout
        status = 200
        while (found := re.search(r'<a href="(/travaux/[0-9a-f]{16})" id="actualiser">', self.page)):
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.3)
            status, _ = self.get(found.group(1))
        return status, self.page

    def sign_in(self) -> None:
        self.get("/connexion")
        jeton = re.search(r'name="jeton" value="([^"]+)"', self.page).group(1)
        status, _ = self.post("/connexion", {"jeton": jeton, "personne": PERSON, "phrase": PASSPHRASE})
        assert status == 200 and 'id="liste"' in self.page


@pytest.fixture
def client(desk):
    c = Client(desk.url)
    c.sign_in()
    return c


def logged(made, event):
    journal = [e for e in read_jsonl(made["vault"] / "journal.jsonl") if e.get("event") == event]
    register = [e for e in read_jsonl(made["register"]) if e.get("event") == event]
    return journal, register


def extract_for_training(client, made, name, plates=""):
    rid = made["rid"]
    client.send(f"/enregistrements/{rid}", f"/enregistrements/{rid}/consulter",
                {"motif": "training", "demandeur": "Formation ENPM"})
    status, page = client.post(f"/enregistrements/{rid}/extraire", {
        "csrf": client.token(f"/enregistrements/{rid}/extraire"), "motif": "training", "demandeur": "Formation ENPM",
        "destinataire": "Formateur", "nom": name, "plaques": plates})
    status, page = client.finish_job()
    assert status == 200, html.unescape(page)
    return re.search(r'href="/formation/(X-training-[0-9a-f]{16})"', page).group(1)


def test_a_training_extraction_from_the_desk_waits_until_the_chief_signs_off_its_contact_sheet(client, made):
    xid = extract_for_training(client, made, "formation-1", plates="0.5,10,100,40,20")
    assert "en attente de validation" in client.page
    assert list(made["exports"].iterdir()) == []          # nothing leaves the vault yet
    status, _ = client.get("/extractions/formation-1.mp4")
    assert status == 403                                  # not offered for download either
    # Listed, reachable from the navigation, with what the chief needs to judge it.
    client.get("/enregistrements")
    assert re.search(r'<a href="/formation" id="nav-formation">Formation \(1 à valider\)</a>', client.page)
    status, page = client.get("/formation")
    assert status == 200 and f'href="/formation/{xid}"' in page and "Formation ENPM" in page
    assert "1 cadre(s) tracé(s)" in html.unescape(page)
    # The contact sheet: every picture, with its time from the clip's start, and the frame's size
    # for boxes drawn on it.
    status, page = client.get(f"/formation/{xid}")
    assert status == 200
    sheet = (made["vault"] / PENDING / xid / "contact-sheet.html").read_text()
    # The sheet's own page (opened from the vault's folder) is in French too, times with a comma.
    words = html.unescape(re.sub(r'src="data:[^"]+"', "", sheet))
    assert "<html lang=fr>" in words and "Planche contact de l'extraction de formation " + xid in words
    assert "Visages : floutés : " in words and "Plaques : 1 cadre(s) tracé(s) par le chef de service" in words
    assert "<figcaption>0,0 s</figcaption>" in words and "une toutes les 2,0 s de l'extrait" in words
    assert not re.search(r"Contact sheet|Pending|pictures|Faces:|Plates:|blurred|box\(es\)", words), words
    assert re.findall(r'<img src="(data:image/jpeg[^"]+)"', page) == re.findall(r'<img src="(data:[^"]+)"', sheet)
    assert 'data-largeur="320" data-hauteur="240"' in page and 'alt="Image à 0,0 s du début de l\'extrait"' in html.unescape(page)
    assert "script-src 'self'" in client.headers["Content-Security-Policy"]
    for field in ("v-verifie", "p-plaques", "r-raison"):                # a label for every field
        assert f'<label for="{field}">' in page and f'id="{field}"' in page
    # Not checked: refused, nothing logged, nothing moved.
    status, page = client.post(f"/formation/{xid}/valider", {"csrf": client.token(f"/formation/{xid}/valider")})
    assert status == 400 and "Cochez" in page and logged(made, "training-approved") == ([], [])
    # A forged token: refused and logged as an attempt.
    status, page = client.post(f"/formation/{xid}/valider", {"csrf": "forged", "verifie": "oui"})
    assert status == 403 and "jeton de sécurité" in html.unescape(page)
    assert read_jsonl(made["vault"] / "journal.jsonl")[-1]["event"] == "desk-refused"
    # Signed off: logged twice as the command logs it, by the person signed in; then delivered.
    status, page = client.send(f"/formation/{xid}", f"/formation/{xid}/valider", {"verifie": "oui"})
    assert status == 200 and 'id="formation-validee"' in page
    journal, register = logged(made, "training-approved")
    assert len(journal) == 1 and len(register) == 1
    assert journal[0]["extraction_id"] == xid and journal[0]["operator"] == MATRICULE
    assert journal[0]["approved_by"] == made["recipient"] and journal[0]["contact_sheet"] == "checked"
    assert sorted(p.name for p in made["exports"].iterdir()) == [
        "formation-1.mp4", "formation-1.report.html", "formation-1.report.json"]
    assert not (made["vault"] / PENDING / xid).exists()
    status, _ = client.get("/extractions/formation-1.mp4")  # now offered, to this session
    assert status == 200 and client.headers["Content-Disposition"].startswith("attachment")
    assert pieton(["vault", "check-report", str(made["exports"] / "formation-1.report.json"),
                   str(made["exports"] / "formation-1.mp4"), "--vault-key", made["vault_key"]]) == 0
    # The register, as an inspector reads it, has the sign-off.
    status, page = client.get("/registre?evenement=training-approved")
    assert status == 200 and xid in page and "Validation d'une extraction de formation" in html.unescape(page)
    # Once only: the page now says so.
    status, page = client.get(f"/formation/{xid}")
    assert status == 404 and "Aucune extraction de formation" in html.unescape(page)


def test_boxes_drawn_on_the_sheet_make_the_clip_again_and_a_refusal_is_logged(client, made):
    xid = extract_for_training(client, made, "formation-2", plates="0.5,10,100,40,20")
    # A bad line is named, and nothing is done.
    status, page = client.send(f"/formation/{xid}", f"/formation/{xid}/refaire", {"plaques": "1.0,5,5,40,20\n2,3"})
    assert status == 400 and "ligne 2" in page and (made["vault"] / PENDING / xid).is_dir()
    # Made again with one more box: a new pending clip with both boxes, the first refused.
    client.send(f"/formation/{xid}", f"/formation/{xid}/refaire", {"plaques": "1.0,200,150,60,30"})
    status, page = client.finish_job()
    assert status == 200, html.unescape(page)
    new = re.search(r"Planche contact de l'extraction de formation (X-training-[0-9a-f]{16})", html.unescape(page))[1]
    assert new != xid and not (made["vault"] / PENDING / xid).exists()
    assert json.loads((made["vault"] / PENDING / new / PLATES).read_text()) == [
        {"t": 0.5, "box": [10, 100, 40, 20]}, {"t": 1.0, "box": [200, 150, 60, 30]}]
    assert "2 cadre(s) tracé(s)" in html.unescape(page)
    journal, register = logged(made, "training-rejected")
    assert journal[-1]["extraction_id"] == xid and new in journal[-1]["reason"]
    assert journal[-1]["operator"] == MATRICULE and register[-1]["extraction_id"] == xid
    # Refused without a reason: nothing done. With one: logged twice, erased.
    status, page = client.send(f"/formation/{new}", f"/formation/{new}/refuser", {"raison": " "})
    assert status == 400 and (made["vault"] / PENDING / new).is_dir()
    status, page = client.send(f"/formation/{new}", f"/formation/{new}/refuser", {"raison": "un visage à 2 s"})
    assert status == 200 and f"Extraction {new} refusée" in page
    journal, register = logged(made, "training-rejected")
    assert journal[-1]["reason"] == "un visage à 2 s" and register[-1]["reason"] == "un visage à 2 s"
    assert not (made["vault"] / PENDING / new).exists() and list(made["exports"].glob("formation-2*")) == []
    assert pieton(["vault", "verify", str(made["vault"])]) == 0   # journal and register agree


def test_bad_input_on_the_training_pages_is_a_clear_page(client, made):
    rid = made["rid"]
    for path in ("/formation/..%5C..%5Cvault.json", "/formation/X-training-nothex"):
        status, page = client.get(path)
        assert status == 400 and "n'est pas l'identifiant" in html.unescape(page)
    assert read_jsonl(made["vault"] / "journal.jsonl")[-1]["event"] == "desk-refused"   # an attempt
    status, page = client.get("/formation/X-training-0123456789abcdef")
    assert status == 404 and "Aucune extraction de formation X-training-0123456789abcdef" in html.unescape(page)
    # Plate boxes only for training, and a bad one named, before anything is logged.
    before = len(read_jsonl(made["vault"] / "journal.jsonl"))
    client.send(f"/enregistrements/{rid}", f"/enregistrements/{rid}/consulter",
                {"motif": "judicial", "demandeur": "OPJ"})
    count = len(read_jsonl(made["vault"] / "journal.jsonl"))
    assert count == before + 1   # the consultation
    for motive, plates, said in (("judicial", "1,1,1,40,20", "qu'à une extraction pour la formation"),
                                 ("training", "1;1;1;40;20", "Plaques, ligne 1")):
        status, page = client.post(f"/enregistrements/{rid}/extraire", {
            "csrf": client.token(f"/enregistrements/{rid}/extraire"), "motif": motive, "demandeur": "R",
            "destinataire": "D", "nom": "x", "plaques": plates})
        assert status == 400 and said in html.unescape(page)
        client.get(f"/enregistrements/{rid}")
    assert len(read_jsonl(made["vault"] / "journal.jsonl")) == count
    # Signed out: the training pages give the sign-in page.
    client.post("/deconnexion", {"csrf": client.token("/deconnexion")})
    status, page = client.get("/formation")
    assert status == 200 and 'id="connexion"' in page
