"""The desk's web application (Starlette, Jinja2 templates, served by uvicorn).

Every request passes the same checks before its page: the Host is the desk's own (no DNS
rebinding), a form comes from the desk's own pages (same origin, its CSRF token), and
everything but the sign-in needs a live session. A refusal is a page giving the reason;
those that are attempts to access are logged in the vault's journal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from recorder.errors import PietonError
from tools.desk import pages, signin
from tools.desk.access import DeskVault, Refused
from tools.desk.forms import shown, single, vault_refusal
from tools.desk.health import HealthCheck
from tools.desk.jobs import Jobs
from tools.desk.sessions import IDLE_S, Session, Sessions, author
from tools.desk.web import COOKIE, private
from tools.desk.words import local, seconds
from tools.vault.training_approval import waiting

HERE = Path(__file__).resolve().parent
log = logging.getLogger("pieton.desk")


@dataclass
class DeskConfig:
    vault: Path
    persons: dict[str, Path]          # name shown at sign-in -> their identity file
    exports: Path                     # where extractions are written (set by the chief)
    zone: str | None = None
    idle_s: float = IDLE_S
    secure: bool = False              # served over TLS: cookies marked Secure
    hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "localhost"])
    page_size: int = 50


class Desk:
    """The application's state: the vault, the sessions, the templates."""

    def __init__(self, config: DeskConfig, *, vault_clock=None, session_clock=None):
        self.config = config
        self.vault = DeskVault(config.vault, **({"clock": vault_clock} if vault_clock else {}))
        self.sessions = Sessions(config.idle_s, **({"clock": session_clock} if session_clock else {}))
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(local=lambda t: local(t, config.zone), seconds=seconds)
        self.health = HealthCheck()
        self.jobs = Jobs(refused=lambda job, exc: self.journal_refusal(job.author, job.person, job.path, exc))

    # -- pages --------------------------------------------------------------------------
    def page(self, request: Request, template: str, status: int = 200, *, vault: bool = True,
             **context) -> Response:
        """``vault=False``: without the health line, for a page that must not wait for the vault
        (a job's, while the job holds it)."""
        session: Session | None = getattr(request.state, "session", None)
        health, training_waiting, busy = None, 0, False
        if session is not None and vault:  # shown to the persons designated only
            try:  # on the event loop: read only if the vault is free now, never wait for it
                with self.vault.open(wait_s=0) as vault:
                    health = self.health(vault, self.config.zone)
                    training_waiting = len(waiting(vault))
            except Refused:
                busy = True
        response = self.templates.TemplateResponse(
            request, template, {"session": session, "health": health, "training_waiting": training_waiting,
                                "vault_busy": busy, **context}, status_code=status)
        return private(response)

    def refused(self, request: Request, exc: Refused) -> Response:
        session = getattr(request.state, "session", None)
        if exc.attempt:
            self.journal_refusal(author(session) if session else None, session.person if session else None,
                                 request.url.path, exc)
        try:
            return self.page(request, "refus.html", exc.status, title=exc.title, reason=exc.reason)
        except Exception:  # the vault (or the page itself) is unusable: the reason still shows, bare
            return private(self.templates.TemplateResponse(
                request, "refus.html", {"session": None, "health": None, "title": exc.title,
                                        "reason": exc.reason}, status_code=exc.status))

    def journal(self, operator: str | None, event: str, **fields) -> None:
        """One entry in the vault's journal, for ``operator`` (off the event loop: it waits for the vault)."""
        with self.vault.open(operator) as vault:
            vault.log(event, **fields)

    def journal_refusal(self, operator: str | None, person: str | None, path: str, exc: Refused) -> None:
        """An attempt to access, in the vault's journal (a failure to log it is the desk's own log's)."""
        try:
            self.journal(operator, "desk-refused", path=path[:200], reason=exc.reason[:300], person=person)
        except (PietonError, OSError) as log_exc:
            log.warning("refusal not journaled: %s", log_exc)

    # -- checks ---------------------------------------------------------------------------
    def same_origin(self, request: Request) -> None:
        """A form must come from a page of the desk: the browser says where it comes from."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(403, "Requête refusée", "Cette requête vient d'un autre site que le poste "
                          "du chef (origine différente) : elle est refusée.", attempt=True)
        origin = request.headers.get("origin") or request.headers.get("referer")
        if origin is None:
            raise Refused(403, "Requête refusée", "Cette requête ne dit pas de quelle page elle vient : "
                          "elle est refusée.", attempt=True)
        try:
            parts = urlsplit(origin)
            parts.port  # noqa: B018 - a port that is not a number raises here, not later
        except ValueError:  # "http://[": not an address at all
            raise Refused(403, "Requête refusée", f"Cette requête dit venir de {shown(origin)}, qui n'est pas une "
                          "adresse : elle est refusée.", attempt=True) from None
        if parts.scheme != request.url.scheme or parts.netloc != request.url.netloc:
            raise Refused(403, "Requête refusée", f"Cette requête vient de {parts.scheme}://{parts.netloc}, "
                          "pas du poste du chef : elle est refusée.", attempt=True)

    def check_form(self, session: Session, form) -> None:
        if not session.spend(form.get("csrf")):
            raise Refused(403, "Formulaire refusé", "Ce formulaire n'a pas été délivré par cette session, ou il a "
                          "déjà été envoyé (jeton de sécurité absent, faux ou rejoué) : rien n'a été fait. "
                          "Rechargez la page et recommencez.", attempt=True)


class _SignIn(Exception):
    """No live session: the sign-in page, saying why when the cookie was known."""

    def __init__(self, why: str | None):
        super().__init__(why or "")
        self.why = why


def guarded(desk: Desk, handler, *, signed_in: bool = True):
    """Wrap a page handler with the desk's checks; ``handler(desk, request, session, form)``."""
    async def endpoint(request: Request) -> Response:
        try:
            form = None
            session, why = desk.sessions.get(request.cookies.get(COOKIE)) if signed_in else (None, None)
            request.state.session = session  # a refusal below is logged as this person's
            if request.method == "POST":
                desk.same_origin(request)
                form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
            if signed_in and session is None:
                raise _SignIn(why)
            single(request.query_params, "cette adresse")
            if form is not None:
                single(form, "ce formulaire")
            if form is not None and session is not None:
                desk.check_form(session, form)
            return await handler(desk, request, session, form)
        except _SignIn as exc:
            if request.method == "POST" and exc.why:
                return await run_in_threadpool(desk.refused, request, Refused(
                    401, "Session expirée", "Votre session a été verrouillée ou fermée : rien n'a été fait. "
                    "Reconnectez-vous avec votre phrase secrète.", attempt=False))
            target = "/connexion" + (f"?raison={exc.why}" if exc.why else "")
            return private(RedirectResponse(target, status_code=303))
        except Refused as exc:  # journaled as an attempt: off the event loop, which never waits for the vault
            return await run_in_threadpool(desk.refused, request, exc)
        except PietonError as exc:  # the vault's own refusals
            return await run_in_threadpool(desk.refused, request, vault_refusal(exc))
    return endpoint


