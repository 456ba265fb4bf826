"""The prefect's arrêté in the vault (CSI L241-2, R241-8): `vault authorise` records it
(journaled, a new one supersedes, the history kept), `vault enrol` stays within its number
of cameras, `vault retire` frees a place and sends a retired camera's later recordings to
quarantine, and ingest checks the arrêté each recording names."""

import json
import time
from pathlib import Path

import pytest
from conftest import designate, read_jsonl
from test_vault_media import make_segments
from vault_support import CAMERA, START, Clock

from drivers.signer import FileSigner
from recorder.errors import VaultError
from recorder.evidence.age import generate_identity
from recorder.evidence.spool import Spool
from tools.cli import main
from tools.vault import authorisation
from tools.vault.ingest import ingest
from tools.vault.vault import Vault, init_vault

ARRETE = {"arrete": "2026-DSC-0412", "communes": ["71014"], "until": "2031-06-30"}


def key_hex(tmp_path, name):
    return FileSigner.create(tmp_path / "keys" / name / "device-signing.key").public_key_hex


def spool_with(tmp_path, recipient, named, *, starts, signer=None, name="spool", clock_source="gps"):
    """A camera's spool, one short recording per start time, each opened under ``named``
    (the configuration's arrêté as the daemon passes it)."""
    spool_dir = tmp_path / name
    signer = signer or FileSigner.create(tmp_path / f"{name}-key" / "device-signing.key")
    wall = Clock(starts[0])
    media = make_segments(1)
    with Spool(spool_dir, signer, [recipient], CAMERA, "0" * 64, True, wall_clock=wall) as spool:
        spool.recover()
        for start in starts:
            wall.t = start
            rec = spool.open_recording(start, "agent", {"clock_source": clock_source},
                                      authorisation=named)
            seg = rec.open_segment()
            seg.write(media[0])
            wall.t += 2
            seg.seal()
            rec.close("agent stop")
    return spool_dir, signer


@pytest.fixture
def chief():
    return generate_identity()


@pytest.fixture
def vault_dir(tmp_path, chief, monkeypatch):
    """A vault whose chief is designated: their identity signs authorise, enrol, retire."""
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(tmp_path / "police" / "r.jsonl")]) == 0
    identity = tmp_path / "chief.key"
    identity.write_text(chief[0] + "\n")
    designate(v, identity, chief[1], monkeypatch)
    return v


def authorise(v, *extra, cameras="2", ref="2026-DSC-0412", day="12/03/2026"):
    return main(["vault", "authorise", v, "--arrete", ref, "--date", day, "--cameras", cameras,
                 "--communes", "71014", *extra])


def test_authorise_records_the_arrete_journaled_and_a_new_one_supersedes_keeping_the_history(vault_dir, capsys):
    assert authorise(vault_dir, "--until", "30/06/2031") == 0
    assert "recorded the arrêté 2026-DSC-0412 of 12/03/2026: 2 camera(s)" in capsys.readouterr().out
    assert main(["vault", "authorise", vault_dir, "--arrete", "2027-DSC-0007", "--date", "2026-11-02",
                 "--cameras", "4", "--communes", "71014", "71033"]) == 0
    assert "supersedes the arrêté 2026-DSC-0412 of 12/03/2026" in capsys.readouterr().out
    journal = [e for e in read_jsonl(Path(vault_dir) / "journal.jsonl") if e["event"] == "authorisation-recorded"]
    assert [(e["arrete"], e["date"], e["cameras"], e["communes"], e["until"], e["supersedes"]) for e in journal] == [
        ("2026-DSC-0412", "2026-03-12", 2, ["71014"], "2031-06-30", None),
        ("2027-DSC-0007", "2026-11-02", 4, ["71014", "71033"], None, "2026-DSC-0412")]
    with Vault.open(vault_dir) as vault:
        doc = authorisation.load(vault)
        assert [a["arrete"] for a in doc["arretes"]] == ["2026-DSC-0412", "2027-DSC-0007"]
        assert doc["arretes"][0]["superseded_at"] == journal[1]["at"]
        assert authorisation.current(vault)["cameras"] == 4
    assert main(["vault", "cameras", vault_dir]) == 0
    out = capsys.readouterr().out
    assert "arrêté 2027-DSC-0007 of 02/11/2026: 4 camera(s)" in out and "IN FORCE" in out and "superseded" in out


