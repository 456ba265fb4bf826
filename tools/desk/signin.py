"""Signing in with a designated person's identity and its passphrase; signing out."""

from __future__ import annotations

import hmac
import logging
import secrets
import threading

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from recorder.errors import AgeError, VaultError
from recorder.evidence.age import load_identities
from tools.desk.access import Refused
from tools.desk.sessions import Session, author
from tools.desk.web import COOKIE, private
from tools.vault.persons import identify

log = logging.getLogger("pieton.desk")
_ONE_AT_A_TIME = threading.Lock()
FORM_COOKIE = "pieton_desk_form"   # the sign-in form's own token (there is no session yet)
REASONS = {"verrouillee": "Votre session s'est verrouillée après une période sans activité.",
           "inconnue": "Votre session est fermée.", "sortie": "Vous êtes déconnecté.",
           "sortie-annulees": "Vous êtes déconnecté. Les extractions qui attendaient leur tour ont été annulées "
                              "(rien n'en a été extrait) ; une extraction déjà commencée se termine et reste inscrite "
                              "au journal et au registre."}


def _unlock(path, passphrase) -> list:
    with _ONE_AT_A_TIME:
        return load_identities(path, passphrase)


async def sign_in_page(desk, request, session, form, *, error=None, status=200):
    token = secrets.token_urlsafe(32)
    response = desk.page(request, "connexion.html", status, persons=sorted(desk.config.persons), form_token=token,
                         reason=REASONS.get(request.query_params.get("raison", "")), error=error)
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=desk.config.secure,
                        path="/connexion")
    return response


async def sign_in(desk, request, session, form):
    sent, kept = form.get("jeton"), request.cookies.get(FORM_COOKIE)
    if not (isinstance(sent, str) and kept and hmac.compare_digest(sent.encode(), kept.encode())):
        raise Refused(403, "Formulaire refusé", "Ce formulaire de connexion n'a pas été délivré par le poste "
                      "(jeton absent ou faux) : rechargez la page de connexion.", attempt=True)
    person, passphrase = form.get("personne"), form.get("phrase")
    path = desk.config.persons.get(person) if isinstance(person, str) else None
    if path is None:
        raise Refused(400, "Connexion refusée", "Choisissez votre nom dans la liste des personnes désignées.")
    if not isinstance(passphrase, str) or not passphrase:
        return await sign_in_page(desk, request, None, None, error="Donnez votre phrase secrète.", status=400)
    try:
        # scrypt takes about a second: off the event loop, and one try at a time (guessing
        # passphrases in parallel gains nothing)
        identities = await run_in_threadpool(_unlock, path, passphrase)
    except AgeError:
        await run_in_threadpool(desk.journal, None, "desk-sign-in-refused", person=person,
                                reason="wrong passphrase or unreadable identity")
        return await sign_in_page(desk, request, None, None, status=401,
                                  error="Phrase secrète incorrecte (ou fichier d'identité illisible) : "
                                  "connexion refusée. La tentative est inscrite au journal.")
    new = await run_in_threadpool(admit, desk, person, identities)
    identities = None
    response = private(RedirectResponse("/enregistrements", status_code=303))
    response.set_cookie(COOKIE, new.token, httponly=True, samesite="strict", secure=desk.config.secure, path="/")
    response.delete_cookie(FORM_COOKIE, path="/connexion")
    return response


def admit(desk, person: str, identities: list) -> Session:
    """A session for a designated person: the recipient their identity opens names them
    (their matricule becomes the author of what they do); any other identity is refused,
    and the attempt journaled."""
    with desk.vault.open() as vault:
        try:
            who = identify(vault, identities, "desk-sign-in")
        except VaultError:
            identities.clear()
            raise Refused(403, "Connexion refusée", "Cette identité n'est pas celle d'une personne désignée, ou sa "
                          "désignation a pris fin (R241-12) : connexion refusée. La tentative est inscrite au "
                          "journal.") from None
        new = desk.sessions.open(person, identities, who.matricule)
        vault.log("desk-sign-in", person=person, matricule=who.matricule, role=who.role)
    return new


async def sign_out(desk, request, session, form):
    # Closed first: leaving never waits for the vault (an extraction may hold it for minutes).
    desk.sessions.close(session.token)
    cancelled = desk.jobs.cancel_waiting(session.token)
    try:
        await run_in_threadpool(desk.journal, author(session), "desk-sign-out", person=session.person)
    except Refused:  # the vault stayed busy: the sign-out stands, said in the desk's own log
        log.warning("sign-out of %s not journaled: the vault stayed busy", session.matricule)
    response = private(RedirectResponse("/connexion?raison=" + ("sortie-annulees" if cancelled else "sortie"),
                                        status_code=303))
    response.delete_cookie(COOKIE, path="/")
    return response


ROUTES = [
    ("/connexion", sign_in_page, ["GET"], False),
    ("/connexion", sign_in, ["POST"], False),
    ("/deconnexion", sign_out, ["POST"], True),
]
