"""The vault's side of R241-13: one calendar month from the local day of recording, in the
vault's zone, not a setting; past it nothing is extracted, consulted or held even before
the purge; a quarantined copy keeps the time it was first seen; an unsynchronised
recording is dated by the camera's rule; what the camera erased is learnt at ingest; the
yearly figures cut the year in the vault's zone. The clock is injected."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import designate, paris, read_jsonl
from test_vault_media import make_segments
from vault_support import CAMERA, Clock, make_spool

from drivers.signer import FileSigner
from recorder.errors import PietonError, VaultError
from recorder.evidence.age import generate_identity
from recorder.evidence.expiry import sweep
from recorder.evidence.spool import Spool
from tools.cli import main
from tools.vault.extract import Request, consult, extract, open_recording
from tools.vault.find import stats
from tools.vault.ingest import ingest
from tools.vault.listing import list_recordings
from tools.vault.retention import hold, purge, release, retention_end
from tools.vault.vault import Vault, init_vault

DAY = 86400.0


@pytest.fixture
def chief(tmp_path):
    identity, recipient = generate_identity()
    (tmp_path / "chief.key").write_text(identity + "\n")
    return identity, recipient


def open_vault(tmp_path, recipient, now, timezone="Europe/Paris"):
    (tmp_path / "police").mkdir(exist_ok=True)
    clock = Clock(now)
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl", clock=clock,
               timezone=timezone)
    return Vault.open(tmp_path / "vault", clock=clock), clock


def stored_vault(tmp_path, recipient, made, recordings=1, timezone="Europe/Paris"):
    """A vault whose clock is an hour after ``made``, holding ``recordings`` made then."""
    vault, clock = open_vault(tmp_path, recipient, made + 3600, timezone)
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=recordings, segments=1, start=made)
    vault.enrol(CAMERA, signer.public_key_hex)
    return vault, clock, ingest(vault, spool_dir, progress=False).stored


def journal(vault):
    return read_jsonl(vault.layout.journal)


def record(spool, wall, start, clock_source="gps", segment=None):
    """One finished recording made at ``start`` by the camera's clock."""
    wall.t = start
    rec = spool.open_recording(start, "agent", {"clock_source": clock_source})
    seg = rec.open_segment()
    seg.write(segment or make_segments(1)[0])
    wall.t += 2
    seg.seal()
    rec.close("agent stop")
    return rec.id


def camera(tmp_path, recipient):
    signer = FileSigner.create(tmp_path / "camera-key" / "device-signing.key")
    wall = Clock(0.0)
    spool = Spool(tmp_path / "spool", signer, [recipient], CAMERA, "0" * 64, False, wall_clock=wall)
    spool.recover()
    return spool, signer, wall


# -- one calendar month from the local day, in the vault's zone -----------------------

def test_made_on_31_january_erased_at_the_end_of_february_local_time(tmp_path, chief):
    made = paris(2027, 1, 31, 9, 0)
    vault, clock, (rid,) = stored_vault(tmp_path, chief[1], made)
    with vault:
        assert retention_end(vault, vault.index.recording(rid)) == paris(2027, 3, 1)
        assert [x.retention_end for x in list_recordings(vault)] == [paris(2027, 3, 1)]
        assert purge(vault, paris(2027, 2, 28, 23, 59, 59)).erased == []
        assert purge(vault, paris(2027, 3, 1)).erased == [rid]
        erased = [e for e in journal(vault) if e["event"] == "recording-erased"][0]
        assert erased["rule"].startswith("R241-13") and erased["retention_end"] == "2027-02-28T23:00:00.000Z"
        assert "retention_days" not in erased


def test_a_leap_february_and_an_overseas_zone(tmp_path, chief, capsys, monkeypatch):
    cayenne = ZoneInfo("America/Cayenne")
    made = datetime(2028, 1, 31, 22, 0, tzinfo=cayenne).timestamp()   # 1 February in UTC
    vault, clock, _ = stored_vault(tmp_path, chief[1], made, timezone="America/Cayenne")
    vault.close()
    designate(tmp_path / "vault", tmp_path / "chief.key", chief[1], monkeypatch)
    capsys.readouterr()
    assert main(["vault", "list", str(tmp_path / "vault")]) == 0
    assert "kept until 2028-03-01 00:00:00 -03" in capsys.readouterr().out   # end of 29 February, Cayenne
    assert main(["vault", "purge", str(tmp_path / "vault"), "--now", "29/02/2028 23:59"]) == 0
    assert "0 erased" in capsys.readouterr().out
    assert main(["vault", "purge", str(tmp_path / "vault"), "--now", "01/03/2028 00:00"]) == 0
    assert "(retention ended 2028-03-01 00:00:00 -03)" in capsys.readouterr().out


