"""The chief's vault commands as typed: `vault list` (index only, not an access request),
times in the vault's zone, French purposes, camera ids in any case, and the stumbles of
issue 14 (`view --no-play`, a mistyped `--end`)."""

import json
from pathlib import Path

import pytest
from conftest import designate, read_jsonl
from vault_support import CAMERA, make_spool

from recorder.evidence.age import generate_identity
from tools.cli import main
from tools.vault.vault import Vault


@pytest.fixture
def chief():
    return generate_identity()


@pytest.fixture
def setup(tmp_path, chief, monkeypatch):
    """A vault (Europe/Paris) holding two recordings of CAMERA, made 2026-11-18 from
    11:06:40Z (12:06:40 CET) and 10 minutes apart; the chief's identity in a file, the
    chief designated and their identity the one commands use (PIETON_IDENTITY)."""
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    register = tmp_path / "police" / "register.jsonl"
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(register)]) == 0
    identity = tmp_path / "chief.key"
    identity.write_text(chief[0] + "\n")
    designate(v, identity, chief[1], monkeypatch)
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=2)
    assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014"]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex]) == 0
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress"]) == 0
    ids = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
    return v, register, ids, str(identity)


def _journal(v):
    return read_jsonl(Path(v) / "journal.jsonl")


