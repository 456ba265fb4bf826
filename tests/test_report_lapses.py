"""The spans a recording lacked the red light (CSI L241-2), its position, its image or its
sound are told in words wherever the recording is read: the extraction report (JSON and
HTML), the training report (seconds into the clip, nothing identifying) and the scenario
summary. The two reports' event lists are one list (tools/vault/report_events.py)."""

import json
import re
from types import SimpleNamespace

import pytest
from test_red_light import EPOCH, SENSE_PIN, Camera
from test_vault_media import make_segments
from vault_support import CAMERA, START, Clock

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity
from recorder.evidence.format import utc_iso
from recorder.evidence.spool import Spool
from recorder.lapses import Lapse, lapses, visual_signal_spans
from recorder.summary import print_summary
from recorder.visual_signal import SPAN_NOTE, SPANS
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.report_events import rows
from tools.vault.report_html import _when
from tools.vault.vault import Vault, init_vault


@pytest.fixture
def keys():
    return generate_identity()


@pytest.fixture
def store(tmp_path, keys):
    """A vault (its clock two hours after the recording) and the chief's identity."""
    (tmp_path / "police").mkdir()
    init_vault(tmp_path / "vault", [keys[1]], tmp_path / "police" / "register.jsonl")
    with Vault.open(tmp_path / "vault", clock=Clock(START + 7200)) as vault:
        yield vault, keys


def spool_with_lapses(tmp_path, recipient):
    """One recording of 4 segments (8 s) whose red light failed from 1 s to 3 s, whose GPS
    fix was lost from 2 s to its end, and whose sound was lost from 5 s to 6 s."""
    spool_dir = tmp_path / "spool"
    signer = FileSigner.create(tmp_path / "key" / "device-signing.key")
    wall = Clock(START)
    media = make_segments(4)
    with Spool(spool_dir, signer, [recipient], CAMERA, "0" * 64, False, wall_clock=wall) as spool:
        spool.recover()
        rec = spool.open_recording(wall.t, "agent", {"clock_source": "gps"})
        rec.static["agent"] = "A-1234"
        rec.static[SPANS] = [{"start": utc_iso(START + 1), "end": utc_iso(START + 3), "why": "red light: dark",
                              "note": SPAN_NOTE}]
        for n in range(4):
            seg = rec.open_segment()
            if n == 0:
                rec.note({"kind": SPANS, "time": START + 1, "why": "red light: dark", "note": SPAN_NOTE})
                rec.note({"event": "gps fix lost", "time": START + 2, "why": "no fix"})
            if n == 1:
                rec.note({"kind": "visual_signal_lost_end", "time": START + 3, "why": "back", "note": SPAN_NOTE})
            if n == 2:
                rec.note({"event": "audio_lost", "at": utc_iso(START + 5)})
                rec.note({"event": "audio_regained", "at": utc_iso(START + 6)})
            seg.write(media[n])
            wall.t += 2
            seg.seal()
        rec.close("agent stop")
    return spool_dir, signer


def test_spans_are_paired_and_one_still_open_lasts_to_the_end():
    found = lapses([("video_lost", 10.0, None), (SPANS, 3.0, "dark"), ("visual_signal_lost_end", 5.0, "back"),
                    ("video_regained", None, None), ("bookmark", 4.0, None)])
    assert found == [Lapse(SPANS, 3.0, 5.0, "dark"), Lapse("video_lost", 10.0, None, None)]
    assert found[1].in_words(lambda t: f"{t:.0f} s") == "Sans image de 10 s jusqu'à la fin de l'enregistrement"
    assert found[0].in_words(lambda t: f"{t:.0f} s") == "Sans signal visuel de 3 s à 5 s (dark)"
    assert visual_signal_spans({SPANS: [{"start": "2026-11-27T17:41:11Z", "end": None, "why": "x"}, "junk"]}) == [
        Lapse(SPANS, 1795801271.0, None, "x")]


