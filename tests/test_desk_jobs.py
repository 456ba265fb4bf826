"""Extractions from the desk run as jobs of the desk (issue 16): the form is answered at once
with the job's page, which refreshes itself until the result; the same extraction asked
twice is one job; a failure is said on the job's page and journaled as before. Over real
HTTP (the desk under uvicorn in this process), the extraction real: it is held back only by
the desk's vault lock, taken by the test as another vault command would."""

from __future__ import annotations

import html
import re
import threading
import time

from conftest import read_jsonl
from test_desk_training import MATRICULE, Client, desk, logged, made  # noqa: F401 - fixtures

JOB = re.compile(r'<a href="(/travaux/[0-9a-f]{16})" id="actualiser">')


class HeldVault:
    """The desk's vault lock held by the test (released after ``limit`` s at the latest, so
    that a desk answering only once the extraction is made fails the test instead of hanging)."""

    def __init__(self, desk, limit: float = 40):  # noqa: F811
        self.lock = desk.app.state.desk.vault._lock
        self.guard = threading.Lock()
        self.held = False
        self.timer = threading.Timer(limit, self.release)

    def __enter__(self):
        self.lock.acquire()
        self.held = True
        self.timer.start()
        return self

    def release(self):
        with self.guard:
            if self.held:
                self.held = False
                self.lock.release()

    def __exit__(self, *exc):
        self.timer.cancel()
        self.release()


def extraction_form(client, rid, **fields):
    """The extraction form's fields, as the recording's page gives it once consulted."""
    client.get(f"/enregistrements/{rid}")
    if f'action="/enregistrements/{rid}/extraire"' not in client.page:
        client.send(f"/enregistrements/{rid}", f"/enregistrements/{rid}/consulter",
                    {"motif": "judicial", "demandeur": "OPJ Durand"})
    return {"csrf": client.token(f"/enregistrements/{rid}/extraire"), "motif": "judicial",
            "demandeur": "OPJ Durand", "destinataire": "Parquet", **fields}


def test_the_form_is_answered_at_once_and_the_same_extraction_asked_twice_is_one_job(desk, made):  # noqa: F811
    rid = made["rid"]
    client = Client(desk.url)
    client.sign_in()
    first = extraction_form(client, rid, nom="lente", debut="0,5", fin="3")
    second = extraction_form(client, rid, nom="lente-bis", debut="0.5", fin="3")
    with HeldVault(desk) as held:
        started = time.monotonic()
        status, page = client.post(f"/enregistrements/{rid}/extraire", first)
        answered = time.monotonic() - started
        assert status == 200 and 'id="travail-en-cours"' in page, html.unescape(page)[:2000]
        assert held.held, f"answered only once the vault was free ({answered:.1f} s)"
        job = JOB.search(page).group(1)
        assert '<meta http-equiv="refresh" content="2">' in page
        text = html.unescape(page)
        assert f"Extraction de {rid} de 0,5 s à 3,0 s, pour : Procédure judiciaire" in text
        assert "Chef Martin (matricule PM-0042)" in text and "lente.mp4" in text
        # Its page answers while the job waits for the vault; nothing is written yet.
        status, page = client.get(job)
        assert status == 200 and 'id="travail-en-cours"' in page
        assert not list(made["exports"].glob("lente*"))
        # The same recording, range and purpose asked again: the same job, not a second one.
        status, page = client.post(f"/enregistrements/{rid}/extraire", second)
        assert status == 200 and JOB.search(page).group(1) == job
    status, page = client.finish_job()
    assert status == 200 and 'id="extraction-faite"' in page
    assert "lente.mp4" in page and "Procédure judiciaire" in html.unescape(page)
    status, _ = client.get("/extractions/lente.mp4")   # offered to the session that asked
    assert status == 200 and client.headers["Content-Disposition"].startswith("attachment")
    journal, register = logged(made, "extraction")
    mine = [e for e in journal if e.get("mp4", "").startswith("lente")]
    assert [e["mp4"] for e in mine] == ["lente.mp4"] and mine[0]["operator"] == MATRICULE
    assert [e["mp4"] for e in register if e.get("mp4", "").startswith("lente")] == ["lente.mp4"]
    assert sorted(p.name for p in made["exports"].glob("lente*")) == [
        "lente.mp4", "lente.report.html", "lente.report.json"]
    # Done, the job's page stays the result; a new request for the same range is a new job.
    status, page = client.get(job)
    assert status == 200 and 'id="extraction-faite"' in page
    status, page = client.post(f"/enregistrements/{rid}/extraire", extraction_form(client, rid, nom="lente-2",
                                                                                     debut="0.5", fin="3"))
    assert JOB.search(page).group(1) != job
    status, page = client.finish_job()
    assert status == 200 and (made["exports"] / "lente-2.mp4").is_file()


def test_a_failed_job_says_why_in_the_desks_words_and_is_journaled(desk, made):  # noqa: F811
    client = Client(desk.url)
    client.sign_in()
    rid = made["rid"]
    missing = rid[:-6] + "999999"
    token = extraction_form(client, rid)["csrf"]
    with HeldVault(desk):
        status, page = client.post(f"/enregistrements/{missing}/extraire", {
            "csrf": token, "motif": "judicial", "demandeur": "OPJ", "destinataire": "Parquet", "nom": "absente"})
        assert 'id="travail-en-cours"' in page
    status, page = client.finish_job()
    assert status == 404 and "Enregistrement introuvable" in page
    assert f"Le coffre ne contient pas d'enregistrement {missing}." in html.unescape(page)
    entry = read_jsonl(made["vault"] / "journal.jsonl")[-1]   # an attempt to access, as before
    assert entry["event"] == "desk-refused" and entry["operator"] == MATRICULE
    assert entry["path"] == f"/enregistrements/{missing}/extraire"
    # A failure inside the extraction: journaled twice by the vault, its words on the page.
    status, page = client.post(f"/enregistrements/{rid}/extraire", extraction_form(
        client, rid, nom="hors-champ", debut="500", fin="600"))
    status, page = client.finish_job()
    text = html.unescape(page)
    assert status == 400 and "Extraction refusée" in text, text[:2000]
    assert "La partie demandée, de 8 min 20 s à 10 min 00 s, commence après la fin de l'enregistrement, qui dure 4,0 s" \
        in text and "range" not in text   # in the chief's words, not the command line's
    journal, register = logged(made, "extraction-failed")
    assert journal and register and journal[-1]["operator"] == MATRICULE
    assert "outside the recording" in journal[-1]["reason"]
    assert not list(made["exports"].glob("*hors-champ*"))
