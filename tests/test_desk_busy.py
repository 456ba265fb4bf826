"""While a job holds the vault (an extraction takes minutes), the desk stays usable: a page
that needs the vault says within a few seconds, in French, that it is busy, instead of
hanging until the job ends; and no request waits for the vault on the desk's event loop,
where it would stop every other page, the running job's own included. Signing out cancels
the extractions still waiting for their turn (each held a copy of the person's identity).
Over real HTTP, the vault's lock held by the test as a running job holds it."""

from __future__ import annotations

import html
import threading
import time

from conftest import read_jsonl, wait_for
from test_desk_jobs import JOB, HeldVault, extraction_form
from test_desk_training import MATRICULE, Client, desk, made  # noqa: F401 - fixtures

WAIT_S = 1.0


def timed(call):
    started = time.monotonic()
    out = call()
    return time.monotonic() - started, out


def test_pages_that_need_the_busy_vault_say_so_and_the_others_keep_answering(desk, made):  # noqa: F811
    rid = made["rid"]
    client, other = Client(desk.url), Client(desk.url)
    client.sign_in()
    other.sign_in()
    desk.app.state.desk.vault.busy_wait_s = WAIT_S
    try:
        with HeldVault(desk, limit=30):
            answers = {}
            # The recording's page read the vault on the event loop: while it waited, nothing answered.
            waiting = threading.Thread(target=lambda: answers.update(page=timed(lambda: other.get(f"/enregistrements/{rid}"))))
            waiting.start()
            time.sleep(0.3)
            elapsed, (status, page) = timed(lambda: client.get("/connexion"))
            assert status == 200 and elapsed < WAIT_S, f"the sign-in page waited {elapsed:.1f} s for the vault"
            waiting.join(20)
            elapsed, (status, page) = answers["page"]
            text = html.unescape(page)
            assert status == 503 and "Coffre occupé" in text and "rechargez cette page" in text, text[:1500]
            assert elapsed < WAIT_S + 5, f"answered after {elapsed:.1f} s"
            for path in ("/enregistrements", "/registre", "/cameras", "/formation"):
                status, page = client.get(path)
                assert status == 503 and "Coffre occupé" in html.unescape(page), path
                assert "son état s'affichera quand il sera libre" in html.unescape(page), path
    finally:
        desk.app.state.desk.vault.busy_wait_s = 10.0
    status, page = client.get(f"/enregistrements/{rid}")
    assert status == 200 and 'id="sante"' in page and "Dernière purge" in html.unescape(page)


def test_signing_out_never_waits_for_the_vault(desk, made):  # noqa: F811
    client = Client(desk.url)
    client.sign_in()
    desk.app.state.desk.vault.busy_wait_s = WAIT_S
    try:
        client.get("/connexion")
        client.get("/enregistrements")  # a page of the session, with its sign-out form
        with HeldVault(desk, limit=30):
            elapsed, (status, page) = timed(lambda: client.post("/deconnexion", {"csrf": client.token("/deconnexion")}))
            assert elapsed < WAIT_S + 5 and "Vous êtes déconnecté" in html.unescape(page), elapsed
        status, page = client.get("/enregistrements")   # the session is closed: back to the sign-in page
        assert "Vous êtes déconnecté" not in page and 'name="phrase"' in page
    finally:
        desk.app.state.desk.vault.busy_wait_s = 10.0
    # With the vault free, leaving is journaled as before.
    client.sign_in()
    client.get("/enregistrements")
    client.post("/deconnexion", {"csrf": client.token("/deconnexion")})
    last = read_jsonl(made["vault"] / "journal.jsonl")[-1]
    assert last["event"] == "desk-sign-out" and last["operator"] == MATRICULE


def test_signing_out_cancels_the_extractions_still_waiting_and_lets_the_running_one_end(desk, made):  # noqa: F811
    rid = made["rid"]
    client = Client(desk.url)
    client.sign_in()
    first = extraction_form(client, rid, nom="avant-sortie", debut="0", fin="2")
    second = extraction_form(client, rid, nom="apres-sortie", debut="1", fin="3")
    jobs = desk.app.state.desk.jobs
    with HeldVault(desk, limit=30):
        client.post(f"/enregistrements/{rid}/extraire", first)
        running = JOB.search(client.page).group(1)
        assert wait_for(lambda: jobs.get(running.rsplit("/", 1)[1]).begun, 10)  # the worker took it: it waits for the vault
        client.post(f"/enregistrements/{rid}/extraire", second)
        waiting = JOB.search(client.page).group(1)
        assert waiting != running
        client.post("/deconnexion", {"csrf": client.token("/deconnexion")})  # from the job's page
        text = html.unescape(client.page)
        assert "Les extractions qui attendaient leur tour ont été annulées" in text, text[:1500]
        job = jobs.get(waiting.rsplit("/", 1)[1])
        assert not job.running and job.work is None and job.error.title == "Extraction annulée"
    # signing in meanwhile would be told which job holds the vault
    assert wait_for(lambda: not jobs.get(running.rsplit("/", 1)[1]).running, 60), "the running extraction did not end"
    client.sign_in()
    client.get(running)
    status, page = client.finish_job()
    assert status == 200 and (made["exports"] / "avant-sortie.mp4").is_file()
    status, page = client.get(waiting)
    assert status == 410 and "Extraction annulée" in html.unescape(page)
    assert not list(made["exports"].glob("apres-sortie*"))


def test_while_a_job_holds_the_vault_a_page_says_so_within_3_s_and_names_the_job(desk, made, monkeypatch):  # noqa: F811
    """A page waited the whole ``busy_wait_s`` for a vault that an extraction holds for
    minutes, and then could only say "another command": now it waits a few seconds at most
    and names the job; the job's own page keeps answering, and the job ends as usual."""
    import tools.desk.extraction as extraction

    rid = made["rid"]
    holding, release = threading.Event(), threading.Event()
    real_extract = extraction.extract

    def slow_extract(*args, **kwargs):  # an extraction of a long recording: minutes with the vault held
        holding.set()
        release.wait(30)
        return real_extract(*args, **kwargs)

    monkeypatch.setattr(extraction, "extract", slow_extract)
    client, other = Client(desk.url), Client(desk.url)
    client.sign_in()
    other.sign_in()
    form = extraction_form(client, rid, nom="longue", debut="0", fin="2")
    desk.app.state.desk.vault.busy_wait_s = 20.0
    try:
        client.post(f"/enregistrements/{rid}/extraire", form)
        job_page = JOB.search(client.page).group(1)
        assert holding.wait(20), "the job never took the vault"
        elapsed, (status, page) = timed(lambda: other.get(f"/enregistrements/{rid}"))
        text = html.unescape(page)
        assert status == 503 and "Coffre occupé" in text, text[:1500]
        assert elapsed < 5, f"the page waited {elapsed:.1f} s for a vault the job holds"
        assert f"Extraction de {rid} de 0,0 s à 2,0 s" in text and "longue.mp4" in text, text[:2000]
        status, _ = client.get(job_page)
        assert status == 200
    finally:
        release.set()
        desk.app.state.desk.vault.busy_wait_s = 10.0
    status, page = client.finish_job()
    assert status == 200 and (made["exports"] / "longue.mp4").is_file()
    status, page = other.get(f"/enregistrements/{rid}")   # the job has ended: the vault is free again
    assert status == 200 and 'id="sante"' in page
