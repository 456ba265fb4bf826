"""The extraction report as one self-contained HTML file: a strip of thumbnails along the
MP4, the timeline of events, and the GPS track drawn over the commune boundary as inline
SVG (no map tiles, nothing fetched)."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from html import escape
from pathlib import Path

from recorder.evidence.format import utc_iso
from recorder.inputs import InputError, load_json_file
from recorder.localtime import format_local
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
        return "<p>No position recorded (no GPS fix during the recording).</p>"
    lon0, lon1 = min(x for x, _ in every), max(x for x, _ in every)
    lat0, lat1 = min(y for _, y in every), max(y for _, y in every)
    kx = math.cos(math.radians((lat0 + lat1) / 2))  # metres per degree of longitude shrink
    w, h = max((lon1 - lon0) * kx, 1e-6), max(lat1 - lat0, 1e-6)
    scale = (size - 20) / max(w, h)

    def xy(lon, lat):
        return f"{10 + (lon - lon0) * kx * scale:.1f},{10 + (lat1 - lat) * scale:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
             f'viewBox="0 0 {size} {size}" role="img" aria-label="GPS track over the commune boundary">',
             f'<rect width="{size}" height="{size}" fill="#f7f7f2"/>']
    for name, rings in shapes:
        for ring in rings:
            parts.append(f'<polygon points="{" ".join(xy(*p) for p in ring)}" fill="#e3efe0" '
                         f'stroke="#4a7a45" stroke-width="1.5"><title>{escape(name)}</title></polygon>')
    if pts:
        parts.append(f'<polyline points="{" ".join(xy(*p) for p in pts)}" fill="none" stroke="#c0392b" '
                     'stroke-width="2.5" stroke-linejoin="round"/>')
        for point, fill, title in ((pts[0], "#27ae60", "start"), (pts[-1], "#2c3e50", "stop")):
            cx, cy = xy(*point).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{fill}"><title>{title}</title></circle>')
    else:
        parts.append(f'<text x="20" y="{size // 2}" font-size="14">no position recorded</text>')
    parts.append("</svg>")
    return "".join(parts)


def _when(value, zone: str | None = None) -> str:
    """A time as whoever receives the report reads it: local, with its zone (the vault's)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format_local(value, zone)
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
            out.append(f'<figure><img src="{uri}" alt="frame at {t:.1f} s"><figcaption>{t:.1f} s</figcaption></figure>')
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
    place = "no position recorded"
    if track:
        first, last = track[0], track[-1]
        place = (f"start {first['lat']:.5f}, {first['lon']:.5f} — stop {last['lat']:.5f}, {last['lon']:.5f} "
                 f"(latitude, longitude, WGS 84)")
    communes = ", ".join(name for name, _ in _boundaries(commune_files)) or "none drawn"
    rows = (("agent number", static.get("agent") or "not assigned"), ("camera", rec.get("camera")),
            ("recorded", f"{_when(rec.get('started_at'), zone)} to {_when(closed.get('ended_at'), zone)}"),
            ("place", place), ("commune", communes))
    return "<table class=who>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _state(segment: dict) -> str:
    if segment.get("complete") is None:
        return "not decrypted (outside the extracted range)"
    return "complete" if segment["complete"] else "truncated: " + escape(str(segment.get("reason")))


def render_html(report: dict, mp4_path: Path, commune_files: list[str], thumbs=None, zone: str | None = None) -> str:
    """The report as a page; times local in ``zone`` (the vault's), UTC stays in the JSON."""
    thumbs = thumbnails(mp4_path) if thumbs is None else thumbs
    e = escape
    body = [f"<h1>Extraction report {e(report['extraction_id'])}</h1>",
            "<table>",
            f"<tr><th>created</th><td>{e(_when(report.get('created'), zone))}</td></tr>",
            *(f"<tr><th>{e(k)}</th><td>{e(str(report.get(k)))}</td></tr>"
              for k in ("purpose", "requester", "deliver_to")),
            f"<tr><th>MP4</th><td>{e(report['mp4']['name'])} — {report['mp4']['duration_s']} s — "
            f"SHA-256 <code>{e(report['mp4']['sha256'])}</code></td></tr>",
            f"<tr><th>audio</th><td>{e(report['mp4']['audio'])}</td></tr>",
            f"<tr><th>vault key</th><td><code>{e(report['vault_key'])}</code></td></tr></table>"]
    if report.get("anonymised"):
        body.append(f"<p class=warn>Anonymised for training: {e(json.dumps(report['anonymised']))}</p>")
    if report.get("truncated"):
        body.append(f"<p class=warn>{e(report['truncated'])}</p>")
    body.append("<h2>Along the recording</h2>")
    body.extend(strip(thumbs))
    for rec in report["recordings"]:
        body.append(f"<h2>Recording {e(rec['id'])} — camera {e(rec['camera'])}</h2>")
        auth = rec.get("authorisation") if isinstance(rec.get("authorisation"), dict) else {}
        body.append(_who_where(rec, commune_files, zone))
        body.append(f"<p>Prefect's arrêté: {e(str(auth.get('arrete', 'none named')))}, communes "
                    f"{e(', '.join(map(str, auth.get('communes') or [])) or '-')}</p>")
        body.append("<h3>Timeline</h3><table class=timeline>")
        body.extend(event_rows((_when(row.at, zone), row.text)
                               for row in rows(rec, lambda t: _when(t, zone))))
        body.append("</table><h3>Position</h3>")
        body.append('<div class="maps"><figure>' + track_svg(rec.get("gps_track") or [], commune_files)
                    + "<figcaption>track over the commune boundary</figcaption></figure>")
        if rec.get("gps_track"):
            body.append("<figure>" + track_svg(rec["gps_track"], commune_files, 300, zoom=True)
                        + f"<figcaption>the track itself ({len(rec['gps_track'])} points; green: start, "
                        "dark: stop)</figcaption></figure>")
        body.append("</div>")
        body.append("<h3>Source segments</h3><table>")
        body.extend(f"<tr><td>{e(s['file'])}</td><td><code>{e(s['sha256'])}</code></td><td>{s['size']} B</td>"
                    f"<td>{_state(s)}</td></tr>"
                    for s in rec["segments"])
        body.append("</table>")
    body.append("<h2>Checking this report</h2><p>The signed JSON report next to this page is authoritative. "
                "To check that it was signed by the vault and that the video is the one it describes: "
                f"<code>pieton vault check-report {e(Path(str(report['mp4']['name'])).stem)}.report.json "
                f"{e(str(report['mp4']['name']))} --vault-key {e(str(report['vault_key']))}</code> "
                "(the vault key above, compared with the one the police service publishes). Any change to the "
                "video or the report makes the check fail.</p>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}th{text-align:left;padding-right:1em}"
             ".strip{display:flex;gap:6px;overflow-x:auto}.strip figure{margin:0;text-align:center;font-size:12px}"
             ".timeline td{padding:2px 10px;border-bottom:1px solid #ddd}.timeline td:first-child{white-space:nowrap}"
             ".maps{display:flex;gap:12px;align-items:flex-start}.maps figure{margin:0;font-size:12px}.warn{background:#fff3cd;padding:.5em}"
             "code{font-size:11px}.who th{min-width:9em}"
             # On paper every thumbnail and map shows: the strip wraps instead of scrolling.
             "@media print{body{margin:0;max-width:none}.strip,.maps{flex-wrap:wrap;overflow:visible}"
             ".strip figure,.maps figure,tr{break-inside:avoid}}")
    return (f"<!DOCTYPE html><html lang=fr><head><meta charset=utf-8><title>Extraction "
            f"{e(report['extraction_id'])}</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