def test_retention_is_not_a_setting(tmp_path, chief, capsys):
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(tmp_path / "police" / "r"),
                 "--retention-days", "183"]) == 2
    err = capsys.readouterr().err
    assert "--retention-days 183" in err and "not a setting" in err and "R241-13" in err
    assert "Traceback" not in err and not (tmp_path / "vault").exists()
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(tmp_path / "police" / "r")]) == 0
    settings = json.loads((tmp_path / "vault" / "vault.json").read_text())
    assert "retention_days" not in settings
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["vault", "init", "--help"])
    assert "--retention-days" not in capsys.readouterr().out


def test_an_old_vault_json_with_retention_days_is_ignored_with_a_note(tmp_path, chief, capsys):
    made = paris(2026, 11, 18, 12, 0)
    vault, clock, (rid,) = stored_vault(tmp_path, chief[1], made)
    vault.close()
    path = tmp_path / "vault" / "vault.json"
    settings = json.loads(path.read_text())
    settings["retention_days"] = 183   # as `vault init --retention-days 183` wrote it
    path.write_text(json.dumps(settings))
    capsys.readouterr()
    assert main(["vault", "purge", str(tmp_path / "vault"), "--now", "19/12/2026 00:00"]) == 0
    out, err = capsys.readouterr()
    assert f"erased {rid}" in out   # one month, not 183 days
    assert "'retention_days' (183) is ignored" in err and "R241-13" in err


# -- refused past the retention, even before the purge --------------------------------

def test_extraction_consultation_and_hold_refused_past_retention_before_the_purge(tmp_path, chief):
    identity = chief[0]
    made = paris(2026, 11, 18, 12, 0)
    vault, clock, (first, second) = stored_vault(tmp_path, chief[1], made, recordings=2)
    with vault:
        hold(vault, second, "PV 2026/900")   # held in time
        clock.t = paris(2026, 12, 19, 0, 0, 1)   # past the end of 18 December; no purge has run
        assert vault.layout.recording(CAMERA, first).is_dir()
        register = tmp_path / "police" / "register.jsonl"
        with pytest.raises(VaultError) as refused:
            extract(vault, Request([first], "judicial", "R", "D", tmp_path / "x.mp4"), [identity])
        message = str(refused.value)
        assert first in message and "2026-12-19 00:00:00 CET" in message and "R241-13" in message
        assert isinstance(refused.value, PietonError) and not (tmp_path / "x.mp4").exists()
        failed = [x for x in read_jsonl(register) if x.get("event") == "extraction-failed"]
        assert failed and "R241-13" in failed[-1]["reason"] and failed[-1]["recordings"] == [first]
        with pytest.raises(PietonError, match=f"consultation of recording {first} refused.*R241-13"):
            consult(vault, first, "administrative", "Maire", [identity], play=False)
        with pytest.raises(VaultError, match="R241-13"):
            open_recording(vault, first, [identity])   # the desk's consultation and play
        with pytest.raises(VaultError, match="a hold is placed before the end of the retention"):
            hold(vault, first, "PV 2026/901")
        assert journal(vault)[-1]["event"] == "hold-refused" and journal(vault)[-1]["procedure"] == "PV 2026/901"
        assert vault.index.holds(first) == []
        # Held before its end: still extractable for its procedure, never for training.
        done = extract(vault, Request([second], "judicial", "R", "D", tmp_path / "held.mp4"), [identity])
        assert done.out.is_file()
        with pytest.raises(VaultError, match="not training"):
            extract(vault, Request([second], "training", "R", "D", tmp_path / "t.mp4"), [identity])
        with pytest.raises(VaultError, match="placed before"):
            hold(vault, second, "PV 2026/902")   # a second procedure comes too late
        release(vault, second, "PV 2026/900")
        assert purge(vault).erased == [first, second]


