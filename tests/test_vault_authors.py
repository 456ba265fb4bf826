"""Every operation on the vault names its author (CSI R241-12, R241-14): recording the
prefect's arrêté, enrolling and retiring a camera are the mayor's or the chief's acts,
signed by their identity, and the journal carries their matricule; a check or a copy run
without an identity is the timer's ("automatique"), never the machine's login."""

from pathlib import Path

import pytest
from conftest import designate, read_jsonl
from test_vault_persons import _key
from vault_support import CAMERA, make_spool

from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from tools.cli import main

MAT = "PM-0007"


@pytest.fixture
def vault(tmp_path, monkeypatch):
    monkeypatch.delenv("PIETON_IDENTITY", raising=False)
    monkeypatch.setenv("USER", "someone-else")
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    identity, recipient = _key(tmp_path, "chief")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(tmp_path / "police" / "r")]) == 0
    designate(v, identity, recipient, matricule=MAT)
    return v, identity, recipient


def _arrete(v, *extra):
    return ["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
            "--communes", "71014", *extra]


def test_authorise_enrol_retire_verify_mirror_name_their_author(tmp_path, vault):
    v, identity, recipient = vault
    me = ["--identity", identity]
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=1, segments=1)
    assert main([*_arrete(v, "--mairie", "Mairie d'Autun"), *me]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex, *me]) == 0
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", *me]) == 0
    assert main(["vault", "retire", v, "--camera", CAMERA, "--reason", "lost", *me]) == 0
    assert main(["vault", "verify", v]) == 0
    (tmp_path / "mirror").mkdir()
    assert main(["vault", "mirror", v, str(tmp_path / "mirror")]) == 0
    assert main(["vault", "verify", v, *me]) == 0
    journal = read_jsonl(Path(v) / "journal.jsonl")
    first = next(n for n, e in enumerate(journal) if e["event"] == "person-designated")
    by_event = {}
    for e in journal[first:]:
        by_event.setdefault(e["event"], []).append(e["operator"])
    for event in ("authorisation-recorded", "contact-recorded", "camera-enrolled", "camera-retired"):
        assert by_event[event] == [MAT], event
    assert by_event["vault-verified"] == ["automatique", MAT]
    assert by_event["mirrored"] == ["automatique"]
    # from the first designation on, no line of the journal is without its author
    assert all(e.get("operator") for e in journal[first:]), [e["event"] for e in journal[first:]
                                                           if not e.get("operator")]
    assert not any(e.get("operator") == "someone-else" for e in journal)


@pytest.mark.parametrize("command", [
    lambda v: _arrete(v),
    lambda v: ["vault", "enrol", v, "--camera", CAMERA, "--key", "ab" * 32],
    lambda v: ["vault", "retire", v, "--camera", CAMERA, "--reason", "lost"],
])
def test_an_identity_of_no_designated_person_or_an_agent_is_refused_and_the_attempt_logged(
        tmp_path, vault, capsys, command):
    v, identity, _ = vault
    assert main([*_arrete(v), "--identity", identity]) == 0
    stranger, _ = _key(tmp_path, "stranger")
    agent, agent_recipient = _key(tmp_path, "agent")
    assert main(["vault", "designate", v, "--name", "Agent", "--matricule", "PM-0100", "--role", "agent-habilité",
                 "--designated-by", "Maire", "--decision", "D-2", "--recipient", agent_recipient,
                 "--identity", identity]) == 0
    before = len(read_jsonl(Path(v) / "journal.jsonl"))
    capsys.readouterr()
    for who, says in ((stranger, "not that of a designated person"), (agent, "needs the role maire or responsable")):
        assert main([*command(v), "--identity", who]) == 2
        err = capsys.readouterr().err
        assert says in err and "R241-12" in err and "Traceback" not in err
    after = read_jsonl(Path(v) / "journal.jsonl")[before:]
    assert [e["event"] for e in after] == ["access-refused", "access-refused"]
    assert after[1]["operator"] is None and after[1]["recipient"] == agent_recipient


def test_without_an_identity_the_act_is_refused_naming_the_option(vault, capsys):
    v, _, _ = vault
    for command in (_arrete(v), ["vault", "enrol", v, "--camera", CAMERA, "--key", "ab" * 32],
                    ["vault", "retire", v, "--camera", CAMERA, "--reason", "lost"]):
        with pytest.raises(SystemExit) as stop:
            main(command)
        assert stop.value.code == 2 and "--identity" in capsys.readouterr().err
    assert not (Path(v) / "authorisation.json").exists()


def test_a_wrong_passphrase_at_designation_is_refused_and_logged(tmp_path, vault, monkeypatch, capsys):
    v, _, _ = vault
    secret, recipient = generate_identity()
    locked = tmp_path / "locked.age"
    locked.write_bytes(encrypt_with_passphrase((secret + "\n").encode(), "correct horse", work_factor=2))
    monkeypatch.setenv("PIETON_PASSPHRASE", "wrong")
    assert main(["vault", "designate", v, "--name", "X", "--matricule", "PM-0200", "--role", "agent-habilité",
                 "--designated-by", "Maire", "--decision", "D-3", "--recipient", recipient,
                 "--identity", str(locked)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    last = read_jsonl(Path(v) / "journal.jsonl")[-1]
    assert last["event"] == "access-refused" and last["action"] == "designate"


@pytest.mark.parametrize("by", [None, "J. Dupont, technicien de la mairie"])
def test_the_vaults_creation_names_its_author_too(tmp_path, monkeypatch, by):
    """No one is designated when the vault is made: its first lines say 'installation',
    with the installer as they gave it (--by), never the login name."""
    monkeypatch.setenv("USER", "someone-else")
    (tmp_path / "police").mkdir()
    v, register = str(tmp_path / "vault"), tmp_path / "police" / "r"
    _, recipient = _key(tmp_path, "chief")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(register),
                 *(["--by", by] if by else [])]) == 0
    journal, lines = read_jsonl(Path(v) / "journal.jsonl"), read_jsonl(register)
    created = next(e for e in journal if e["event"] == "vault-created")
    opened = next(e for e in lines if e["event"] == "register-opened")
    assert created["operator"] == opened["operator"] == "installation"
    assert created.get("installed_by") == opened.get("installed_by") == by
    assert all(e.get("operator") for e in journal if e["event"] != "checkpoint")
    assert main(["vault", "verify", v]) == 0


def test_an_unprintable_installer_is_refused(tmp_path, capsys):
    (tmp_path / "police").mkdir()
    _, recipient = _key(tmp_path, "chief")
    assert main(["vault", "init", str(tmp_path / "vault"), "--recipient", recipient, "--register",
                 str(tmp_path / "police" / "r"), "--by", "a\nb"]) == 2
    assert "--by" in capsys.readouterr().err and not (tmp_path / "vault").exists()
