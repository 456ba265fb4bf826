"""A recording's track drawn over the commune's boundary as SVG, with a scale, the north
and the coordinates of the map's corners: a map a chief (or a court) can read."""

from __future__ import annotations

import math
from html import escape

from recorder.inputs import InputError, expect_object, load_json_file

SIZE = 420
MIN_SPAN_M = 300.0      # a track standing still still gets a readable map around it
METRES_PER_DEGREE = 111_320.0
NICE = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000)


def boundaries(files: list[str]) -> list[tuple[str, list[list[tuple[float, float]]]]]:
    """(name, rings of (lon, lat)) of each commune file; an unreadable one is left out."""
    found = []
    for path in files:
        try:
            doc = expect_object(load_json_file(path, "geojson"), path)
        except (InputError, OSError):
            continue
        geometry = doc.get("geometry") if isinstance(doc.get("geometry"), dict) else {}
        coords = geometry.get("coordinates") or []
        polygons = coords if geometry.get("type") == "MultiPolygon" else [coords]
        rings = [[(float(p[0]), float(p[1])) for p in ring if isinstance(p, list) and len(p) >= 2]
                 for polygon in polygons if isinstance(polygon, list) for ring in polygon[:1] if isinstance(ring, list)]
        name = (doc.get("properties") or {}).get("name", "commune") if isinstance(doc.get("properties"), dict) else "commune"
        found.append((str(name), rings))
    return found


def track_svg(points: list[tuple[float, float]], communes: list[str]) -> str | None:
    """The SVG map of ``points`` (lat, lon), or None without a position."""
    if not points:
        return None
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    mid_lat = (min(lats) + max(lats)) / 2
    kx = METRES_PER_DEGREE * math.cos(math.radians(mid_lat))  # metres per degree of longitude here
    span = max((max(lats) - min(lats)) * METRES_PER_DEGREE, (max(lons) - min(lons)) * kx, MIN_SPAN_M) * 1.3
    centre_x, centre_y = (min(lons) + max(lons)) / 2 * kx, mid_lat * METRES_PER_DEGREE
    scale = SIZE / span  # pixels per metre

    def xy(lat, lon):
        return (round((lon * kx - centre_x) * scale + SIZE / 2, 1),
                round(SIZE / 2 - (lat * METRES_PER_DEGREE - centre_y) * scale, 1))

    def corner(x, y):
        lat = (centre_y + (SIZE / 2 - y) / scale) / METRES_PER_DEGREE
        lon = (centre_x + (x - SIZE / 2) / scale) / kx
        return f"{lat:.5f}, {lon:.5f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE + 40}" width="{SIZE}" '
             f'height="{SIZE + 40}" role="img" aria-labelledby="carte-titre">',
             '<title id="carte-titre">Trajet enregistré sur la commune</title>',
             f'<rect x="0" y="0" width="{SIZE}" height="{SIZE}" fill="#f4f4ef" stroke="#555"/>']
    for name, rings in boundaries(communes):
        for ring in rings:
            path = " ".join(f"{x},{y}" for x, y in (xy(lat, lon) for lon, lat in ring))
            parts.append(f'<polygon points="{path}" fill="#e3eedd" stroke="#2d6a2d" stroke-width="2">'
                         f'<title>{escape(name)}</title></polygon>')
    line = " ".join(f"{x},{y}" for x, y in (xy(lat, lon) for lat, lon in points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#b00000" stroke-width="3"/>')
    (sx, sy), (ex, ey) = xy(*points[0]), xy(*points[-1])
    parts.append(f'<circle cx="{sx}" cy="{sy}" r="6" fill="#0b2e59"><title>Début</title></circle>')
    parts.append(f'<rect x="{ex - 5}" y="{ey - 5}" width="10" height="10" fill="#b00000"><title>Fin</title></rect>')
    # North, up.
    parts.append(f'<path d="M {SIZE - 24} 12 L {SIZE - 32} 36 L {SIZE - 24} 30 L {SIZE - 16} 36 Z" fill="#111"/>'
                 f'<text x="{SIZE - 24}" y="50" font-size="13" text-anchor="middle" fill="#111">N</text>')
    metres = max((n for n in NICE if n * scale <= SIZE / 3), default=NICE[0])
    bar = metres * scale
    label = f"{metres // 1000} km" if metres >= 1000 else f"{metres} m"
    parts.append(f'<rect x="12" y="{SIZE - 22}" width="{bar:.1f}" height="6" fill="#111"/>'
                 f'<text x="12" y="{SIZE - 28}" font-size="13" fill="#111">{label}</text>')
    parts.append(f'<text x="4" y="{SIZE + 16}" font-size="12" fill="#111">Nord-ouest : {corner(0, 0)}</text>'
                 f'<text x="{SIZE - 4}" y="{SIZE + 34}" font-size="12" text-anchor="end" fill="#111">'
                 f'Sud-est : {corner(SIZE, SIZE)}</text>')
    parts.append("</svg>")
    return "".join(parts)
