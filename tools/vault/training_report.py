"""The report of a training extraction: what a trainer may know of the clip, and nothing
that names, places or dates anyone (R241-13; the CNIL's guidance on training material).

No agent number, camera id, device key, recording id (it holds the camera and the start
time), segment names or hashes, position, track or map, and no absolute time: times count
from the clip's start. The extraction id is random. Which recordings were used stays in the
vault's journal and the register, where the extraction is logged twice as any other.
"""

from __future__ import annotations

import re
import secrets
from html import escape

from tools.desk.words import seconds
from tools.vault.anonymised_words import anonymised_french
from tools.vault.report import REPORT_CONTEXT, recording_summary
from tools.vault.report_events import rows
from tools.vault.report_html import event_rows, facts_rows, strip

# Event kinds told (by name only, no details): a kind that is not plain, or that speaks
# of a place or a person, is left out.
_PLAIN_KIND = re.compile(r"[a-z][a-z_-]{0,31}")
_WITHHELD = ("gps", "track", "fix", "position", "geofence", "territory", "assign", "agent", "camera")


def _told(kind: str) -> bool:
    return bool(_PLAIN_KIND.fullmatch(kind)) and not any(word in kind for word in _WITHHELD)


def relative_timeline(recordings, result, *, french: bool = False) -> list[dict]:
    """The extraction report's timeline (tools/vault/report_events.py) in seconds from the
    clip's start, kinds and words only: recording k begins where its first segment lies in
    the MP4 (the first recording, where the range cut it). ``french``: the page's words and
    decimal comma; without it the signed JSON's."""
    cut = result.range_s[0] if result.range_s else 0.0
    out = []
    for number, rec in enumerate(recordings):
        if rec.started_at is None:
            continue
        spans = [a for name, a, _ in result.spans if name.startswith(rec.recording_id + "/")]
        if number == 0:
            base = -cut
        elif spans:
            base = min(spans)
        else:
            continue

        def into_clip(epoch: float, base=base, started=rec.started_at) -> float:
            return round(base + epoch - started, 1)
        seen = set()
        def told(t: float, into_clip=into_clip) -> str:
            return seconds(into_clip(t)) if french else f"{into_clip(t):.1f} s"
        for row in rows(recording_summary(rec), told, details=False, french=french):
            if row.at is None or not _told(row.kind):
                continue
            t = into_clip(row.at)
            if 0.0 <= t <= result.duration_s and (t, row.text) not in seen:
                seen.add((t, row.text))
                out.append({"t_s": t, "event": row.kind, "what": row.text})
    return sorted(out, key=lambda e: (e["t_s"], e["event"]))


def build_training_report(vault, request, recordings, result, mp4_name: str, mp4_sha256: str, mp4_size: int,
                          *, anonymised: dict) -> dict:
    return {
        "format": REPORT_CONTEXT,
        "extraction_id": f"X-training-{secrets.token_hex(8)}",
        "vault_key": vault.signer.public_key_hex,
        "purpose": request.purpose, "requester": request.requester, "deliver_to": request.deliver_to,
        "sources": {"recordings": len(recordings), "segments": sum(len(r.segments) for r in recordings),
                    "truncated": bool(result.truncated_segments)},
        "mp4": {"name": mp4_name, "sha256": mp4_sha256, "size": mp4_size, "duration_s": result.duration_s,
                "video_packets": result.video_packets, "audio_packets": 0, "re_encoded": True,
                "audio": "removed"},
        "timeline": relative_timeline(recordings, result),
        "truncated": ("a recording ends early: the clip stops at its last good frame"
                      if result.truncated_segments else None),
        "anonymised": anonymised,
        "withheld": "agent, camera, recording ids, positions and absolute times (training: R241-13); "
                    "the recordings used are named in the vault's journal and the register only",
    }


def render_training_html(report: dict, thumbs, timeline: list[dict] | None = None) -> str:
    """The page, in French; ``timeline`` is ``relative_timeline(..., french=True)`` (the
    signed report's own timeline, in its English, when not given)."""
    e = escape
    sources = report["sources"]
    body = [f"<h1>Extraction pour la formation {e(report['extraction_id'])}</h1>",
            "<p class=warn>Anonymisé pour la formation : visages floutés, incrustation masquée, son supprimé ; "
            "ni agent, ni caméra, ni lieu, ni date. Les temps comptent depuis le début de l'extrait.</p>",
            "<table>", *facts_rows(report),
            f"<tr><th>Sources</th><td>{sources['recordings']} enregistrement(s), "
            f"{sources['segments']} segment(s)</td></tr>",
            f"<tr><th>Clé du coffre</th><td><code>{e(report['vault_key'])}</code></td></tr></table>",
            f"<p>{e(' ; '.join(f'{label} : {words}' for label, words in anonymised_french(report['anonymised'])))}</p>"]
    if report.get("truncated"):
        body.append("<p class=warn>Un enregistrement s'arrête avant la fin : l'extrait s'arrête à sa dernière "
                    "image intacte.</p>")
    body.append("<h2>Au fil de l'extrait</h2>")
    body.extend(strip([(t, uri) for t, uri in thumbs if uri.startswith("data:")]))
    body.append("<h2>Événements</h2><table class=timeline>")
    if timeline is None:
        body.extend(event_rows((f"{ev['t_s']:.1f} s", ev["what"]) for ev in report["timeline"]))
    else:
        body.extend(event_rows((seconds(ev["t_s"]), ev["what"]) for ev in timeline))
    body.append("</table><p>Le rapport JSON signé placé à côté de cette page fait foi : le vérifier avec "
                "<code>pieton vault check-report RAPPORT FICHIER.mp4 --vault-key CLÉ</code>.</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}th{text-align:left;padding-right:1em}"
             ".strip{display:flex;gap:6px;overflow-x:auto}.strip figure{margin:0;text-align:center;font-size:12px}"
             ".timeline td{padding:2px 10px;border-bottom:1px solid #ddd}.warn{background:#fff3cd;padding:.5em}"
             "code{font-size:11px}")
    return (f"<!DOCTYPE html><html lang=fr><head><meta charset=utf-8><title>Extraction pour la formation "
            f"{e(report['extraction_id'])}</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
