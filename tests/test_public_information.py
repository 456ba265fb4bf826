"""`pieton vault information`: the text the mayor publishes (CSI L241-2, R241-15), built
from the vault's arrêté and contact and the cameras' configuration, never from values
written in the code; refused, naming what is missing, while any of it is missing."""

import json
from pathlib import Path

import pytest
from conftest import designate, write_config

from recorder.evidence.age import generate_identity
from tools.cli import main

AUTUN = Path(__file__).resolve().parent.parent / "config" / "communes" / "autun.geojson"


@pytest.fixture
def chief(tmp_path, monkeypatch):
    """The chief's identity file (the one vault commands use) and recipient."""
    identity, recipient = generate_identity()
    path = tmp_path / "chief.key"
    path.write_text(identity + "\n")
    monkeypatch.setenv("PIETON_IDENTITY", str(path))
    return path, recipient


@pytest.fixture
def recipient(chief):
    return chief[1]


def make_vault(tmp_path, recipient, name="vault", communes=()):
    """A vault whose chief is designated (authorise is their act)."""
    (tmp_path / "police").mkdir(exist_ok=True)
    v = str(tmp_path / name)
    extra = [a for c in communes for a in ("--commune", str(c))]
    assert main(["vault", "init", v, "--recipient", recipient, "--register",
                 str(tmp_path / "police" / f"{name}.jsonl"), *extra]) == 0
    designate(v, tmp_path / "chief.key", recipient)
    return v


def information(v, capsys, *extra):
    capsys.readouterr()
    code = main(["vault", "information", v, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_text_is_built_from_the_vaults_arrete_and_contact(tmp_path, recipient, capsys):
    v = make_vault(tmp_path, recipient, communes=[AUTUN])
    assert main(["vault", "authorise", v, "--arrete", "2026-DSC-0412", "--date", "12/03/2026", "--cameras", "3",
                 "--communes", "71014", "--until", "30/06/2031", "--mairie", "Mairie d'Autun",
                 "--service", "Police municipale d'Autun", "--address", "Place du Champ de Mars, 71400 Autun",
                 "--contact", "03 85 00 00 00"]) == 0
    code, text, err = information(v, capsys)
    assert code == 0, err
    assert "arrêté n° 2026-DSC-0412 du 12/03/2026" in text
    assert "3 caméras individuelles, jusqu'au 30/06/2031" in text
    assert "Autun (INSEE 71014)" in text
    assert "Mairie d'Autun" in text and "Police municipale d'Autun, Place du Champ de Mars, 71400 Autun" in text
    assert "(03 85 00 00 00)" in text
    # the law's part: the four purposes, one month then erased, the rights, the CNIL
    for purpose in ("prévention des incidents", "constat des infractions", "formation et la pédagogie",
                    "information du public sur les circonstances"):
        assert purpose in text
    assert "conservés un mois" in text and "effacés automatiquement" in text and "R241-13" in text
    assert "droit d'accès" in text and "R241-15" in text and "CNIL" in text and "opposition" in text
    code, page, _ = information(v, capsys, "--format", "html")
    assert code == 0 and page.startswith("<!DOCTYPE html>") and '<html lang="fr">' in page
    assert "Mairie d&#x27;Autun" in page and page.count("<li>") == 4


def test_other_values_give_another_text_nothing_is_hard_coded(tmp_path, recipient, capsys):
    v = make_vault(tmp_path, recipient)
    assert main(["vault", "authorise", v, "--arrete", "PREF-2A-77", "--date", "2026-01-05", "--cameras", "1",
                 "--communes", "2A004", "2A041", "--mairie", "Mairie d'Ajaccio", "--service", "Police municipale",
                 "--address", "Avenue Antoine Serafini, 20000 Ajaccio"]) == 0
    code, text, err = information(v, capsys)
    assert code == 0, err
    assert "arrêté n° PREF-2A-77 du 05/01/2026" in text and "une caméra individuelle, sur" in text
    assert "INSEE 2A004, INSEE 2A041" in text and "Ajaccio" in text and "jusqu'au" not in text
    assert "Autun" not in text and "71014" not in text and "2026-DSC-0412" not in text


def test_refused_without_an_arrete_naming_what_is_missing(tmp_path, recipient, capsys):
    v = make_vault(tmp_path, recipient)
    code, text, err = information(v, capsys)
    assert code == 2 and text == ""
    assert "no prefect's arrêté is recorded" in err and "vault authorise" in err
    for option in ("--mairie", "--service", "--address"):
        assert option in err
    assert "Traceback" not in err
    # the contact alone is not enough either
    assert main(["vault", "authorise", v, "--mairie", "Mairie", "--service", "PM", "--address", "Rue"]) == 0
    code, _, err = information(v, capsys)
    assert code == 2 and "no prefect's arrêté" in err and "--mairie" not in err


def test_the_configuration_must_serve_under_the_vaults_arrete_and_names_the_notice(tmp_path, recipient, capsys):
    v = make_vault(tmp_path, recipient)
    assert main(["vault", "authorise", v, "--arrete", "2026-DSC-0412", "--date", "12/03/2026", "--cameras", "3",
                 "--communes", "71014", "--mairie", "Mairie d'Autun", "--service", "PM", "--address", "Rue"]) == 0
    stale = write_config(tmp_path / "old", {"authorisation": {"arrete": "2019-PREF-1", "communes": ["71014"]}})
    code, _, err = information(v, capsys, "--config", str(stale))
    assert code == 2 and "'2019-PREF-1'" in err and "'2026-DSC-0412'" in err
    good = write_config(tmp_path / "cfg", {"authorisation": {"arrete": "2026-DSC-0412", "communes": ["71014"]},
                                           "notice": {"text": "Attention, vous êtes filmés."}})
    code, text, err = information(v, capsys, "--config", str(good))
    assert code == 0, err
    assert "« Attention, vous êtes filmés. »" in text
    assert "Autun (INSEE 71014)" in text   # named by the configuration's boundary
    code, _, err = information(v, capsys, "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "--config" in err


def test_the_contact_is_journaled_and_kept_across_arretes(tmp_path, recipient, capsys):
    v = make_vault(tmp_path, recipient)
    assert main(["vault", "authorise", v, "--mairie", "Mairie d'Autun", "--service", "PM", "--address", "Rue"]) == 0
    assert main(["vault", "authorise", v, "--arrete", "A-2", "--date", "12/03/2026", "--cameras", "3",
                 "--communes", "71014", "--address", "Place du Champ de Mars"]) == 0
    code, text, _ = information(v, capsys)
    assert code == 0 and "PM, Place du Champ de Mars" in text
    events = [json.loads(line) for line in (Path(v) / "journal.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["event"].endswith("-recorded")] == [
        "contact-recorded", "authorisation-recorded", "contact-recorded"]
    assert main(["vault", "authorise", v, "--address", "x" * 301]) == 2
