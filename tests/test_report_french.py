"""The pages a chief, a trainer or a court reads say everything in French: the events'
details (the metadata's identifiers stay in the signed JSON), the anonymiser's account of
itself, the desk's timeline; one function tells the notice in either language."""

from __future__ import annotations

import re

from recorder.notice import describe as describe_notice
from tools.desk.event_words import describe
from tools.vault.anonymised_words import anonymised_french
from tools.vault.report_events import rows
from tools.vault.report_html import _when, render_html

# What the anonymiser (tools/vault/anonymise.py) and its detector (tools/vault/faces.py) say.
SUMMARY = {"faces": "blurred: CenterFace, passes x1 score>=0.5 (from 0.3 if confirmed) faces up to 3.5 % of "
                    "the width (45 px on 1280), searched every 10 frames with boxes moved or held in between, "
                    "margin 40% each side",
           "frames": 120, "frames_with_faces_blurred": 30, "searches": 13,
           "plates": "2 box(es) drawn by the chief, followed from there by template matching; checked on the "
                     "contact sheet",
           "overlay": "masked: top 84 px of each frame", "audio": "removed (always, for training)",
           "video": "re-encoded with libx264 (crf 23), no metadata"}
ENGLISH = ("blurred", "searched", "boxes", "held", "margin", "each side", "if confirmed", "of the width", " on 1280",
           "drawn by", "template", "checked on", "masked", "each frame", "removed", "always", "re-encoded",
           "no metadata")


def test_the_anonymisers_account_of_itself_is_told_in_french():
    told = dict(anonymised_french(SUMMARY))
    said = " ".join(told.values())
    for english in ENGLISH:
        assert english not in said, english
    assert told["Visages"].startswith("floutés : CenterFace") and "toutes les 10 images" in told["Visages"]
    assert told["Plaques"].startswith("2 cadre(s) tracé(s)") and told["Son"] == "supprimé (toujours, pour la formation)"
    assert told["Incrustation"] == "masquée : les 84 pixels du haut de chaque image"
    assert dict(anonymised_french({"plates": "none marked by the chief; checked on the contact sheet"})) == {
        "Plaques": "aucune marquée par le chef de service ; vérifiées sur la planche contact"}


def test_the_extraction_page_tells_an_anonymised_extraction_and_the_event_details_in_french(tmp_path):
    report = {"extraction_id": "X-1", "vault_key": "ab" * 32, "created": "2026-11-27T17:41:11Z",
              "purpose": "training", "requester": "ENPM", "deliver_to": "Formateur", "anonymised": SUMMARY,
              "recordings": [{"id": "R-1", "camera": "CAM-1", "started_at": "2026-11-27T17:41:11Z",
                              "recording": {"trigger_reason": "request"},
                              "events": [{"kind": "notice_checked", "time": 1795801275.0, "given": True,
                                          "heard": False, "peak": 0.12},
                                         {"kind": "trigger", "time": 1795801276.0, "reason": "request"},
                                         {"event": "boundary crossed", "time": 1795801277.0, "from": "inside",
                                          "to": "outside", "commune": "Autun", "distance_m": 3.5}],
                              "gps_track": [], "closed": {"reason": "stop", "ended_at": 1795801331.0},
                              "segments": []}],
              "mp4": {"name": "x.mp4", "duration_s": 60.0, "sha256": "00" * 32, "audio": "removed"}}
    page = render_html(report, tmp_path / "x.mp4", [], thumbs=[])
    words = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S))
    for english in ENGLISH + ("{", "given", "heard", "peak", "reason", "distance m", " from ", " to ", "inside",
                              "True", "False"):
        assert english not in words, english
    for said in ("donné oui", "entendu non", "pic de corrélation 0,12", "déclenchement à la demande de la personne",
                 "de dans la commune", "vers hors de la commune", "distance à la limite (m) 3,5"):
        assert said in words, said


def test_the_signed_json_keeps_the_metadatas_identifiers():
    summary = {"started_at": "2026-11-27T17:41:11.000Z",
               "events": [{"kind": "notice_checked", "time": 1795801275.0, "given": True, "heard": False}]}
    text = " ".join(row.text for row in rows(summary, _when))
    assert "given True" in text and "heard False" in text


def test_the_desks_timeline_has_no_english_event_name():
    assert describe({"kind": "notice_checked", "given": True, "heard": True}) == \
        "Avertissement vérifié : microphone, entendu"
    assert describe({"event": "fault", "kind": "fault", "message": "x"}) == "Panne"


def test_one_function_tells_the_notice_in_either_language():
    cases = [
        ({"given": True, "duration": 3.04}, "given (3.0 s)", "Avertissement donné (3,0 s)"),
        ({"skipped": "flagrant_delit"}, "skipped (flagrant delit)", "Flagrant délit : pas d'avertissement"),
        ({"given": "simulated", "duration": 2.5, "heard": {"verdict": True, "peak": 0.61, "lag_ms": 12.5}},
         "simulated speaker only, not given (2.5 s); microphone: heard (correlation peak 0.61, lag 12.5 ms)",
         "Avertissement non donné : haut-parleur simulé seulement (2,5 s) ; microphone : entendu "
         "(pic de corrélation 0,61, décalage 12,5 ms)"),
        ({"given": False, "failed": "no sound server"}, "NOT GIVEN: no sound server (agent told to say it aloud)",
         "Avertissement NON DONNÉ : no sound server (l'agent invité à le dire à voix haute)"),
        ({}, "none", "Pas d'avertissement enregistré"),
    ]
    for notice, english, french in cases:
        assert describe_notice(notice) == english
        assert describe_notice(notice, "fr") == french
