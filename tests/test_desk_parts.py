"""The desk's parts without a browser: the vault hooks it uses (the operator, the remux
into a file object), sessions and their idle lock, the timeline's words, the health line."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import av
import pytest
from conftest import read_jsonl
from test_vault_media import make_segments
from vault_support import CAMERA, Clock, make_spool, store_recordings

from recorder.evidence.age import generate_identity
from tools.desk.access import retention_end
from tools.desk.health import HealthCheck
from tools.desk.sessions import Sessions, author
from tools.desk.stream import FRAGMENTED, fragmented_mp4
from tools.desk.timeline import describe
from tools.desk.words import local, seconds
from tools.vault.extract import log_consultation, open_recording
from tools.vault.ingest import ingest
from tools.vault.remux import SegmentInput, remux_to_mp4


@pytest.fixture
def chief():
    return generate_identity()


def test_the_operator_of_an_entry_is_the_person_the_desk_names(tmp_path, vault, chief):
    vault.operator = chief[1]
    vault.log("desk-sign-in", person="Chef Martin")
    log_consultation(vault, "CAM-T-001_20261118T000000Z_000000", "judicial", "OPJ Durand", CAMERA, 12.0,
                     played=True)
    journal = read_jsonl(vault.layout.journal)
    assert [e["operator"] for e in journal[-2:]] == [chief[1], chief[1]]
    register = read_jsonl(tmp_path / "police" / "register.jsonl")
    assert register[-1]["operator"] == chief[1] and register[-1]["event"] == "consultation"
    assert register[-1]["journal_seq"] == journal[-1]["seq"]


def test_remux_writes_fragmented_mp4_into_a_file_object():
    out = io.BytesIO()
    segments = [SegmentInput(f"seg-{i}", data, True) for i, data in enumerate(make_segments(3))]
    result = remux_to_mp4(iter(segments), out, options=FRAGMENTED)
    data = out.getvalue()
    assert b"moof" in data and b"mfra" not in data[:64]
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == result.video_packets and result.duration_s == pytest.approx(6.0, abs=0.2)


def test_fragmented_mp4_streams_a_stored_recording_and_stops_when_closed(tmp_path, vault, chief):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=3)
    whole = b"".join(fragmented_mp4(open_recording(vault, rid, [chief[0]])))
    with av.open(io.BytesIO(whole)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) > 0
    chunks = fragmented_mp4(open_recording(vault, rid, [chief[0]]))
    next(chunks)
    chunks.close()  # the browser went away: the remux thread stops, nothing is left waiting


def test_sessions_lock_when_idle_and_drop_the_identity():
    clock = Clock(100.0)
    sessions = Sessions(idle_s=600, clock=clock)
    identity, recipient = generate_identity()
    identities = [identity]
    session = sessions.open("Chef Martin", identities, "PM-0042")
    assert author(session) == "PM-0042" and session.recipient == recipient
    clock.t += 599
    assert sessions.get(session.token)[0] is session  # a request restarts the idle clock
    clock.t += 599
    assert sessions.get(session.token)[0] is session
    clock.t += 601
    assert sessions.get(session.token) == (None, "verrouillee")
    assert session.identities == [] and len(sessions) == 0
    assert sessions.get(session.token) == (None, "inconnue")
    other = sessions.open("Chef Martin", [identity], "PM-0042")
    sessions.close(other.token)
    assert other.identities == [] and sessions.get(other.token) == (None, "inconnue")
    assert sessions.get(None) == (None, None)


@pytest.mark.parametrize("event, words", [
    ({"kind": "notice_played", "duration": 3.4}, "Avertissement donné (3,4 s)"),
    ({"kind": "notice_skipped", "why": "flagrant_delit"}, "Flagrant délit : pas d'avertissement"),
    ({"kind": "bookmark"}, "Signet"),
    ({"event": "gps fix lost", "why": "no fix"}, "Perte GPS"),
    ({"kind": "trigger", "reason": "request"}, "Déclenchement : à la demande de la personne"),
    ({"event": "video_lost"}, "Perte de l'image"),
    ({"kind": "visual_signal_lost", "why": "dark"}, "Sans signal visuel (voyant rouge en panne)"),
    ({"kind": "visual_signal_lost_end"}, "Signal visuel rétabli"),
    ({"event": "track", "lat": 46.9, "lon": 4.3}, None),
])
def test_timeline_words(event, words):
    assert describe(event) == words


def test_times_and_durations_in_french():
    assert local(1795801212.0, None) == "27/11/2026 18:40:12 CET"  # 17:40:12 UTC
    assert local(1785801212.0, None).endswith("CEST")
    assert local(1795801212.0, "America/Cayenne").endswith("-03")
    assert seconds(3.44) == "3,4 s" and seconds(125) == "2 min 05 s" and seconds(None) == "inconnue"


def test_health_line(tmp_path, vault, chief, monkeypatch):
    health = HealthCheck()
    line = health(vault, None)
    assert line.last_purge == "jamais" and line.register_present and line.cameras_late == []
    vault.enrol(CAMERA, "ab" * 32)
    line = health(vault, None)
    assert line.cameras_late == [CAMERA] and not line.ok  # enrolled, never offloaded
    vault.log("recording-erased", recording="x", camera=CAMERA)
    assert health(vault, None).last_purge.endswith("CET")
    (tmp_path / "police" / "register.jsonl").rename(tmp_path / "elsewhere.jsonl")
    assert not health(vault, None).register_present
    line.disk_used = 0.91
    assert line.disk_warning


def test_retention_end_is_the_purge_rule(tmp_path, vault, chief):
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=1)
    row = vault.index.recording(rid)
    # made 18 November 2026, 12:06 Paris: due at the end of 18 December, local time (R241-13)
    assert retention_end(vault, row) == datetime(2026, 12, 19, tzinfo=ZoneInfo("Europe/Paris")).timestamp()


def test_cameras_page_lines_say_late_offloads_and_recordings_soon_erased(tmp_path, vault, chief):
    from tools.desk.cameras import camera_lines
    spool_dir, signer = make_spool(tmp_path, [chief[1]], recordings=2, segments=1)
    vault.enrol(CAMERA, signer.public_key_hex)
    vault.enrol("CAM-T-002", "cd" * 32)
    stored = ingest(vault, spool_dir, progress=False).stored
    lines, soon = camera_lines(vault)
    assert [(line["camera"], line["stored"], line["late"]) for line in lines] == [(CAMERA, 2, False),
                                                                                   ("CAM-T-002", 0, True)]
    assert soon == []
    vault.clock.t += 29 * 86400  # under three days before the purge takes them
    vault.index.add_hold(stored[0], "PV 1", vault.now())
    lines, soon = camera_lines(vault)
    assert [s["row"].recording_id for s in soon] == [stored[1]]  # the held one is not erased
    assert lines[0]["late"]


def test_track_map_has_scale_north_and_corner_coordinates():
    import xml.etree.ElementTree as ET

    from recorder.config import DEFAULT_CONFIG
    from tools.desk.track_map import track_svg
    track = [(46.9535, 4.2990), (46.9522, 4.2988), (46.9510, 4.2985)]
    communes = [str(p) for p in (DEFAULT_CONFIG.parent / "communes").glob("*.geojson")]
    svg = track_svg(track, communes)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.find(f"{ns}polyline").get("points").split()) == 3
    assert root.find(f"{ns}polygon") is not None  # Autun's boundary under the track
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "N" in texts and any(t.endswith(" m") for t in texts)
    nw = next(t for t in texts if t.startswith("Nord-ouest"))
    lat, lon = (float(x) for x in nw.split(": ")[1].split(", "))
    assert lat > 46.9535 and lon < 4.2985  # the corner is outside the track, north-west of it
    assert track_svg([], communes) is None
    assert track_svg(track, ["/nonexistent.geojson"]).count("<polygon") == 0


def test_a_form_token_is_accepted_once_and_only_from_its_session():
    sessions = Sessions()
    identity, _ = generate_identity()
    one, other = sessions.open("A", [identity], "PM-1"), sessions.open("B", [identity], "PM-2")
    token = one.form_token()
    assert not other.spend(token) and not one.spend("forged") and not one.spend(None)
    assert one.spend(token) and not one.spend(token)  # replayed
    tokens = [one.form_token() for _ in range(300)]
    assert not one.spend(tokens[0]) and one.spend(tokens[-1])  # the oldest forms lapse


def test_thumbnails_are_made_in_memory_at_their_times(tmp_path, vault, chief):
    import base64

    import cv2
    import numpy as np

    from tools.desk.thumbs import WIDTH, thumbnails
    (rid,), _signer = store_recordings(vault, tmp_path, chief[1], recordings=1, segments=3)
    before = {p for p in tmp_path.rglob("*")}
    pictures = thumbnails(open_recording(vault, rid, [chief[0]]))
    assert [round(at) for at, _ in pictures] == [0, 2, 4]  # one per 2-second segment
    for _, uri in pictures:
        jpeg = base64.b64decode(uri.split(",", 1)[1])
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[1] == WIDTH
    assert {p for p in tmp_path.rglob("*")} == before  # nothing written