def test_an_edited_authorisation_file_is_refused(vault_dir, capsys):
    assert authorise(vault_dir) == 0
    path = Path(vault_dir) / "authorisation.json"
    doc = json.loads(path.read_text())
    doc["arretes"][0]["cameras"] = 50
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["vault", "enrol", vault_dir, "--camera", CAMERA, "--key", "ab" * 32]) == 2
    assert "signature does not verify" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--arrete", "x" * 70, "--date", "12/03/2026", "--cameras", "2", "--communes", "71014"], "--arrete"),
    (["--arrete", "A-1", "--date", "12/03/2026", "--cameras", "2", "--communes", "7101"], "--communes '7101'"),
    (["--arrete", "A-1", "--date", "12/03/2026", "--cameras", "2", "--communes", "71014", "71014"], "listed twice"),
    (["--arrete", "A-1", "--date", "31/02/2026", "--cameras", "2", "--communes", "71014"], "--date '31/02/2026'"),
    (["--arrete", "A-1", "--date", "12/03/2026 14:00", "--cameras", "2", "--communes", "71014"], "without a time"),
    (["--arrete", "A-1", "--date", "12/03/2999", "--cameras", "2", "--communes", "71014"], "after today"),
    (["--arrete", "A-1", "--date", "12/03/2026", "--cameras", "0", "--communes", "71014"], "--cameras 0"),
    (["--arrete", "A-1", "--date", "12/03/2026", "--cameras", "2", "--communes", "71014", "--until", "01/01/2026"],
     "before the arrêté's date"),
    (["--arrete", "A-1", "--date", "12/03/2020", "--cameras", "2", "--communes", "71014", "--until", "01/01/2021"],
     "ended on 01/01/2021"),
    (["--arrete", "A-1", "--cameras", "2", "--communes", "71014"], "--date missing"),
    (["--until", "01/01/2030"], "--until belongs to an arrêté"),
    ([], "nothing to record"),
])
def test_authorise_refuses_bad_input_naming_it_and_records_nothing(vault_dir, capsys, args, message):
    capsys.readouterr()
    assert main(["vault", "authorise", vault_dir, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (Path(vault_dir) / "authorisation.json").exists()
    assert not [e for e in read_jsonl(Path(vault_dir) / "journal.jsonl") if e["event"] == "authorisation-recorded"]


def test_enrol_is_refused_without_an_arrete(vault_dir, capsys, tmp_path):
    capsys.readouterr()
    assert main(["vault", "enrol", vault_dir, "--camera", CAMERA, "--key", key_hex(tmp_path, "a")]) == 2
    err = capsys.readouterr().err
    assert "no prefect's arrêté is recorded" in err and "pieton vault authorise" in err
    with Vault.open(vault_dir) as vault:
        assert vault.index.cameras() == []


def test_enrol_refuses_more_cameras_than_authorised_and_retire_frees_a_place(vault_dir, capsys, tmp_path):
    assert authorise(vault_dir, cameras="2") == 0
    for n, camera in enumerate(("CAM-A", "CAM-B")):
        assert main(["vault", "enrol", vault_dir, "--camera", camera, "--key", key_hex(tmp_path, str(n))]) == 0
    # a new key for an enrolled camera takes no new place
    assert main(["vault", "enrol", vault_dir, "--camera", "CAM-A", "--key", key_hex(tmp_path, "a2")]) == 0
    capsys.readouterr()
    c_key = key_hex(tmp_path, "c")
    assert main(["vault", "enrol", vault_dir, "--camera", "CAM-C", "--key", c_key]) == 2
    err = capsys.readouterr().err
    assert "arrêté 2026-DSC-0412 of 12/03/2026 authorises 2 camera(s) and 2 are enrolled (CAM-A, CAM-B)" in err
    assert main(["vault", "retire", vault_dir, "--camera", "CAM-B", "--reason", "stolen"]) == 0
    assert "CAM-B retired (stolen)" in capsys.readouterr().out
    retired = [e for e in read_jsonl(Path(vault_dir) / "journal.jsonl") if e["event"] == "camera-retired"]
    assert [(e["camera"], e["reason"]) for e in retired] == [("CAM-B", "stolen")]
    assert main(["vault", "enrol", vault_dir, "--camera", "CAM-C", "--key", c_key]) == 0
    # a stolen camera never comes back under its id, whatever key it shows
    assert main(["vault", "enrol", vault_dir, "--camera", "CAM-B", "--key", key_hex(tmp_path, "b2")]) == 2
    assert "retired (stolen)" in capsys.readouterr().err
    assert main(["vault", "retire", vault_dir, "--camera", "CAM-B", "--reason", "lost"]) == 2
    assert "already retired" in capsys.readouterr().err
    assert main(["vault", "retire", vault_dir, "--camera", "CAM-Z", "--reason", "lost"]) == 2
    assert "not enrolled" in capsys.readouterr().err
    assert main(["vault", "cameras", vault_dir]) == 0
    assert "2 camera(s) in service of 2 authorised" in capsys.readouterr().out


def test_enrol_is_refused_once_the_arrete_ended(tmp_path, chief):
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "r.jsonl")
    clock = Clock(START)  # 2026-11-18
    with Vault.open(tmp_path / "vault", clock=clock) as vault:
        authorisation.authorise(vault, "A-1", "01/01/2026", 2, ["71014"], "30/11/2026")
        clock.t = START + 13 * 86400  # 2026-12-01, the day after its end
        with pytest.raises(VaultError, match="ended on 30/11/2026"):
            authorisation.enrol(vault, CAMERA, key_hex(tmp_path, "a"))


def test_a_retired_cameras_recordings_made_after_its_retirement_go_to_quarantine(tmp_path, chief):
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "r.jsonl")
    retired_at = START + 3600
    spool_dir, signer = spool_with(tmp_path, chief[1], ARRETE, starts=[START, retired_at + 600])
    clock = Clock(START - 86400)
    with Vault.open(tmp_path / "vault", clock=clock) as vault:
        authorisation.authorise(vault, "2026-DSC-0412", "12/03/2026", 2, ["71014"], "30/06/2031")
        authorisation.enrol(vault, CAMERA, signer.public_key_hex)
        clock.t = retired_at
        authorisation.retire(vault, CAMERA, "lost")
        clock.t = retired_at + 86400
        report = ingest(vault, spool_dir, progress=False)
        before, after = sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))
        assert report.stored == [before]
        assert [rid for rid, _ in report.quarantined] == [after]
        problem = report.quarantined[0][1][0]
        assert f"camera {CAMERA} was retired (lost)" in problem and "after it" in problem
        assert vault.index.recording(after) is None


