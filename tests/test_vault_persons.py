"""Who may see, and who did what (R241-12, R241-14): designated persons, every operation
authored by a matricule in the journal and the register, identities of no designated
person refused, ingest flagging a camera's recipients, the register printed."""

import json
import tomllib
from pathlib import Path

import pytest
from conftest import read_jsonl
from vault_support import CAMERA, make_spool

from recorder.evidence.age import generate_identity
from tools.cli import main

MAT = "PM-0042"


def _key(tmp_path, name):
    identity, recipient = generate_identity()
    path = tmp_path / f"{name}.key"
    path.write_text(identity + "\n")
    return str(path), recipient


def _designate(v, identity, recipient=None, *, name="Claire Martin", matricule=MAT, role="responsable"):
    return main(["vault", "designate", v, "--name", name, "--matricule", matricule, "--role", role,
                 "--designated-by", "Maire d'Autun", "--decision", "arrêté 2026-118", "--recipient", recipient,
                 "--identity", identity])


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A vault whose chief (PM-0042) is designated; a spool of two recordings to offload."""
    monkeypatch.delenv("PIETON_IDENTITY", raising=False)
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    register = tmp_path / "police" / "register.jsonl"
    identity, recipient = _key(tmp_path, "chief")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(register)]) == 0
    assert _designate(v, identity, recipient) == 0
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=2, segments=2)
    assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014", "--identity", identity]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex, "--identity", identity]) == 0
    ids = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    return v, register, identity, recipient, spool_dir, ids


def _journal(v):
    return read_jsonl(Path(v) / "journal.jsonl")


def test_designate_and_revoke_print_the_fleet_recipients_and_are_logged_twice(tmp_path, setup, capsys):
    v, register, identity, recipient, _, _ = setup
    agent_key, agent_recipient = _key(tmp_path, "agent")
    capsys.readouterr()
    assert _designate(v, identity, agent_recipient, name="Paul Roy", matricule="PM-0107", role="agent-habilité") == 0
    out = capsys.readouterr().out
    assert "[keys]" in out and f'"{recipient}",  # Claire Martin, {MAT}, responsable' in out
    assert f'"{agent_recipient}",  # Paul Roy, PM-0107, agent-habilité' in out
    entry = _journal(v)[-1]
    assert entry["event"] == "person-designated" and entry["operator"] == MAT and entry["matricule"] == "PM-0107"
    assert read_jsonl(register)[-1]["journal_hash"] and read_jsonl(register)[-1]["event"] == "person-designated"
    # An agent may not designate or revoke
    assert main(["vault", "revoke", v, "--matricule", MAT, "--decision", "X", "--identity", agent_key]) == 2
    assert "needs the role maire or responsable" in capsys.readouterr().err
    assert main(["vault", "revoke", v, "--matricule", "PM-0107", "--decision", "arrêté 2026-131",
                 "--identity", identity]) == 0
    out = capsys.readouterr().out
    assert agent_recipient not in out and recipient in out and "still opens what was encrypted" in out
    assert tomllib.loads(out[out.index("[keys]"):])["keys"]["recipients"] == [recipient]  # pasted as printed
    assert read_jsonl(register)[-1]["event"] == "person-revoked" and read_jsonl(register)[-1]["operator"] == MAT
    # The revoked person's identity is refused from now on, and the attempt journaled.
    assert main(["vault", "list", v, "--identity", agent_key]) == 2
    assert "revoked" in capsys.readouterr().err
    refused = _journal(v)[-1]
    assert refused["event"] == "access-refused" and refused["recipient"] == agent_recipient
    capsys.readouterr()
    assert main(["vault", "persons", v]) == 0
    listed = capsys.readouterr().out
    assert "PM-0107      Paul Roy — agent-habilité" in listed and "revoked" in listed and agent_recipient not in listed
    assert main(["vault", "verify", v]) == 0


def test_the_first_designation_is_the_person_running_it_and_an_edited_list_is_refused(tmp_path, capsys):
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    identity, recipient = _key(tmp_path, "chief")
    _, other = _key(tmp_path, "other")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(tmp_path / "police" / "r")]) == 0
    assert _designate(v, identity, other) == 2   # designating someone else with no one designated yet
    assert "first designation" in capsys.readouterr().err
    assert _designate(v, identity, recipient, role="agent-habilité") == 2
    assert _designate(v, identity, recipient) == 0
    persons = Path(v) / "persons.json"
    doc = json.loads(persons.read_text())
    doc["persons"][0]["recipient"] = other    # someone swaps their own key in
    persons.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["vault", "list", v, "--identity", identity]) == 2
    assert "not signed by this vault" in capsys.readouterr().err


def test_an_identity_of_no_designated_person_is_refused_and_logged(tmp_path, setup, capsys):
    v, register, _identity, _, spool_dir, _ = setup
    stranger, stranger_recipient = _key(tmp_path, "stranger")
    capsys.readouterr()
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", stranger]) == 2
    err = capsys.readouterr().err
    assert "not that of a designated person" in err and "R241-12" in err and "Traceback" not in err
    last = _journal(v)[-1]
    assert last["event"] == "access-refused" and last["recipient"] == stranger_recipient
    assert last["action"] == "ingest"
    assert not any(e["event"] == "recording-ingested" for e in _journal(v))
    # No identity at all is an argument error
    with pytest.raises(SystemExit):
        main(["vault", "hold", v, "X", "--procedure", "P"])


def test_every_operation_is_authored_by_the_matricule_in_journal_and_register(tmp_path, setup, monkeypatch, capsys):
    v, register, identity, _, spool_dir, ids = setup
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("PIETON_IDENTITY", identity)
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress"]) == 0
    assert main(["vault", "hold", v, ids[0], "--procedure", "PV-17"]) == 0
    assert main(["vault", "release", v, ids[0], "--procedure", "PV-17"]) == 0
    assert main(["vault", "find", v, "--from", "2026-11-18T00:00Z", "--to", "2026-11-19T00:00Z",
                 "--purpose", "judiciaire", "--requester", "OPJ Durand"]) == 0
    assert main(["vault", "view", v, ids[1], "--purpose", "judiciaire", "--requester", "OPJ Durand",
                 "--no-play"]) == 0
    assert main(["vault", "extract", v, ids[1], "--purpose", "judiciaire", "--requester", "OPJ Durand",
                 "--deliver-to", "Parquet", "--out", str(tmp_path / "pv.mp4")]) == 0
    monkeypatch.delenv("PIETON_IDENTITY")   # the hourly timer has no identity
    assert main(["vault", "purge", v, "--now", "2027-03-01T00:00Z"]) == 0
    journal = _journal(v)
    wanted = ("recording-ingested", "hold", "release", "search", "consultation", "extraction", "recording-erased")
    by_event = {e["event"]: e for e in journal}
    for event in wanted[:-1]:
        assert by_event[event]["operator"] == MAT, event
    assert by_event["recording-erased"]["operator"] == "automatique"   # the timer's erasure, no person's
    assert not any(e.get("operator") == "someone-else" for e in journal)
    lines = read_jsonl(register)
    for event in wanted:
        assert any(r["event"] == event for r in lines), event
    assert all(r.get("operator") in (MAT, "automatique") for r in lines if r["event"] != "register-opened")
    assert main(["vault", "verify", v]) == 0


def test_ingest_flags_a_camera_whose_recipients_differ_from_the_designated_set(tmp_path, setup, capsys):
    v, register, identity, recipient, _, _ = setup
    _, former = _key(tmp_path, "former")
    spool_dir, signer = make_spool(tmp_path, [recipient, former], recordings=1, segments=1, name="other",
                                   camera="CAM-T-002")
    assert main(["vault", "enrol", v, "--camera", "CAM-T-002", "--key", signer.public_key_hex,
                 "--identity", identity]) == 0
    capsys.readouterr()
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", identity]) == 0
    out = capsys.readouterr().out
    assert "1 stored" in out   # stored all the same: refusing would lose evidence
    assert "WARNING" in out and "not designated" in out and "CAM-T-002" in out
    flagged = [e for e in _journal(v) if e["event"] == "recipients-differ"]
    assert len(flagged) == 1 and flagged[0]["not_designated"] == [former] and flagged[0]["operator"] == MAT


def test_the_search_rule(setup, capsys):
    v, register, identity, _, spool_dir, ids = setup
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", identity]) == 0
    period = ["--from", "2026-11-18T00:00Z", "--to", "2026-11-19T00:00Z", "--identity", identity]
    capsys.readouterr()
    assert main(["vault", "find", v, *period, "--agent", "A-1234"]) == 2
    assert "monitoring the agents" in capsys.readouterr().err
    assert main(["vault", "find", v, *period]) == 2
    assert main(["vault", "find", v, *period, "--purpose", "curiosité", "--requester", "X"]) == 2
    assert "droit d'accès" in capsys.readouterr().err
    assert main(["vault", "find", v, *period, "--purpose", "Disciplinaire", "--agent", "A-1234"]) == 2
    assert "--requester" in capsys.readouterr().err
    assert main(["vault", "find", v, *period, "--purpose", "Disciplinaire", "--agent", "A-1234",
                 "--requester", "Maire", "--json"]) == 0
    assert [f["recording"] for f in json.loads(capsys.readouterr().out)["found"]] == ids
    assert main(["vault", "find", v, *period, "--purpose", "disciplinaire", "--agent", "A-9999",
                 "--requester", "Maire", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["found"] == []
    assert main(["vault", "find", v, *period, "--purpose", "DROIT D'ACCÈS", "--requester", "M. Dupont",
                 "--near", "46.951,4.301", "--radius", "500"]) == 0
    assert "search (access, asked by M. Dupont) logged: journal entry" in capsys.readouterr().out
    searches = [e for e in _journal(v) if e["event"] == "search"]
    assert [s["purpose"] for s in searches] == ["disciplinary", "disciplinary", "access"]
    assert searches[0]["filters"] == {"agent": "A-1234"} and searches[0]["requester"] == "Maire"
    assert [r["purpose"] for r in read_jsonl(register) if r["event"] == "search"] == [s["purpose"] for s in searches]
    capsys.readouterr()
    assert main(["vault", "stats", v, "--year", "2026", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["access_requests_searched"] == 1


def test_register_prints_for_an_inspection(tmp_path, setup, capsys):
    v, register, identity, _, spool_dir, ids = setup
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress", "--identity", identity]) == 0
    assert main(["vault", "hold", v, ids[0], "--procedure", "PV-17", "--identity", identity]) == 0
    capsys.readouterr()
    assert main(["vault", "register", v]) == 0
    out = capsys.readouterr().out
    assert "Collecte (déchargement)" in out and "Retenue pour une procédure" in out and MAT in out
    assert "procédure : PV-17" in out and (" CET " in out or " CEST " in out)
    assert main(["vault", "register", v, "--format", "csv"]) == 0
    rows = capsys.readouterr().out.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("Date;Opération;Auteur") and len(rows) == 1 + 1 + 2 + 1  # designation, 2 ingests, hold
    assert main(["vault", "register", v, "--format", "html", "--from", "2099-01-01T00:00Z"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!doctype html>") and "0 opération(s)" in page
    assert main(["vault", "register", v, "--from", "2026-01-02", "--to", "2026-01-01"]) == 2
    lines = register.read_text().splitlines()
    register.write_text("\n".join(lines[:-2] + lines[-1:]) + "\n")   # a line removed
    assert main(["vault", "register", v]) == 2
    assert "does not verify" in capsys.readouterr().err


def test_designation_bad_input_is_named_and_changes_nothing(tmp_path, setup, capsys):
    v, register, identity, recipient, _, _ = setup
    before = (Path(v) / "persons.json").read_bytes()
    _, other = _key(tmp_path, "other")
    cases = [({"recipient": "age1nope"}, "--recipient 'age1nope'"),
             ({"recipient": other, "matricule": "PM 7; rm"}, "--matricule 'PM 7; rm'"),
             ({"recipient": other, "matricule": MAT}, f"--matricule {MAT}: already designated"),
             ({"recipient": recipient, "matricule": "PM-9"}, "already the key of Claire Martin"),
             ({"recipient": other, "matricule": "PM-9", "name": "a\nb"}, "--name")]
    for overrides, said in cases:
        capsys.readouterr()
        assert _designate(v, identity, **{"matricule": "PM-9", **overrides}) == 2, overrides
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, (said, err)
    assert main(["vault", "revoke", v, "--matricule", "PM-404", "--decision", "X", "--identity", identity]) == 2
    assert "no designated person has it" in capsys.readouterr().err
    assert main(["vault", "revoke", v, "--matricule", MAT, "--decision", "X", "--identity", identity]) == 2
    assert "cannot revoke themselves" in capsys.readouterr().err
    assert (Path(v) / "persons.json").read_bytes() == before
