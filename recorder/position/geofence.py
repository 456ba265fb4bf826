"""The commune boundary: where the camera may serve (CSI L241-2, the commune's territory).

Boundaries are GeoJSON polygons listed in the configuration's ``[geofence] communes``.
Distances are computed in a local metric projection (equirectangular around the commune,
well under 1 % error over a commune's extent), so the fix's uncertainty in metres can be
weighed against the distance to the boundary:

- ``inside``: inside a commune by more than the uncertainty;
- ``outside``: outside every commune by more than the uncertainty;
- ``uncertain``: within the uncertainty of a boundary;
- ``unknown``: no usable fix.

Policy ``refuse`` refuses a start only when the position is surely outside; ``flag``
records and marks it. A recording in progress is never cut: crossings are recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.validation import explain_validity

from recorder.device_rules import INSEE_CODE
from recorder.errors import ConfigError
from recorder.inputs import InputError, loads_strict, read_bounded

METRES_PER_DEGREE_LAT = 111_132.0
DEFAULT_UNCERTAINTY_M = 50.0     # a fix that gives neither eph nor HDOP
UERE_M = 19.0                    # gpsd's horizontal error per unit of HDOP (95 %)
TERRITORY = "CSI L241-2, R241-8: recording only on the territory the prefect authorised"


@dataclass(frozen=True)
class BoundaryCheck:
    status: str                  # inside, outside, uncertain, unknown
    distance_m: float | None     # to the nearest boundary (positive), None if unknown
    commune: str | None          # the commune inside / nearest
    uncertainty_m: float | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "distance_m": None if self.distance_m is None else round(self.distance_m, 1),
                "commune": self.commune,
                "uncertainty_m": None if self.uncertainty_m is None else round(self.uncertainty_m, 1)}


class Boundary:
    """One commune: its polygon in a local metric projection."""

    def __init__(self, name: str, geometry, source: str, *, approximate: bool = False,
                 insee: str | None = None):
        self.name = name
        self.source = source
        self.approximate = approximate
        self.insee = insee           # the commune's INSEE code, when the file names it
        lon0, lat0 = geometry.centroid.x, geometry.centroid.y
        self._lat0, self._lon0 = lat0, lon0
        self._kx = METRES_PER_DEGREE_LAT * math.cos(math.radians(lat0))
        self.area = shapely.transform(geometry, self._project_xy)

    def _project_xy(self, xy):
        # an (n, 2) array of lon, lat -> metres east, north of the centroid
        out = xy.copy()
        out[:, 0] = (xy[:, 0] - self._lon0) * self._kx
        out[:, 1] = (xy[:, 1] - self._lat0) * METRES_PER_DEGREE_LAT
        return out

    def project(self, lat: float, lon: float) -> Point:
        return Point((lon - self._lon0) * self._kx, (lat - self._lat0) * METRES_PER_DEGREE_LAT)

    def signed_distance(self, lat: float, lon: float) -> float:
        """Metres to the boundary: positive inside, negative outside."""
        p = self.project(lat, lon)
        if self.area.contains(p):
            return self.area.boundary.distance(p)     # holes count as boundary too
        return -self.area.distance(p)

    def __repr__(self) -> str:
        return f"<Boundary {self.name!r} from {self.source}{' (approximate)' if self.approximate else ''}>"


def load_boundary(path: str | Path) -> Boundary:
    """A commune boundary from a GeoJSON file (Feature, FeatureCollection or bare
    geometry) holding a Polygon or MultiPolygon; ConfigError naming the file otherwise.
    The file comes from outside: read with its size limit, parsed strictly (no NaN, no
    absurd numbers or nesting), every member's type checked before use."""
    path = Path(path)
    try:
        raw = read_bounded(path, "geojson", what=f"{path}: commune boundary")
    except InputError as exc:
        raise ConfigError([str(exc)]) from None
    try:
        data = loads_strict(raw, "JSON")
    except InputError as exc:
        raise ConfigError([f"{path}: commune boundary is not valid GeoJSON ({exc})"]) from None

    def refuse(why: str):
        raise ConfigError([f"{path}: commune boundary {why}"])

    props: Any = {}
    geometry = data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            refuse(f"'features' must be a list, found {type(features).__name__}")
        if len(features) != 1 or not isinstance(features[0], dict):
            refuse(f"must hold exactly one feature, found {len(features)}")
        data = features[0]
    if isinstance(data, dict) and data.get("type") == "Feature":
        props = data.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            refuse(f"'properties' must be an object or null, found {type(props).__name__}")
        geometry = data.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        refuse(f"must be a GeoJSON Polygon or MultiPolygon, got {str(kind)[:40]!r}")
    name = props.get("name") or path.stem
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        refuse(f"property 'name' must be a text of 1 to 100 characters, found {type(name).__name__}")
    approximate = props.get("approximate", False)
    if not isinstance(approximate, bool):
        refuse(f"property 'approximate' must be true or false, found {type(approximate).__name__}")
    insee = props.get("insee")
    if insee is not None and not (isinstance(insee, str) and INSEE_CODE.fullmatch(insee)):
        refuse(f"property 'insee' must be a commune's INSEE code such as \"71014\", found {str(insee)[:20]!r}")
    try:
        geom = shape(geometry)
        valid = not geom.is_empty and geom.is_valid
    except Exception as exc:   # shapely raises several types for malformed coordinates
        raise ConfigError([f"{path}: commune boundary is not valid GeoJSON ({str(exc)[:200]})"]) from None
    if not valid or not isinstance(geom, Polygon | MultiPolygon):
        why = "empty" if geom.is_empty else explain_validity(geom)
        refuse(f"polygon is not valid: {why}")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        refuse(f"coordinates must be longitude, latitude in degrees (GeoJSON order); bounds {geom.bounds}")
    return Boundary(name, geom, str(path), approximate=approximate, insee=insee)