def test_a_retired_cameras_recording_whose_clock_cannot_vouch_for_its_time_goes_to_quarantine(tmp_path, chief):
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "r.jsonl")
    # it claims a time before the retirement, from a clock that was never synchronised
    spool_dir, signer = spool_with(tmp_path, chief[1], ARRETE, starts=[START], clock_source="unsynchronised")
    clock = Clock(START - 86400)
    with Vault.open(tmp_path / "vault", clock=clock) as vault:
        authorisation.authorise(vault, "2026-DSC-0412", "12/03/2026", 2, ["71014"], "30/06/2031")
        authorisation.enrol(vault, CAMERA, signer.public_key_hex)
        clock.t = START + 3600
        authorisation.retire(vault, CAMERA, "stolen")
        report = ingest(vault, spool_dir, progress=False)
    assert not report.stored and len(report.quarantined) == 1
    assert "its clock cannot vouch for" in report.quarantined[0][1][0]


def test_each_recording_names_its_arrete_and_ingest_flags_one_the_vault_never_recorded(tmp_path, chief):
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "r.jsonl")
    good, signer = spool_with(tmp_path, chief[1], ARRETE, starts=[START])
    other = {"arrete": "2019-PREF-0001", "communes": ["71014"], "until": None}
    bad, _ = spool_with(tmp_path, chief[1], other, starts=[START + 3600], signer=signer, name="spool2")
    outside = {**ARRETE, "communes": ["71014", "71033"]}
    far, _ = spool_with(tmp_path, chief[1], outside, starts=[START + 7200], signer=signer, name="spool3")
    for spool_dir in (good, bad, far):
        opened = read_jsonl(next(p for p in spool_dir.iterdir() if p.name.startswith(CAMERA)) / "manifest.jsonl")[0]
        assert opened["event"] == "opened" and "arrete" in opened["authorisation"]
    with Vault.open(tmp_path / "vault", clock=Clock(START + 86400)) as vault:
        authorisation.authorise(vault, "2026-DSC-0412", "12/03/2026", 2, ["71014"], "30/06/2031")
        authorisation.enrol(vault, CAMERA, signer.public_key_hex)
        first = ingest(vault, good, progress=False)
        assert len(first.stored) == 1 and not first.notes
        flagged = ingest(vault, bad, progress=False)
        # stored (genuine evidence of what the camera did), flagged to the chief and in the journal
        assert len(flagged.stored) == 1 and not flagged.quarantined
        assert any("2019-PREF-0001" in n and "never recorded" in n for n in flagged.notes), flagged.notes
        communes = ingest(vault, far, progress=False)
        assert any("71033" in n for n in communes.notes), communes.notes
        # a new arrêté that ends before the next recording: that one is outside its dates
        authorisation.authorise(vault, "2026-DSC-0500", "12/03/2026", 2, ["71014"], "19/11/2026")
        late, _ = spool_with(tmp_path, chief[1], {**ARRETE, "arrete": "2026-DSC-0500"},
                             starts=[START + 2 * 86400], signer=signer, name="spool4")
        dates = ingest(vault, late, progress=False)
        assert any("made on 20/11/2026, outside the arrêté 2026-DSC-0500" in n for n in dates.notes), dates.notes
    mismatches = [e for e in read_jsonl(tmp_path / "vault" / "journal.jsonl") if e["event"] == "authorisation-mismatch"]
    assert len(mismatches) == 3 and "2019-PREF-0001" in mismatches[0]["problem"]


def test_the_cli_ingest_prints_the_mismatch(tmp_path, chief, capsys, vault_dir):
    assert authorise(vault_dir) == 0
    now = time.time()
    spool_dir, signer = spool_with(tmp_path, chief[1], {"arrete": "OTHER-1", "communes": ["71014"], "until": None},
                                   starts=[now - 600])
    assert main(["vault", "enrol", vault_dir, "--camera", CAMERA, "--key", signer.public_key_hex]) == 0
    capsys.readouterr()
    assert main(["vault", "ingest", vault_dir, "--from", str(spool_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 stored" in out and "note:" in out and "OTHER-1" in out


def test_a_mirror_keeps_the_signed_authorisation(vault_dir, tmp_path):
    assert authorise(vault_dir) == 0
    (tmp_path / "mirror").mkdir()
    assert main(["vault", "mirror", vault_dir, str(tmp_path / "mirror")]) == 0
    copy = tmp_path / "mirror" / "authorisation.json"
    assert copy.read_bytes() == (Path(vault_dir) / "authorisation.json").read_bytes()