class KnownHost:
    """Only requests addressed to the desk's own name (no DNS rebinding): another Host gets a
    page giving the reason, logged as an attempt to access."""

    def __init__(self, app, desk: Desk):
        self.app, self.desk = app, desk

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            name = host[:host.find("]") + 1] if host.startswith("[") else host.split(":")[0]
            if name not in self.desk.config.hosts:
                refusal = Refused(400, "Adresse refusée", f"Cette requête est adressée à {host[:80]!r}, pas au poste "
                                  "du chef (une autre adresse que la sienne) : elle est refusée.", attempt=True)
                page = await run_in_threadpool(self.desk.refused, Request(scope, receive), refusal)
                await page(scope, receive, send)
                return
        await self.app(scope, receive, send)


HTTP_REFUSALS = {
    405: ("Méthode refusée", "Cette adresse ne s'ouvre pas ainsi (un formulaire s'envoie depuis sa page du poste) : "
                             "rien n'a été fait."),
    400: ("Requête refusée", "Cette requête est mal formée (un formulaire du poste n'envoie ni fichier ni champ "
                             "démesuré) : rien n'a été fait."),
}


def create_app(config: DeskConfig, **clocks) -> Starlette:
    desk = Desk(config, **clocks)
    routes = [Route(path, guarded(desk, fn, signed_in=auth), methods=methods)
              for path, fn, methods, auth in (*signin.ROUTES, *pages.ROUTES)]
    routes.append(Mount("/statique", StaticFiles(directory=str(HERE / "static")), name="static"))

    async def not_found(request: Request, exc) -> Response:
        return desk.refused(request, Refused(404, "Page introuvable", f"Le poste n'a pas de page {shown(request.url.path)}."))

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return desk.refused(request, Refused(500, "Erreur interne", "Le poste n'a pas pu répondre à cette demande "
                                             "(erreur interne, inscrite dans son propre journal). Rien n'a été "
                                             "montré ni extrait ; réessayez ou prévenez le technicien."))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return await not_found(request, exc)
        title, reason = HTTP_REFUSALS.get(exc.status_code, ("Requête refusée", "Cette requête n'est pas acceptée "
                                                             "par le poste : rien n'a été fait."))
        return desk.refused(request, Refused(exc.status_code, title, reason))

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: failed},
                    middleware=[Middleware(KnownHost, desk=desk)])
    app.state.desk = desk
    return app