def fix_uncertainty_m(fix) -> float:
    """Horizontal uncertainty of a fix, metres (95 %)."""
    if getattr(fix, "eph_m", None):
        return float(fix.eph_m)
    if getattr(fix, "hdop", None):
        return float(fix.hdop) * UERE_M
    return DEFAULT_UNCERTAINTY_M


class Geofence:
    def __init__(self, boundaries: list[Boundary], policy: str = "refuse", *, max_fix_age_s: float = 5.0):
        if policy not in ("refuse", "flag"):
            raise ValueError(f"geofence policy must be 'refuse' or 'flag', got {policy!r}")
        self.boundaries = boundaries
        self.policy = policy
        self.max_fix_age_s = max_fix_age_s

    @classmethod
    def from_config(cls, config) -> Geofence:
        boundaries = [load_boundary(config.resolve(p)) for p in config.geofence.communes]
        return cls(boundaries, config.geofence.policy, max_fix_age_s=config.gps.max_fix_age_s)

    def check(self, fix, now_mono: float | None = None) -> BoundaryCheck:
        """Where ``fix`` is with respect to the communes; a fix older than
        ``max_fix_age_s`` (when ``now_mono`` is given) counts as no fix."""
        if fix is None or not getattr(fix, "has_position", False) or not self.boundaries:
            return BoundaryCheck("unknown", None, None)
        if now_mono is not None and now_mono - fix.received_mono > self.max_fix_age_s:
            return BoundaryCheck("unknown", None, None)
        u = fix_uncertainty_m(fix)
        best_name, best = None, -math.inf
        for boundary in self.boundaries:
            d = boundary.signed_distance(fix.lat, fix.lon)
            if d > best:
                best_name, best = boundary.name, d
        if best > u:
            return BoundaryCheck("inside", best, best_name, u)
        if best < -u:
            return BoundaryCheck("outside", -best, best_name, u)
        return BoundaryCheck("uncertain", abs(best), best_name, u)

    def allows_start(self, fix, now_mono: float | None = None) -> tuple[bool, dict]:
        """(allowed, flags for the recording). Flags name the status and commune only;
        distances and positions go to the encrypted metadata, not here."""
        check = self.check(fix, now_mono)
        flags: dict[str, Any] = {"position": check.status}
        if check.commune is not None:
            flags["commune"] = check.commune
        if check.status == "outside":
            if self.policy == "refuse":
                return False, flags
            flags["outside_commune"] = True
        return True, flags

    def __repr__(self) -> str:
        names = ", ".join(b.name for b in self.boundaries)
        return f"<Geofence [{names}] policy={self.policy}>"


def check_boundary_file(config, relative: str, authorised: list[str] | None = None) -> list[str]:
    """For `pieton config check`: the listed boundary must load as a polygon; with the
    ``authorised`` INSEE codes (a device configuration's [authorisation] communes), it must
    name one of them."""
    where = f"{config.source}: [geofence] communes"
    try:
        boundary = load_boundary(config.resolve(relative))
    except ConfigError as exc:
        return [f"{where}: {p}" for p in exc.problems]
    if not authorised:
        return []
    if boundary.insee is None:
        return [f"{where} = {relative!r}: the boundary names no commune by its 'insee' property; a device "
                f"configuration's boundaries are those of the authorised communes ({TERRITORY})"]
    if boundary.insee not in authorised:
        return [f"{where} = {relative!r}: commune {boundary.insee} is not among [authorisation] communes "
                f"{authorised} ({TERRITORY})"]
    return []