def _stats(v, capsys):
    capsys.readouterr()
    assert main(["vault", "stats", v, "--year", "2026", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_shows_index_fields_in_local_time_decrypts_nothing_and_is_no_access_request(setup, capsys):
    v, register, ids, _ = setup
    for folder in (Path(v) / "recordings" / CAMERA).iterdir():
        for f in folder.iterdir():   # nothing is decrypted: the recordings' files may even be gone
            f.unlink()
    register_before = register.read_bytes()
    capsys.readouterr()
    assert main(["vault", "list", v]) == 0
    out = capsys.readouterr().out
    assert ids[0] in out and ids[1] in out
    assert "2026-11-18 12:06:40 CET to 2026-11-18 12:06:44 CET (4 s)" in out
    assert "kept until 2026-12-19 00:00:00 CET" in out   # the end of the same day a month later
    assert main(["vault", "list", v, "--from", "18/11/2026 12:10", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["recordings"]
    assert [r["recording"] for r in listed] == ids[1:]
    assert listed[0]["camera"] == CAMERA and listed[0]["holds"] == [] and listed[0]["quarantine"] is None
    assert listed[0]["duration_s"] == 4.0
    assert [e for e in _journal(v) if e["event"] == "listing"][-1]["listed"] == 1
    assert register.read_bytes() == register_before   # a listing is not registered
    figures = _stats(v, capsys)
    assert figures["access_requests_searched"] == 0


def test_list_shows_holds(setup, capsys):
    v, _, ids, _ = setup
    assert main(["vault", "hold", v, ids[0], "--procedure", "PV-2026-17"]) == 0
    capsys.readouterr()
    assert main(["vault", "list", v, "--camera", CAMERA.lower(), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["recordings"]
    assert [r["holds"] for r in listed] == [["PV-2026-17"], []]


def test_a_camera_id_in_another_case_matches_and_a_near_miss_is_suggested(setup, capsys):
    v, _, ids, _ = setup
    capsys.readouterr()
    assert main(["vault", "find", v, "--from", "2026-11-18T00:00Z", "--to", "2026-11-19T00:00Z",
                 "--camera", CAMERA.lower(), "--json", "--purpose", "judiciaire", "--requester", "R"]) == 0
    assert [f["recording"] for f in json.loads(capsys.readouterr().out)["found"]] == ids
    assert main(["vault", "list", v, "--camera", "CAM-T-01"]) == 2
    err = capsys.readouterr().err
    assert "'CAM-T-01'" in err and f"did you mean {CAMERA}" in err and "Traceback" not in err


def test_view_no_play_registers_played_false(setup):
    v, register, ids, identity = setup
    assert main(["vault", "view", v, ids[0], "--purpose", "judicial", "--requester", "R",
                 "--identity", identity, "--no-play"]) == 0
    line = [x for x in read_jsonl(register) if x.get("event") == "consultation"][-1]
    assert line["played"] is False


def test_a_mistyped_end_is_an_argument_error_not_an_access_attempt(tmp_path, setup, capsys):
    v, register, ids, identity = setup
    journal_before, register_before = len(_journal(v)), register.read_bytes()
    capsys.readouterr()
    assert main(["vault", "extract", v, ids[0], "--purpose", "judicial", "--requester", "R", "--deliver-to", "D",
                 "--identity", identity, "--out", str(tmp_path / "x.mp4"), "--end", "2026-11-18T12:06:4x"]) == 2
    err = capsys.readouterr().err
    assert "--end '2026-11-18T12:06:4x'" in err and "Traceback" not in err
    assert len(_journal(v)) == journal_before and register.read_bytes() == register_before
    assert _stats(v, capsys)["failed_extractions_by_purpose"] == {}
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("typed, internal", [("JUDICIAIRE", "judicial"), ("Disciplinaire", "disciplinary"),
                                             ("administrative", "administrative")])
def test_purposes_accept_their_french_names_in_any_case(setup, typed, internal):
    v, register, ids, identity = setup
    assert main(["vault", "view", v, ids[0], "--purpose", typed, "--requester", "R",
                 "--identity", identity, "--no-play"]) == 0
    assert [x for x in read_jsonl(register) if x.get("event") == "consultation"][-1]["purpose"] == internal


def test_formation_extracts_for_training(tmp_path, setup):
    v, register, ids, identity = setup
    assert main(["vault", "extract", v, ids[0], "--purpose", "Formation", "--requester", "R", "--deliver-to", "D",
                 "--identity", identity, "--out", str(tmp_path / "t.mp4")]) == 0
    assert [x for x in read_jsonl(register) if x.get("event") == "extraction"][-1]["purpose"] == "training"


def test_times_without_zone_are_local_to_the_vault_and_printed_with_their_zone(tmp_path, setup, capsys):
    v, _, ids, identity = setup
    capsys.readouterr()
    # 12:06 to 12:07 in Paris is 11:06Z to 11:07Z: recording 0 only (read as UTC: nothing).
    for since, until in (("18/11/2026 12:06", "18/11/2026 12:07"), ("2026-11-18T12:06", "2026-11-18 12:07")):
        assert main(["vault", "find", v, "--from", since, "--to", until, "--purpose", "judiciaire",
                     "--requester", "R"]) == 0
        out = capsys.readouterr().out
        assert ids[0] in out and ids[1] not in out and "2026-11-18 12:06:40 CET" in out
    # --start as a local time: 2 s after the recording's start.
    assert main(["vault", "extract", v, ids[0], "--purpose", "judiciaire", "--requester", "R", "--deliver-to", "D",
                 "--identity", identity, "--out", str(tmp_path / "p.mp4"), "--start", "18/11/2026 12:06:42"]) == 0
    report = json.loads((tmp_path / "p.report.json").read_text())
    assert report["mp4"]["range_s"][0] == pytest.approx(2.0, abs=0.05)


def test_an_ambiguous_or_missing_local_time_asks_for_the_offset(setup, capsys):
    v, _, _, _ = setup
    capsys.readouterr()
    assert main(["vault", "find", v, "--from", "25/10/2026 02:30", "--to", "26/10/2026", "--purpose", "judiciaire",
                 "--requester", "R"]) == 2
    err = capsys.readouterr().err
    assert "happens twice" in err and "+02:00" in err and "+01:00" in err
    assert main(["vault", "list", v, "--from", "29/03/2026 02:30"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_purge_now_is_a_local_time(setup, capsys):
    v, _, ids, _ = setup
    capsys.readouterr()
    # Recording 0 (18 November, 12:06 CET) is due at the end of 18 December, local time.
    assert main(["vault", "purge", v, "--now", "18/12/2026 23:59"]) == 0
    assert "0 erased" in capsys.readouterr().out
    assert main(["vault", "purge", v, "--now", "19/12/2026 00:00"]) == 0
    assert f"erased {ids[0]}" in capsys.readouterr().out
    assert main(["vault", "hold", v, ids[0], "--procedure", "PV-1"]) == 2
    assert "was erased on 2026-12-19 00:00:00 CET" in capsys.readouterr().err


def test_vault_zone_is_set_at_init_and_old_vaults_read_as_paris(tmp_path, chief, capsys, monkeypatch):
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "cayenne")
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(tmp_path / "police" / "r"),
                 "--timezone", "America/Cayenne"]) == 0
    (tmp_path / "chief.key").write_text(chief[0] + "\n")
    designate(v, tmp_path / "chief.key", chief[1], monkeypatch)
    with Vault.open(v) as vault:
        assert vault.timezone == "America/Cayenne"
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1)
    assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014"]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex]) == 0
    assert main(["vault", "ingest", v, "--from", str(spool_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["vault", "list", v, "--from", "18/11/2026 08:06", "--to", "18/11/2026 08:07"]) == 0
    assert "2026-11-18 08:06:40 -03" in capsys.readouterr().out
    settings = json.loads((tmp_path / "cayenne" / "vault.json").read_text())
    del settings["timezone"]
    (tmp_path / "cayenne" / "vault.json").write_text(json.dumps(settings))
    with Vault.open(v) as vault:
        assert vault.timezone == "Europe/Paris"
    assert main(["vault", "init", str(tmp_path / "v2"), "--recipient", chief[1], "--register",
                 str(tmp_path / "police" / "r2"), "--timezone", "Europe"]) == 2
    assert "unknown time zone 'Europe'" in capsys.readouterr().err