def test_commands_refuse_past_retention_with_exit_2(tmp_path, chief, capsys, monkeypatch):
    # Ingested in time (the vault's clock then); the commands below run on today's clock,
    # long after the end of 2 October 2026, and nothing has purged it.
    made = paris(2026, 9, 1, 10, 0)
    vault, clock, (rid,) = stored_vault(tmp_path, chief[1], made)
    vault.close()
    v, key = str(tmp_path / "vault"), str(tmp_path / "chief.key")
    designate(v, key, chief[1], monkeypatch)
    capsys.readouterr()
    for argv in (["extract", v, rid, "--purpose", "judiciaire", "--requester", "R", "--deliver-to", "D",
                  "--identity", key, "--out", str(tmp_path / "x.mp4")],
                 ["view", v, rid, "--purpose", "judiciaire", "--requester", "R", "--identity", key, "--no-play"],
                 ["hold", v, rid, "--procedure", "PV 1"]):
        assert main(["vault", *argv]) == 2
        err = capsys.readouterr().err
        assert rid in err and "2026-10-02 00:00:00 CEST" in err and "R241-13" in err and "Traceback" not in err
    assert (tmp_path / "vault" / "recordings" / CAMERA / rid).is_dir()


# -- quarantine keeps the time it was first seen -----------------------------------------

def test_a_quarantined_recording_keeps_the_time_it_was_first_seen(tmp_path, chief):
    made = paris(2026, 11, 18, 12, 0)
    vault, clock = open_vault(tmp_path, chief[1], made + 3600)
    with vault:
        spool_dir, _signer = make_spool(tmp_path, [chief[1]], recordings=1, segments=1, start=made)
        first_seen = clock.t
        assert ingest(vault, spool_dir, progress=False).quarantined   # the camera is not enrolled
        clock.t = paris(2026, 12, 20, 9, 0)
        assert len(purge(vault).quarantine_erased) == 1
        # The camera still holds it (no receipt): the next offload brings it back.
        clock.t += 3600
        report = ingest(vault, spool_dir, progress=False)
        assert report.quarantined
        assert {q[3] for q in vault.index.quarantined()} == {first_seen}
        listed = [x for x in list_recordings(vault) if x.quarantine]
        assert listed == []   # past the retention counted from first seen: erased by the ingest's purge
        erased = [e for e in journal(vault) if e["event"] == "quarantine-erased"]
        assert len(erased) == 2 and erased[-1]["first_seen"] == erased[0]["first_seen"]


# -- an unsynchronised clock: dated by the last synchronised start before it -----------------

def test_an_unsynchronised_recording_counts_from_the_last_synchronised_start_before_it(tmp_path, chief):
    made = paris(2026, 11, 18, 12, 0)
    spool, signer, wall = camera(tmp_path, chief[1])
    with spool:
        synced = record(spool, wall, made)
        lost = record(spool, wall, 100000.0, "unsynchronised")   # the camera believed it was 1970
        rtc = record(spool, wall, made + 5 * DAY, "rtc")          # a drifting battery clock
    # Offloaded three weeks late: the late offload must not extend them.
    vault, clock = open_vault(tmp_path, chief[1], paris(2026, 12, 10, 9, 0))
    with vault:
        vault.enrol(CAMERA, signer.public_key_hex)
        assert ingest(vault, tmp_path / "spool", progress=False).stored == [synced, lost, rtc]
        ends = {x.recording: x.retention_end for x in list_recordings(vault)}
        assert ends == dict.fromkeys((synced, lost, rtc), paris(2026, 12, 19))
        assert purge(vault, paris(2026, 12, 19)).erased == [synced, lost, rtc]
        dated = {e["recording"]: e["dated_by"] for e in journal(vault) if e["event"] == "recording-erased"}
        assert dated == {synced: "own start", lost: f"start of {synced}", rtc: f"start of {synced}"}


def test_an_anchor_offloaded_before_still_dates_a_later_offload(tmp_path, chief):
    made = paris(2026, 11, 18, 12, 0)
    spool, signer, wall = camera(tmp_path, chief[1])
    vault, clock = open_vault(tmp_path, chief[1], made + 3600)
    with vault, spool:
        vault.enrol(CAMERA, signer.public_key_hex)
        synced = record(spool, wall, made)
        assert ingest(vault, tmp_path / "spool", progress=False).stored == [synced]
        lost = record(spool, wall, 5000.0, "unsynchronised")
        clock.t = paris(2026, 12, 15, 9, 0)
        assert ingest(vault, tmp_path / "spool", progress=False).stored == [lost]
        assert retention_end(vault, vault.index.recording(lost)) == paris(2026, 12, 19)


def test_with_nothing_synchronised_before_it_the_vault_counts_from_ingest(tmp_path, chief):
    spool, signer, wall = camera(tmp_path, chief[1])
    with spool:
        lost = record(spool, wall, 100000.0, "unsynchronised")
    vault, clock = open_vault(tmp_path, chief[1], paris(2026, 12, 10, 9, 0))
    with vault:
        vault.enrol(CAMERA, signer.public_key_hex)
        ingest(vault, tmp_path / "spool", progress=False)
        assert retention_end(vault, vault.index.recording(lost)) == paris(2027, 1, 11)