def extracted(tmp_path, store, purpose: str):
    """The recording with spans, ingested and extracted for ``purpose``: (report, HTML)."""
    vault, chief = store
    spool_dir, signer = spool_with_lapses(tmp_path, chief[1])
    vault.enrol(CAMERA, signer.public_key_hex)
    rid = ingest(vault, spool_dir, progress=False).stored[0]
    result = extract(vault, Request([rid], purpose, "OPJ Durand", "Parquet", tmp_path / "x.mp4"), [chief[0]])
    return json.loads(result.report_path.read_text()), result.html_path.read_text()


def test_the_extraction_report_tells_the_spans_in_words(tmp_path, store):
    report, html = extracted(tmp_path, store, "judicial")
    lapses_said = report["recordings"][0]["lapses"]
    assert [s["words"] for s in lapses_said] == [
        f"Sans signal visuel de {utc_iso(START + 1)} à {utc_iso(START + 3)} (red light: dark)",
        f"Sans position GPS de {utc_iso(START + 2)} jusqu'à la fin de l'enregistrement (no fix)",
        f"Sans son de {utc_iso(START + 5)} à {utc_iso(START + 6)}"]
    for words in (f"Sans signal visuel de {_when(START + 1)} à {_when(START + 3)} (red light: dark)",
                  f"Sans position GPS de {_when(START + 2)} jusqu'à la fin de l'enregistrement (no fix)",
                  f"Sans son de {_when(START + 5)} à {_when(START + 6)}"):
        assert words.replace("'", "&#x27;") in html   # the page in local time, as its reader reads it
    assert "visual_signal_lost" not in html   # told as a span, not as two raw events


def test_the_training_report_tells_the_spans_in_seconds_and_nothing_identifying(tmp_path, store):
    report, html = extracted(tmp_path, store, "training")
    said = {e["event"]: e["what"] for e in report["timeline"]}
    assert said[SPANS] == "Sans signal visuel de 1.0 s à 3.0 s"   # no reason: it names the device's fault only
    assert said["audio_lost"] == "Sans son de 5.0 s à 6.0 s"
    assert "gps fix lost" not in said and not any("GPS" in w for w in said.values())
    assert "Sans signal visuel de 1,0 s à 3,0 s" in html   # the page's decimal comma
    words = re.sub(r'src="data:image/jpeg[^"]+"', "", html)
    assert not re.search(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\d\d/\d\d/\d{4}", json.dumps(report) + words)
    assert "A-1234" not in json.dumps(report) + words and CAMERA not in json.dumps(report) + words


def test_both_reports_draw_their_events_from_one_list():
    summary = {"started_at": utc_iso(START), "recording": {"trigger_reason": "agent"},
               "events": [{"type": "bookmark", "time": START + 4, "lat": 1.0},
                          {"kind": SPANS, "time": START + 1, "why": "dark"}],
               "closed": {"reason": "agent stop", "ended_at": START + 8}}
    full = rows(summary, utc_iso)
    bare = rows(summary, lambda t: f"{t - START:.1f} s", details=False)
    assert [r.kind for r in full] == [r.kind for r in bare] == ["start", SPANS, "bookmark", "stop"]
    assert full[2].text == "bookmark (lat 1.0)" and bare[2].text == "bookmark"
    assert bare[1].text == "Sans signal visuel de 1.0 s jusqu'à la fin de l'enregistrement"


def test_the_scenario_summary_tells_the_span_without_the_red_light(tmp_path, chief):
    camera = Camera(tmp_path, chief, {"gpio": {"red_led_sense": SENSE_PIN}})
    try:
        daemon = camera.start()
        camera.press(1.0, 0.1)
        camera.at(5.0)
        daemon.hardware.leds.fail("dark")
        camera.at(20.0)
        daemon.hardware.leds.recover()
        camera.at(30.0)
        camera.press(31.0, 3.2)       # held: stop
        camera.at(40.0)
        lines = []
        print_summary(SimpleNamespace(daemons=[daemon], failures=[],
                                      scenario=SimpleNamespace(name="t", duration=40.0, start_epoch=EPOCH)),
                      out=lines.append)
    finally:
        camera.close()
    said = [line.strip() for line in lines if "Sans signal visuel" in line]
    assert len(said) == 1 and re.fullmatch(r"Sans signal visuel de \S+ UTC à \S+ UTC \(.*dark.*\)", said[0]), said
