"""Extractions as background jobs of the desk: the form's answer comes at once, a page
(``/travaux/{id}``) says what is being made and since when, refreshes itself, and leads to
the result or gives the error in the words the desk gives any refusal.

One worker thread runs the jobs in turn (the vault takes one command at a time anyway); the
table lives in the desk's memory only. A job keeps the identity it needs (the signed-in
person's, unlocked at sign-in) until it ends, then drops it; signing out cancels the jobs
still waiting for their turn, and their copies go. A desk stopped mid-job leaves
what ``extract`` leaves when interrupted: hidden ``.part`` files, never a file under its
final name nor a pending clip without its state (tools/vault/training_approval.py ``stage``)."""

from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from starlette.responses import RedirectResponse, Response

from recorder.errors import PietonError
from tools.desk.access import Refused
from tools.desk.forms import vault_refusal
from tools.desk.web import private

log = logging.getLogger("pieton.desk")
REFRESH_S = 2
JOB_WAIT_S = 600.0  # a job waits this long for the vault (the hourly purge, a page's moment): nobody is kept waiting
_ID = re.compile(r"[0-9a-f]{16}")
KEEP = 64  # jobs remembered (the finished ones, for their page); the oldest finished go first
CANCELLED = Refused(410, "Extraction annulée", "Vous vous êtes déconnecté avant que cette extraction commence : elle "
                    "a été annulée et la copie de votre clé qu'elle gardait, effacée. Rien n'a été extrait ; "
                    "demandez-la de nouveau si elle est toujours utile.")
INTERNAL = Refused(500, "Erreur interne", "Le poste n'a pas pu répondre à cette demande (erreur interne, inscrite "
                   "dans son propre journal). Rien n'a été montré ni extrait ; réessayez ou prévenez le technicien.")


@dataclass
class Job:
    id: str
    key: tuple                       # what makes two jobs the same: kind, recording, range, purpose
    what: str                        # said on its page, in French
    author: str                      # the signed-in person's matricule, who the journal names
    person: str
    path: str                        # the address of the form that asked for it (for a refusal logged)
    started: float                   # wall clock, shown
    work: object = field(default=None, repr=False)    # () -> result; dropped once run (it holds the identity)
    done: object = field(default=None, repr=False)    # result -> what the page shows (dict), in the worker
    sessions: set = field(default_factory=set, repr=False)  # the sessions waiting for it (their tokens)
    result: dict | None = None
    error: Refused | None = None
    begun: bool = False
    ended: float | None = None

    @property
    def running(self) -> bool:
        return self.ended is None


class Jobs:
    """The desk's jobs by id; ``start`` queues one unless the same is already waiting or
    running; ``refused(job, exc)`` journals a refusal that is an attempt (the desk's own)."""

    def __init__(self, refused=None, clock=time.time):
        self.clock = clock
        self.refused = refused
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start(self, key: tuple, what: str, session, path: str, work, done=None) -> Job:
        """The job for ``key``: the one already waiting or running, else a new one queued."""
        with self._lock:
            for job in self._jobs.values():
                if job.key == key and job.running:
                    job.sessions.add(session.token)
                    return job
            job = Job(secrets.token_hex(8), key, what, session.matricule, session.person, path, self.clock(),
                      work, done, {session.token})
            self._jobs[job.id] = job
            self._forget_old()
            if self._worker is None:  # daemon: a desk stopped mid-job does not wait minutes for it
                self._worker = threading.Thread(target=self._run, name="desk-jobs", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel_waiting(self, token: str) -> int:
        """A session signs out: the jobs that wait for their turn for it alone are cancelled
        and drop their copy of its identity (one already running ends as it would: stopping
        it midway would leave only its ``.part`` files). Returns how many were cancelled."""
        cancelled = 0
        with self._lock:
            for job in self._jobs.values():
                job.sessions.discard(token)
                if job.running and not job.begun and not job.sessions:
                    job.work = job.done = None
                    job.error, job.ended = CANCELLED, self.clock()
                    cancelled += 1
        return cancelled

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if not j.running]
        for job in finished[:max(0, len(self._jobs) - KEEP)]:
            del self._jobs[job.id]

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            with self._lock:
                if not job.running:  # cancelled while it waited
                    continue
                job.begun = True
            try:
                result = job.work()
                job.result = job.done(result) if job.done else result
            except Refused as exc:
                job.error = exc
            except PietonError as exc:  # the vault's own refusals (as guarded() shows them)
                job.error = vault_refusal(exc)
            except Exception as exc:  # noqa: BLE001 - said on the job's page, logged here
                log.error("desk job %s failed: %s", job.id, type(exc).__name__)
                job.error = INTERNAL
            finally:
                job.work = job.done = None  # the identity goes with the closures
            # Journaled before the job's page says it ended (whoever reads the page then finds
            # the attempt in the journal); a failure to journal never stops the worker.
            try:
                if job.error is not None and job.error.attempt and self.refused is not None:
                    self.refused(job, job.error)
            except Exception as exc:  # noqa: BLE001 - the next jobs must still run
                log.error("desk job %s: refusal not journaled: %s", job.id, type(exc).__name__)
            finally:
                job.ended = self.clock()


def job_id(value: str) -> str:
    if not _ID.fullmatch(value or ""):
        raise Refused(400, "Paramètre refusé", f"{value[:80]!r} n'est pas le numéro d'un travail du poste.",
                      attempt=True)
    return value


async def job_page(desk, request, session, form):
    """Where the job is; never opens the vault (the job holds it), so it answers at once."""
    job = desk.jobs.get(job_id(request.path_params["job"]))
    if job is None:
        raise Refused(404, "Travail introuvable", "Le poste ne connaît pas ce travail : il a peut-être été redémarré "
                      "depuis. Ce qui a été extrait est inscrit au journal du coffre et au registre.")
    if job.running:
        return desk.page(request, "travail.html", vault=False, job=job, refresh=REFRESH_S,
                         elapsed=desk.jobs.clock() - job.started)
    if job.error is not None:
        return desk.page(request, "refus.html", job.error.status, vault=False, title=job.error.title,
                         reason=job.error.reason)
    if "redirect" in job.result:
        return private(RedirectResponse(job.result["redirect"], status_code=303))
    return desk.page(request, job.result["template"], vault=False, **job.result["context"])


def job_started(job: Job) -> Response:
    """The answer to the form: the job's page, at once."""
    return private(RedirectResponse(f"/travaux/{job.id}", status_code=303))


ROUTES = [
    ("/travaux/{job}", job_page, ["GET"], True),
]