# -- erased on the camera, learnt at ingest -----------------------------------------------

def test_recordings_the_camera_erased_are_recorded_as_erased_on_the_camera_not_missing(tmp_path, chief):
    made = paris(2026, 11, 18, 12, 0)
    spool, signer, wall = camera(tmp_path, chief[1])
    with spool:
        old = record(spool, wall, made)
        found = sweep(spool, paris(2026, 12, 20), synchronised=True, zone="Europe/Paris", warning_days=7)
        assert found.erased == [old]
        later = record(spool, wall, 7000.0, "unsynchronised")
    vault, clock = open_vault(tmp_path, chief[1], paris(2026, 12, 20, 9, 0))
    with vault:
        vault.enrol(CAMERA, signer.public_key_hex)
        report = ingest(vault, tmp_path / "spool", progress=False)
        assert report.missing == [] and report.erased_on_camera == [old] and report.ok
        assert report.stored == [later]
        # Dated by the erased recording's synchronised start: already past, erased at once.
        assert report.erased == [later]
        entry = [e for e in journal(vault) if e["event"] == "recording-erased-on-camera"]
        assert len(entry) == 1 and entry[0]["recording"] == old and entry[0]["reason"] == "retention"
        registered = [x for x in read_jsonl(tmp_path / "police" / "register.jsonl")
                      if x.get("event") == "recording-erased-on-camera"]
        assert [x["recording"] for x in registered] == [old]
        again = ingest(vault, tmp_path / "spool", progress=False)
        assert again.erased_on_camera == [] and again.missing == []
        assert len([e for e in journal(vault) if e["event"] == "recording-erased-on-camera"]) == 1
        from tools.vault.audit import audit
        assert audit(vault).ok, audit(vault).problems


def test_a_spool_whose_recordings_were_all_erased_still_tells_the_vault(tmp_path, chief):
    spool, signer, wall = camera(tmp_path, chief[1])
    with spool:
        old = record(spool, wall, paris(2026, 11, 18, 12, 0))
        sweep(spool, paris(2026, 12, 20), synchronised=True, zone="Europe/Paris", warning_days=7)
    assert not any(p.name.startswith(CAMERA) for p in (tmp_path / "spool").iterdir())
    vault, clock = open_vault(tmp_path, chief[1], paris(2026, 12, 20, 9, 0))
    with vault:
        vault.enrol(CAMERA, signer.public_key_hex)
        report = ingest(vault, tmp_path / "spool", progress=False)
        assert report.camera == CAMERA and report.erased_on_camera == [old] and report.missing == []
        assert report.ok and vault.layout.device_journal(CAMERA).is_file()


def test_ingest_prints_what_the_camera_erased(tmp_path, chief, capsys, monkeypatch):
    spool, signer, wall = camera(tmp_path, chief[1])
    with spool:
        old = record(spool, wall, paris(2026, 9, 1, 12, 0))
        sweep(spool, paris(2026, 10, 5), synchronised=True, zone="Europe/Paris", warning_days=7)
        record(spool, wall, paris(2026, 10, 5, 9, 0))
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", chief[1], "--register", str(tmp_path / "police" / "r")]) == 0
    designate(v, tmp_path / "chief.key", chief[1], monkeypatch)
    assert main(["vault", "authorise", v, "--arrete", "TEST-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014"]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex]) == 0
    capsys.readouterr()
    assert main(["vault", "ingest", v, "--from", str(tmp_path / "spool"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"erased on the camera (retention) {old}" in out and "MISSING" not in out


# -- the yearly figures in the vault's zone -------------------------------------------------

def test_stats_cut_the_year_in_the_vaults_zone(tmp_path, chief):
    new_year = paris(2027, 1, 1, 0, 30)   # 2026-12-31 23:30 UTC
    vault, clock, (rid,) = stored_vault(tmp_path, chief[1], new_year)
    with vault:
        clock.t = new_year + 600
        hold(vault, rid, "PV 2027/1")   # journaled at 2026-12-31T23:40Z, 00:40 in Paris
        figures = stats(vault, 2027)
        assert figures["recordings"] == 1 and figures["holds_placed"] == 1
        before = stats(vault, 2026)
        assert before["recordings"] == 0 and before["holds_placed"] == 0
