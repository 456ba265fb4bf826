"""The vault against hostile spools and damaged files of its own: a bad recording is set
aside and the others are stored and receipted, nothing is read through a link out of the
spool, every fault is a clear error (exit 2), never a traceback, and nothing stored is lost."""

import json
import os
import shutil

import pytest
from conftest import designate, read_jsonl
from vault_support import CAMERA, START, Clock, make_spool

from recorder.errors import VaultError
from recorder.evidence.format import INBOX
from tools.cli import main
from tools.vault.extract import Request, extract
from tools.vault.index import RecordingRow
from tools.vault.ingest import ingest
from tools.vault.vault import Vault, init_vault


@pytest.fixture
def setup(tmp_path, chief):
    identity, recipient = chief
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [recipient], tmp_path / "police" / "register.jsonl")
    vault = Vault.open(tmp_path / "vault", clock=Clock(START + 7200))
    yield vault, identity, recipient
    vault.close()


def _spool(tmp_path, vault, recipient, recordings=2):
    spool_dir, signer = make_spool(tmp_path, [recipient], recordings=recordings, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    return spool_dir, sorted(p.name for p in spool_dir.iterdir() if p.name.startswith(CAMERA))


def _everything_in(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


# -- one bad recording does not stop the others (issue 12, item 4) --

@pytest.mark.parametrize("garbage", [
    b'{"seq":3,"prev":"00","sig":"zz","event":"sealed"}',   # a chain-looking line without a file
    b"[" * 5000,                                            # nesting the JSON parser cannot take
])
def test_garbage_in_one_manifest_quarantines_it_and_the_others_are_receipted(tmp_path, setup, garbage):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    with open(spool_dir / rids[1] / "manifest.jsonl", "ab") as f:
        f.write(garbage + b"\n")
    report = ingest(vault, spool_dir, progress=False)
    assert report.stored == [rids[0]]
    assert [q[0] for q in report.quarantined] == [rids[1]]
    receipt = json.loads(report.receipt.read_text())
    assert [r["id"] for r in receipt["recordings"]] == [rids[0]]
    assert not list(vault.layout.incoming.iterdir())
    assert read_jsonl(vault.layout.journal)[-1]["event"] == "ingest-finished"


def test_cli_ingest_of_a_hostile_spool_names_the_recording_and_exits_1(tmp_path, setup, capsys):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    with open(spool_dir / rids[0] / "manifest.jsonl", "ab") as f:
        f.write(b'{"seq":9,"prev":"00","sig":"zz","event":"sealed"}\n')
    vault.close()
    key = setup[1]   # the identity file
    designate(vault.layout.root, key, recipient)
    code = main(["vault", "ingest", str(vault.layout.root), "--from", str(spool_dir), "--no-progress",
                 "--identity", str(key)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert f"QUARANTINED  {rids[0]}" in out and f"stored       {rids[1]}" in out


# -- links out of the spool (item 5) --

def test_a_linked_recording_folder_is_refused_and_nothing_is_read_through_it(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    outside = tmp_path / "elsewhere"
    shutil.move(spool_dir / rids[1], outside)
    (spool_dir / rids[1]).symlink_to(outside, target_is_directory=True)
    report = ingest(vault, spool_dir, progress=False)
    assert report.stored == [rids[0]]
    assert report.failed and report.failed[0][0] == rids[1] and "symbolic link" in report.failed[0][1]
    assert not (vault.layout.quarantine / CAMERA).exists()
    assert vault.index.recording(rids[1]) is None


def test_a_linked_file_in_a_recording_is_not_followed(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=1)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP-SECRET-OUTSIDE-THE-SPOOL")
    segment = next((spool_dir / rids[0]).glob("*.ts.age"))
    segment.unlink()
    segment.symlink_to(secret)
    report = ingest(vault, spool_dir, progress=False)
    assert [q[0] for q in report.quarantined] == rids
    assert any("symbolic link" in p for p in report.quarantined[0][1])
    assert b"TOP-SECRET" not in _everything_in(vault.layout.root)


def test_a_linked_device_journal_is_not_read(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, _rids = _spool(tmp_path, vault, recipient)
    outside = tmp_path / "journal-elsewhere.jsonl"
    shutil.move(spool_dir / "journal.jsonl", outside)
    (spool_dir / "journal.jsonl").symlink_to(outside)
    report = ingest(vault, spool_dir, progress=False)
    assert any("symbolic link" in p for p in report.journal_problems)
    assert not vault.layout.device_journal(CAMERA).exists()


def test_a_linked_inbox_gets_no_receipt(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, _rids = _spool(tmp_path, vault, recipient)
    outside = tmp_path / "outside-inbox"
    outside.mkdir()
    shutil.rmtree(spool_dir / INBOX, ignore_errors=True)
    (spool_dir / INBOX).symlink_to(outside, target_is_directory=True)
    report = ingest(vault, spool_dir, progress=False)
    assert report.receipt is None and not list(outside.iterdir())
    assert any("receipt not written" in n and "symbolic link" in n for n in report.notes)
    assert len(report.stored) == 2  # stored all the same; the camera keeps its copies


def test_a_folder_name_ending_in_a_newline_is_not_a_recording(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=1)
    shutil.copytree(spool_dir / rids[0], spool_dir / (rids[0][:-1] + "5\n"))
    shutil.copytree(spool_dir / rids[0], spool_dir / (rids[0][:-1] + "\u0667"))  # an Arabic-Indic 7
    report = ingest(vault, spool_dir, progress=False)
    names = report.stored + report.already + [q[0] for q in report.quarantined] + [f[0] for f in report.failed]
    assert names == rids
    assert not any("\n" in r.recording_id for r in vault.index.recordings(state=None))


# -- unsigned names never steer the sequence (item 2, the vault's part) --

def test_an_empty_folder_with_a_huge_number_does_not_make_a_flood_of_missing(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    stamp = rids[0].split("_")[1]
    (spool_dir / f"{CAMERA}_{stamp}_000300000").mkdir()
    (spool_dir / f"{CAMERA}_{stamp}_{'9' * 60}").mkdir()
    report = ingest(vault, spool_dir, progress=False)
    assert sorted(report.stored) == rids
    assert report.missing == []
    assert len(vault.layout.journal.read_bytes().splitlines()[-1]) < 10_000


def test_gaps_are_reported_as_ranges(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=5)
    for rid in rids[1:4]:
        shutil.rmtree(spool_dir / rid)
    report = ingest(vault, spool_dir, progress=False)
    assert report.missing == [f"{CAMERA} recordings #1–#3 (3 recordings)"]


# -- the vault's own files damaged (item 8) --

def test_a_vault_json_that_is_a_list_is_a_clear_error(tmp_path, setup, capsys):
    vault, _, _ = setup
    vault.close()
    vault.layout.settings.write_text("[1, 2]\n")
    with pytest.raises(VaultError, match="vault.json: expected a JSON object"):
        Vault.open(vault.layout.root)
    assert main(["vault", "verify", str(vault.layout.root)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_garbage_index_is_a_clear_error_and_loses_nothing(tmp_path, setup, capsys):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    ingest(vault, spool_dir, progress=False)
    vault.close()
    before = _everything_in(vault.layout.recordings)
    vault.layout.index.write_bytes(b"this is not a database" * 100)
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (vault.layout.root / name).unlink(missing_ok=True)
    with pytest.raises(VaultError, match="index .*index.sqlite: cannot be used"):
        Vault.open(vault.layout.root)
    assert main(["vault", "verify", str(vault.layout.root)]) == 2
    assert "index.sqlite" in capsys.readouterr().err
    assert _everything_in(vault.layout.recordings) == before


def test_disk_full_while_writing_the_index_stops_cleanly_and_loses_nothing(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    # SQLite's own "database or disk is full": the index may not grow by one page.
    pages = vault.index.db.execute("PRAGMA page_count").fetchone()[0]
    vault.index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    vault.index.db.execute(f"PRAGMA max_page_count = {pages}")
    for size in (3000, 300, 30, 1):  # fill the last free bytes: the ingest's first row does not fit
        with pytest.raises(VaultError, match="disk is full"):
            for n in range(1000):
                vault.index.add_recording(RecordingRow(f"FILL_{size}_{n}", "FILL", None, None, False, 0.0,
                                                       "purged", 0, 0, "x" * size, False, 0.0))
    with pytest.raises(VaultError, match="stopped: index .*disk is full"):
        ingest(vault, spool_dir, progress=False)
    assert not list(vault.layout.incoming.iterdir())
    assert all((spool_dir / rid).is_dir() for rid in rids)  # no receipt freed anything
    vault.index.db.execute("PRAGMA max_page_count = 1073741823")
    again = ingest(vault, spool_dir, progress=False)
    assert sorted(again.stored + again.already) == rids and again.ok


def test_find_refuses_a_radius_that_is_not_a_distance(tmp_path, setup, chief, capsys):
    vault, _, _ = setup
    vault.close()
    for radius in ("nan", "inf", "-5"):
        code = main(["vault", "find", str(vault.layout.root), "--from", "2026-11-18T00:00:00Z",
                     "--to", "2026-11-19T00:00:00Z", "--near", "46.95,4.30", "--radius", radius,
                     "--purpose", "judiciaire", "--requester", "R", "--identity", str(chief[0])])
        assert code == 2, radius
        assert "--radius" in capsys.readouterr().err


def test_check_report_on_deeply_nested_json_is_a_clear_error(tmp_path, capsys):
    report = tmp_path / "report.json"
    report.write_text("[" * 100_000)
    mp4 = tmp_path / "x.mp4"
    mp4.write_bytes(b"\0" * 100)
    assert main(["vault", "check-report", str(report), str(mp4), "--vault-key", "ab" * 32]) == 2
    err = capsys.readouterr().err
    assert str(report) in err and "nested" in err and "Traceback" not in err


def test_extraction_into_the_vault_is_refused(tmp_path, setup):
    vault, identity, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=1)
    ingest(vault, spool_dir, progress=False)
    stored = vault.layout.recording(CAMERA, rids[0])
    before = _everything_in(stored)
    for out in (vault.layout.root / "x.mp4", stored / "x.mp4"):
        with pytest.raises(VaultError, match="inside the vault"):
            extract(vault, Request(rids, "judicial", "R", "D", out), [identity.read_text().strip()])
    assert _everything_in(stored) == before and not list(stored.glob("*x.mp4*"))


def test_identity_file_without_end_is_refused(tmp_path, setup, capsys):
    vault, _, _ = setup
    vault.close()
    endless = tmp_path / "endless.identity"
    with open(endless, "wb") as f:
        f.truncate(8 << 20)  # far past any identity: read whole, it would all be held in memory
    fifo = tmp_path / "fifo.identity"
    os.mkfifo(fifo)
    for identity, said in ((endless, "larger than"), ("/dev/zero", "not a regular file"),
                           (fifo, "not a regular file")):
        code = main(["vault", "view", str(vault.layout.root), "X", "--purpose", "judicial", "--requester", "R",
                     "--identity", str(identity), "--no-play"])
        assert code == 2 and said in capsys.readouterr().err


def test_check_report_refuses_an_mp4_that_is_not_a_file(tmp_path, setup, capsys):
    from tools.vault.report import REPORT_CONTEXT, sign_report
    vault, _, _ = setup
    report = sign_report(vault.signer, {
        "format": REPORT_CONTEXT, "extraction_id": "X-1", "purpose": "judicial", "requester": "R",
        "deliver_to": "D", "recordings": [], "mp4": {"sha256": "00" * 32}})
    path = tmp_path / "x.report.json"
    path.write_text(json.dumps(report))
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)  # opened for reading, it would wait for a writer for ever
    code = main(["vault", "check-report", str(path), str(fifo), "--vault-key", vault.signer.public_key_hex])
    assert code == 2 and "not a regular file" in capsys.readouterr().err


def test_an_ordinary_spool_is_still_copied_whole(tmp_path, setup):
    """The refusals above leave the ordinary path as it was: every file copied byte for byte."""
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient)
    report = ingest(vault, spool_dir, progress=False)
    assert report.ok and sorted(report.stored) == rids
    for rid in rids:
        for f in (spool_dir / rid).iterdir():
            assert (vault.layout.recording(CAMERA, rid) / f.name).read_bytes() == f.read_bytes()
    assert os.listdir(vault.layout.incoming) == []


def test_index_rows_of_the_wrong_type_are_a_clear_error(tmp_path, setup):
    vault, _, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=1)
    ingest(vault, spool_dir, progress=False)
    vault.index.db.execute("UPDATE recordings SET ingested_at='soon'")
    with pytest.raises(VaultError, match="ingested_at 'soon' is not a time"):
        vault.index.recordings()


# -- extraction memory (item 6): what is held at once has a bound --

def _video_only(count, *, frames=20, gop=10):
    """MPEG-TS segments with video and no sound (a camera whose microphone failed); with
    ``count`` 1, one stream of ``frames`` frames."""
    import io
    from fractions import Fraction

    import av
    import numpy as np
    out_segments = []
    for index in range(count):
        buf = io.BytesIO()
        out = av.open(buf, "w", format="mpegts")
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        video.codec_context.time_base = Fraction(1, 10)
        for i in range(frames):
            img = np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = index * frames + i, Fraction(1, 10)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        out.close()
        out_segments.append(buf.getvalue())
    return out_segments


def test_a_recording_without_sound_is_written_as_it_streams_not_held_whole(tmp_path, monkeypatch):
    from tools.vault import remux
    segments = _video_only(3)
    monkeypatch.setattr(remux, "MAX_BUFFERED_BYTES", 4 * max(len(s) for s in segments))
    out = tmp_path / "silent.mp4"
    sizes = []

    def pulled():
        for i in range(40):
            if i == 30:
                sizes.append(out.stat().st_size if out.exists() else 0)
            yield remux.SegmentInput(f"seg-{i}", segments[i % 3])

    result = remux.remux_to_mp4(pulled(), out)
    assert sizes[0] > 0  # the MP4 was being written while segments were still coming
    assert result.audio_packets == 0 and result.video_packets == 40 * 20
    assert 79 <= result.duration_s <= 81


def test_a_cut_with_no_keyframe_before_its_start_is_a_clear_error(tmp_path, monkeypatch):
    from tools.vault import remux
    stream = _video_only(1, frames=100, gop=1000)[0]  # one keyframe, at the very start
    step = 188 * (len(stream) // 188 // 10)
    chunks = [stream[i:i + step] for i in range(0, len(stream), step)]
    monkeypatch.setattr(remux, "MAX_BUFFERED_BYTES", len(stream) // 2)
    with pytest.raises(VaultError, match="no keyframe in the .* before the range start"):
        remux.remux_to_mp4([remux.SegmentInput(f"c{i}", c) for i, c in enumerate(chunks)],
                           tmp_path / "cut.mp4", start_s=9.0)


@pytest.mark.parametrize("where, data", [
    ("vault/journal.jsonl", b"[" * 5000 + b"\n"),
    ("vault/journal.jsonl", b'{"seq": NaN, "prev": "x", "sig": "y"}\n'),
    ("police/register.jsonl", b"[" * 5000 + b"\n"),
    (f"vault/device-journals/{CAMERA}/journal.jsonl", b"[" * 5000 + b"\n"),
])
def test_a_damaged_log_is_reported_by_verify_not_a_traceback(tmp_path, setup, capsys, where, data):
    vault, _, recipient = setup
    spool_dir, _rids = _spool(tmp_path, vault, recipient)
    ingest(vault, spool_dir, progress=False)
    vault.close()
    with open(tmp_path / where, "ab") as f:
        f.write(data)
    assert main(["vault", "verify", str(vault.layout.root)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out


def test_a_damaged_checkpoint_is_reported_by_verify(tmp_path, setup, capsys):
    vault, _, recipient = setup
    vault.close()
    (vault.layout.root / "journal.jsonl.checkpoint.json").write_text("[" * 5000)
    assert main(["vault", "verify", str(vault.layout.root)]) == 1
    assert "unreadable checkpoint" in capsys.readouterr().out


def test_a_segment_swapped_in_the_vault_is_not_decrypted(tmp_path, setup):
    """Anyone can encrypt to the chief's public key: a bigger segment put in the vault is
    refused on its size before it is decrypted into memory, not after."""
    from recorder.evidence.age import encrypt_bytes
    vault, identity, recipient = setup
    spool_dir, rids = _spool(tmp_path, vault, recipient, recordings=1)
    ingest(vault, spool_dir, progress=False)
    segment = next(vault.layout.recording(CAMERA, rids[0]).glob("*.ts.age"))
    segment.write_bytes(encrypt_bytes(b"\x47" + b"\xff" * 187 * 5000, [recipient]))
    with pytest.raises(VaultError, match="the manifest says"):
        extract(vault, Request(rids, "judicial", "R", "D", tmp_path / "x.mp4"), [identity.read_text().strip()])
    assert not list(tmp_path.glob("*x.mp4*"))


def test_a_number_sqlite_cannot_hold_is_a_clear_error(tmp_path, setup):
    vault, _, _ = setup
    with pytest.raises(VaultError, match="too large to record"):
        vault.index.add_recording(RecordingRow("CAM-1_20261118T110640Z_000001", "CAM-1", 10**30, None, False,
                                               0.0, "stored", 1, 1, "00" * 32, False, None))


def test_enrol_takes_only_a_camera_id_the_spool_would_take(tmp_path, setup):
    vault, _, _ = setup
    for bad in ("CAM-1\n", "CAM_1", "../CAM", ""):
        with pytest.raises(VaultError, match="--camera"):
            vault.enrol(bad, "ab" * 32)
    vault.enrol("CAM-1", "ab" * 32)
    assert vault.index.camera_key("CAM-1") == "ab" * 32


def test_the_report_reads_odd_metadata_without_failing(tmp_path):
    """Metadata is the camera's: events that are not objects, positions off the Earth,
    times past any calendar and a notice duration in words make a report, not a crash."""
    from tools.vault.extract import OpenedRecording
    from tools.vault.report import recording_summary
    from tools.vault.report_html import render_html
    rec = OpenedRecording("CAM-1_20261118T110640Z_000000", "CAM-1", "ab" * 32, tmp_path, {}, None)
    rec.metadata = [
        {"recording": {"notice": {"given": True, "duration": "long", "start": 1e300}},
         "events": ["text", 5, None, {"type": "gps", "lat": 1e308, "lon": 1e308, "time": 1e300},
                    {"type": "gps", "lat": 46.95, "lon": 4.30, "time": 1795000000.0},
                    {"type": "bookmark", "time": -1e300}]},
        {"events": "not a list"},
    ]
    summary = recording_summary(rec)
    assert summary["gps_track"] == [{"lat": 46.95, "lon": 4.30, "time": 1795000000.0}]
    report = {"extraction_id": "X-1", "vault_key": "ab" * 32, "recordings": [summary],
              "mp4": {"name": "x.mp4", "duration_s": 1.0, "sha256": "00" * 32, "audio": "kept"}}
    html = render_html(report, tmp_path / "x.mp4", [], thumbs=[])
    assert "Signet" in html and "Avertissement donné" in html


def test_index_text_that_is_not_utf8_is_a_clear_error(tmp_path, setup):
    """Found by `pieton bench fuzz`: SQLite keeps whatever bytes it is given as text."""
    vault, _, _ = setup
    vault.index.db.execute("INSERT INTO cameras VALUES ('CAM-1', CAST(X'E8E8' AS TEXT), 'x')")
    with pytest.raises(VaultError, match="index .*cannot be used"):
        vault.index.camera_key("CAM-1")
