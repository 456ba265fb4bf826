"""The extraction report as one self-contained HTML file: a strip of thumbnails along the
MP4, the timeline of events, and the GPS track drawn over the commune boundary as inline
SVG (no map tiles, nothing fetched). In French: magistrates, officers and inspectors read
it; the signed JSON beside it keeps its English field names (a format tools read)."""

from __future__ import annotations

import base64
import math
from datetime import datetime
from html import escape
from pathlib import Path

from recorder.evidence.format import utc_iso
from recorder.inputs import InputError, load_json_file
from tools.desk.event_words import PURPOSES
from tools.desk.words import local, seconds
from tools.vault.anonymised_words import anonymised_french
from tools.vault.report_events import rows

THUMBNAILS = 8
THUMB_WIDTH = 160


def thumbnails(mp4_path: Path, count: int = THUMBNAILS) -> list[tuple[float, str]]:
    """(time, JPEG data URI) of frames evenly spread along the video."""
    import av
    import cv2
    out = []
    try:
        with av.open(str(mp4_path)) as container:
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
            for i in range(count if duration else 1):
                target = duration * (i + 0.5) / count if duration else 0.0
                # Seek to the keyframe before the target: decoding a long MP4 from the start
                # for each picture would cost more than the extraction itself.
                container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    # The keyframe the seek lands on: near enough for a thumbnail, and
                    # decoding on to the exact time would cost a whole GOP per picture.
                    img = frame.to_ndarray(format="bgr24")
                    h, w = img.shape[:2]
                    img = cv2.resize(img, (THUMB_WIDTH, max(1, h * THUMB_WIDTH // w)))
                    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
                    if ok:
                        out.append((frame.time or 0.0,
                                    "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode()))
                    break
    except Exception as exc:  # a report without pictures beats no report
        out.append((0.0, f"error: {exc}"))
    return out


def _boundaries(paths: list[str]) -> list[tuple[str, list[list[tuple[float, float]]]]]:
    shapes = []
    for path in paths:
        try:
            data = load_json_file(path, "geojson")
            features = data.get("features") or [data]
            for feature in features:
                geom = feature.get("geometry") or {}
                name = str((feature.get("properties") or {}).get("name", Path(path).stem))
                polys = [geom.get("coordinates")] if geom.get("type") == "Polygon" else geom.get("coordinates") or []
                rings = [[(float(x), float(y)) for x, y, *_ in ring] for poly in polys if poly for ring in poly]
                shapes.append((name, [r for r in rings if all(map(math.isfinite, sum(r, ())))]))
        except (InputError, AttributeError, TypeError, ValueError):
            continue  # a boundary the report cannot draw is left out, the report still made
    return shapes


def track_svg(track: list[dict], commune_files: list[str], size: int = 420, *, zoom: bool = False) -> str:
    """The track over the commune boundary; ``zoom`` frames the track alone (the boundary,
    when near, still shows), since a walk of a few hundred metres is a dot on a commune."""
    shapes = _boundaries(commune_files)
    pts = [(p["lon"], p["lat"]) for p in track]
    every = pts + [xy for _, rings in shapes for ring in rings for xy in ring]
    if zoom and pts:
        pad = 0.0006  # about 50 m around the track
        every = [(min(x for x, _ in pts) - pad, min(y for _, y in pts) - pad),
                 (max(x for x, _ in pts) + pad, max(y for _, y in pts) + pad)]
    if not every:
        return "<p>Aucune position enregistrée (pas de réception GPS pendant l'enregistrement).</p>"
    lon0, lon1 = min(x for x, _ in every), max(x for x, _ in every)
    lat0, lat1 = min(y for _, y in every), max(y for _, y in every)
    kx = math.cos(math.radians((lat0 + lat1) / 2))  # metres per degree of longitude shrink
    w, h = max((lon1 - lon0) * kx, 1e-6), max(lat1 - lat0, 1e-6)
    scale = (size - 20) / max(w, h)

    def xy(lon, lat):
        return f"{10 + (lon - lon0) * kx * scale:.1f},{10 + (lat1 - lat) * scale:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
             f'viewBox="0 0 {size} {size}" role="img" aria-label="Trajet GPS sur la limite de la commune">',
             f'<rect width="{size}" height="{size}" fill="#f7f7f2"/>']
    for name, rings in shapes:
        for ring in rings:
            parts.append(f'<polygon points="{" ".join(xy(*p) for p in ring)}" fill="#e3efe0" '
                         f'stroke="#4a7a45" stroke-width="1.5"><title>{escape(name)}</title></polygon>')
    if pts:
        parts.append(f'<polyline points="{" ".join(xy(*p) for p in pts)}" fill="none" stroke="#c0392b" '
                     'stroke-width="2.5" stroke-linejoin="round"/>')
        for point, fill, title in ((pts[0], "#27ae60", "départ"), (pts[-1], "#2c3e50", "arrivée")):
            cx, cy = xy(*point).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{fill}"><title>{title}</title></circle>')
    else:
        parts.append(f'<text x="20" y="{size // 2}" font-size="14">aucune position enregistrée</text>')
    parts.append("</svg>")
    return "".join(parts)


def _when(value, zone: str | None = None) -> str:
    """A time as whoever receives the report reads it: local, with its zone (the vault's),
    ``27/11/2026 18:41:11 CET``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return local(value, zone)
        except (OverflowError, ValueError, OSError):  # not a time a calendar can show
            try:
                return utc_iso(value)
            except (OverflowError, ValueError, OSError):
                return str(value)
    return str(value) if value is not None else "?"


def event_rows(rows) -> list[str]:
    """The timeline's rows as table rows (both reports: the times already written)."""
    return [f"<tr><td>{escape(t)}</td><td>{escape(what)}</td></tr>" for t, what in rows]


def strip(thumbs) -> list[str]:
    """The thumbnails along the MP4, with their times (both reports)."""
    out = ['<div class="strip">']
    for t, uri in thumbs:
        if uri.startswith("data:"):
            out.append(f'<figure><img src="{uri}" alt="Image à {seconds(t)} du début de la vidéo"><figcaption>{seconds(t)}</figcaption></figure>')
        else:
            out.append(f"<p>{escape(uri)}</p>")
    out.append("</div>")
    return out


def _who_where(rec: dict, commune_files: list[str], zone: str | None) -> str:
    """Who recorded, with which camera, when and where: what a reader looks for first."""
    e = escape
    static = rec.get("recording") if isinstance(rec.get("recording"), dict) else {}
    track = rec.get("gps_track") or []
    closed = rec.get("closed") or {}
    place = "aucune position enregistrée"
    if track:
        first, last = track[0], track[-1]
        place = (f"départ {_deg(first['lat'])} ; {_deg(first['lon'])} — arrivée {_deg(last['lat'])} ; "
                 f"{_deg(last['lon'])} (latitude ; longitude, WGS 84)")
    communes = ", ".join(name for name, _ in _boundaries(commune_files)) or "aucune tracée"
    rows = (("Matricule de l'agent", static.get("agent") or "non attribué"), ("Caméra", rec.get("camera")),
            ("Enregistré", f"du {_when(rec.get('started_at'), zone)} au {_when(closed.get('ended_at'), zone)}"),
            ("Lieu", place), ("Commune", communes))
    return "<table class=who>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _state(segment: dict) -> str:
    if segment.get("complete") is None:
        return "non déchiffré (hors de la plage extraite)"
    return "complet" if segment["complete"] else "tronqué : " + escape(str(segment.get("reason")))


AUDIO = {"kept": "conservé", "muted": "coupé", "removed": "supprimé"}


def _deg(value: float) -> str:
    return f"{value:.5f}".replace(".", ",")


def facts_rows(report: dict) -> list[str]:
    """Purpose, requester, recipient, MP4 and audio as table rows (both reports)."""
    e, mp4 = escape, report["mp4"]
    purpose = report.get("purpose")
    return [f"<tr><th>Motif</th><td>{e(PURPOSES.get(str(purpose), str(purpose)))}</td></tr>",
            f"<tr><th>Demandeur</th><td>{e(str(report.get('requester')))}</td></tr>",
            f"<tr><th>Destinataire</th><td>{e(str(report.get('deliver_to')))}</td></tr>",
            f"<tr><th>Vidéo MP4</th><td>{e(mp4['name'])} — {e(_length(mp4['duration_s']))} — "
            f"SHA-256 <code>{e(mp4['sha256'])}</code></td></tr>",
            f"<tr><th>Son</th><td>{e(AUDIO.get(str(mp4['audio']), str(mp4['audio'])))}</td></tr>"]


def _length(value) -> str:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return seconds(float(value)) if ok else f"{value} s"


def _facts(report: dict, zone: str | None) -> str:
    e = escape
    return ("<table>" + f"<tr><th>Établi le</th><td>{e(_when(report.get('created'), zone))}</td></tr>"
            + "".join(facts_rows(report))
            + f"<tr><th>Clé du coffre</th><td><code>{e(report['vault_key'])}</code></td></tr></table>")


def render_html(report: dict, mp4_path: Path, commune_files: list[str], thumbs=None, zone: str | None = None) -> str:
    """The report as a page; times local in ``zone`` (the vault's), UTC stays in the JSON."""
    thumbs = thumbnails(mp4_path) if thumbs is None else thumbs
    e = escape
    body = [f"<h1>Rapport d'extraction {e(report['extraction_id'])}</h1>", _facts(report, zone)]
    if report.get("anonymised"):
        told = " ; ".join(f"{label} : {words}" for label, words in anonymised_french(report["anonymised"]))
        body.append(f"<p class=warn>Anonymisé pour la formation : {e(told)}</p>")
    if report.get("truncated"):  # the JSON says it in English; the segments are named in its "mp4"
        cut = ", ".join(map(str, report["mp4"].get("truncated_segments") or []))
        body.append("<p class=warn>L'enregistrement s'arrête avant la fin : exporté jusqu'à sa dernière image "
                    f"intacte{f' ({e(cut)})' if cut else ''}.</p>")
    body.append("<h2>Au fil de la vidéo</h2>")
    body.extend(strip(thumbs))
    for rec in report["recordings"]:
        body.append(f"<h2>Enregistrement {e(rec['id'])} — caméra {e(rec['camera'])}</h2>")
        auth = rec.get("authorisation") if isinstance(rec.get("authorisation"), dict) else {}
        body.append(_who_where(rec, commune_files, zone))
        body.append(f"<p>Arrêté préfectoral : {e(str(auth.get('arrete', 'aucun nommé')))}, communes "
                    f"{e(', '.join(map(str, auth.get('communes') or [])) or '-')}</p>")
        body.append("<h3>Déroulement</h3><table class=timeline>")
        body.extend(event_rows((_when(row.at, zone), row.text)
                               for row in rows(rec, lambda t: _when(t, zone), french=True)))
        body.append("</table><h3>Position</h3>")
        body.append('<div class="maps"><figure>' + track_svg(rec.get("gps_track") or [], commune_files)
                    + "<figcaption>trajet sur la limite de la commune</figcaption></figure>")
        if rec.get("gps_track"):
            body.append("<figure>" + track_svg(rec["gps_track"], commune_files, 300, zoom=True)
                        + f"<figcaption>le trajet seul ({len(rec['gps_track'])} points ; vert : départ, "
                        "sombre : arrivée)</figcaption></figure>")
        body.append("</div>")
        body.append("<h3>Segments d'origine</h3><table>")
        body.extend(f"<tr><td>{e(s['file'])}</td><td><code>{e(s['sha256'])}</code></td><td>{s['size']} octets</td>"
                    f"<td>{_state(s)}</td></tr>"
                    for s in rec["segments"])
        body.append("</table>")
    body.append("<h2>Vérifier ce rapport</h2><p>Le rapport JSON signé placé à côté de cette page fait foi. "
                "Pour vérifier qu'il a été signé par le coffre et que la vidéo est bien celle qu'il décrit : "
                f"<code>pieton vault check-report {e(Path(str(report['mp4']['name'])).stem)}.report.json "
                f"{e(str(report['mp4']['name']))} --vault-key {e(str(report['vault_key']))}</code> "
                "(la clé du coffre ci-dessus, comparée à celle que publie le service de police). Toute "
                "modification de la vidéo ou du rapport fait échouer la vérification.</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}th{text-align:left;padding-right:1em}"
             ".strip{display:flex;gap:6px;overflow-x:auto}.strip figure{margin:0;text-align:center;font-size:12px}"
             ".timeline td{padding:2px 10px;border-bottom:1px solid #ddd}.timeline td:first-child{white-space:nowrap}"
             ".maps{display:flex;gap:12px;align-items:flex-start}.maps figure{margin:0;font-size:12px}.warn{background:#fff3cd;padding:.5em}"
             "code{font-size:11px}.who th{min-width:9em}"
             # On paper every thumbnail and map shows: the strip wraps instead of scrolling.
             "@media print{body{margin:0;max-width:none}.strip,.maps{flex-wrap:wrap;overflow:visible}"
             ".strip figure,.maps figure,tr{break-inside:avoid}}")
    return (f"<!DOCTYPE html><html lang=fr><head><meta charset=utf-8><title>Rapport d'extraction "
            f"{e(report['extraction_id'])}</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
