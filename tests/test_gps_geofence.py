"""The commune boundary: inside, outside, near the edge, no fix, policies, bad files."""

from __future__ import annotations

import json

import pytest

from drivers.nmea import Fix
from recorder.config import load_config
from recorder.errors import ConfigError
from recorder.position.geofence import Geofence, load_boundary

# A 2 km square around (46.95 N, 4.30 E), easy to reason about in metres.
SQUARE = {"type": "Feature", "properties": {"name": "Carré", "approximate": True},
          "geometry": {"type": "Polygon", "coordinates": [[
              [4.2869, 46.9410], [4.3131, 46.9410], [4.3131, 46.9590], [4.2869, 46.9590], [4.2869, 46.9410]]]}}
M_PER_DEG_LAT = 111_132.0


def _fix(lat, lon, eph=10.0, mode=3, received=0.0):
    return Fix(None, lat if mode >= 2 else None, lon if mode >= 2 else None, None, mode, 8, eph / 19.0,
               eph, 0.0, 0.0, received)


@pytest.fixture
def square(tmp_path):
    path = tmp_path / "carre.geojson"
    path.write_text(json.dumps(SQUARE))
    return load_boundary(path)


def test_inside_outside_and_distances(square):
    fence = Geofence([square], "refuse")
    centre = fence.check(_fix(46.95, 4.30))
    assert centre.status == "inside" and centre.commune == "Carré"
    assert centre.distance_m == pytest.approx(0.009 * M_PER_DEG_LAT, rel=0.01)
    north = 46.9590 + 500 / M_PER_DEG_LAT          # 500 m north of the edge
    outside = fence.check(_fix(north, 4.30))
    assert outside.status == "outside" and outside.distance_m == pytest.approx(500, rel=0.01)


def test_refused_only_when_surely_outside(square):
    fence = Geofence([square], "refuse")
    allowed, flags = fence.allows_start(_fix(46.9590 + 500 / M_PER_DEG_LAT, 4.30, eph=20))
    assert not allowed and flags == {"position": "outside", "commune": "Carré"}
    allowed, flags = fence.allows_start(_fix(46.95, 4.30))
    assert allowed and flags["position"] == "inside"


def test_near_the_edge_within_uncertainty_is_allowed_and_flagged_uncertain(square):
    fence = Geofence([square], "refuse")
    just_out = 46.9590 + 30 / M_PER_DEG_LAT        # 30 m out, with 50 m uncertainty
    allowed, flags = fence.allows_start(_fix(just_out, 4.30, eph=50))
    assert allowed and flags["position"] == "uncertain"
    just_in = 46.9590 - 30 / M_PER_DEG_LAT
    assert fence.check(_fix(just_in, 4.30, eph=50)).status == "uncertain"
    # the same place with a sharp fix is surely outside
    assert fence.check(_fix(just_out, 4.30, eph=5)).status == "outside"


def test_no_fix_or_stale_fix_is_position_unknown_and_allowed(square):
    fence = Geofence([square], "refuse", max_fix_age_s=5)
    assert fence.allows_start(None) == (True, {"position": "unknown"})
    assert fence.allows_start(_fix(0, 0, mode=1)) == (True, {"position": "unknown"})
    far = _fix(48.85, 2.35, received=100.0)        # Paris, but 10 s old
    assert fence.allows_start(far, now_mono=110.0) == (True, {"position": "unknown"})
    assert fence.allows_start(far, now_mono=101.0)[0] is False


def test_policy_flag_records_and_marks_outside(square):
    fence = Geofence([square], "flag")
    allowed, flags = fence.allows_start(_fix(48.85, 2.35))
    assert allowed and flags["position"] == "outside" and flags["outside_commune"] is True


def test_autun_boundary_from_the_default_configuration():
    config = load_config()
    fence = Geofence.from_config(config)
    assert fence.policy == "refuse"
    assert fence.boundaries[0].name == "Autun" and fence.boundaries[0].approximate
    assert fence.check(_fix(46.9510, 4.2990)).status == "inside"       # town hall
    assert fence.check(_fix(47.3220, 5.0415)).status == "outside"      # Dijon
    assert fence.allows_start(_fix(46.7800, 4.8530))[0] is False       # Chalon-sur-Saône


@pytest.mark.parametrize("content, words", [
    ("not json at all", "not valid GeoJSON"),
    (json.dumps({"type": "Point", "coordinates": [4.3, 46.9]}), "Polygon or MultiPolygon"),
    (json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                 "coordinates": [[4.3, 46.9], [4.4, 47.0]]}}), "Polygon or MultiPolygon"),
    (json.dumps({"type": "Polygon", "coordinates": [[[4.3, 46.9], [4.4, 47.0], [4.3, 47.0], [4.4, 46.9],
                                                    [4.3, 46.9]]]}), "not valid"),
    (json.dumps({"type": "Polygon", "coordinates": [[[46.9, 404.3], [47.0, 404.4], [47.0, 404.3],
                                                    [46.9, 404.3]]]}), "longitude, latitude"),
])
def test_bad_boundary_files_fail_config_check_naming_the_file(tmp_path, content, words):
    bad = tmp_path / "communes" / "autun.geojson"
    bad.parent.mkdir()
    bad.write_text(content)
    source = load_config().source
    text = open(source, encoding="utf-8").read()
    (tmp_path / "pieton.toml").write_text(text)
    (tmp_path / "notice-fr.wav").write_bytes(open(load_config().resolve("notice-fr.wav"), "rb").read())
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "pieton.toml")
    message = "\n".join(caught.value.problems)
    assert str(bad) in message and words in message


def test_config_check_command_names_the_bad_boundary(tmp_path, capsys):
    from tools.cli import main
    (tmp_path / "communes").mkdir()
    (tmp_path / "communes" / "autun.geojson").write_text(json.dumps({"type": "Point", "coordinates": [4, 46]}))
    (tmp_path / "pieton.toml").write_text(open(load_config().source, encoding="utf-8").read())
    (tmp_path / "notice-fr.wav").write_bytes(open(load_config().resolve("notice-fr.wav"), "rb").read())
    assert main(["config", "check", str(tmp_path / "pieton.toml")]) == 2
    assert "autun.geojson" in capsys.readouterr().err
