"""Hostile configurations, boundaries and notices: `pieton config check` gives a clear error
(exit 2, naming the file, the setting and the problem), never a traceback or a hang."""

import json
import os
import struct
import wave

import pytest

from recorder.bundle import MAGIC
from tests.conftest import write_config
from tools.cli import main


def check(path, capsys) -> tuple[int, str]:
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_deeply_nested_toml(tmp_path, capsys):
    for nested in ("[" * 5000 + "]" * 5000, "{a = " * 3000 + "1" + "}" * 3000):
        path = tmp_path / "pieton.toml"
        path.write_text(f"[video]\nwidth = {nested}\n")
        code, text = check(path, capsys)
        assert code == 2 and str(path) in text and "nested too deep" in text


def test_moderately_nested_values_are_named(tmp_path, capsys):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("communes = [", "communes = [" + "[" * 200 + "]" * 200 + ", ", 1))
    code, text = check(path, capsys)
    assert code == 2 and "[geofence] communes = " in text and "a list of at most 64 str" in text


def _boundary_config(tmp_path, geojson: str):
    path = write_config(tmp_path)
    (tmp_path / "communes" / "autun.geojson").write_text(geojson)
    return path


POLYGON = {"type": "Polygon", "coordinates": [[[4.2, 46.9], [4.3, 46.9], [4.3, 47.0], [4.2, 46.9]]]}


@pytest.mark.parametrize("geojson, words", [
    ({"type": "FeatureCollection", "features": 5}, "'features' must be a list, found int"),
    ({"type": "FeatureCollection", "features": "abc"}, "'features' must be a list, found str"),
    ({"type": "FeatureCollection", "features": {"a": 1}}, "'features' must be a list, found dict"),
    ({"type": "Feature", "properties": [1, 2], "geometry": POLYGON}, "'properties' must be an object"),
    ({"type": "Feature", "properties": "Autun", "geometry": POLYGON}, "'properties' must be an object"),
    ({"type": "Feature", "properties": {"name": ["x"]}, "geometry": POLYGON}, "property 'name'"),
    ({"type": "Feature", "properties": {"approximate": "yes"}, "geometry": POLYGON}, "property 'approximate'"),
    ({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": 7}}, "not valid GeoJSON"),
])
def test_geojson_members_of_the_wrong_type(tmp_path, capsys, geojson, words):
    path = _boundary_config(tmp_path, json.dumps(geojson))
    code, text = check(path, capsys)
    assert code == 2 and "[geofence] communes" in text and "autun.geojson" in text and words in text


@pytest.mark.parametrize("where", ["coordinates", "properties"])
def test_geojson_with_a_5000_digit_number(tmp_path, capsys, where):
    huge = "9" * 5000
    if where == "coordinates":
        text = '{"type": "Polygon", "coordinates": [[[' + huge + ', 46.9], [4.3, 46.9], [4.3, 47.0], [4.2, 46.9]]]}'
    else:
        text = ('{"type": "Feature", "properties": {"name": "Autun", "insee": ' + huge + '}, "geometry": '
                + json.dumps(POLYGON) + "}")
    code, out = check(_boundary_config(tmp_path, text), capsys)
    assert code == 2 and "autun.geojson" in out and "digits" in out


def _wav_header(rate: int, channels: int = 1, width: int = 2, frames: bytes = b"\0\1" * 4000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * width) & 0xFFFFFFFF, channels * width, 8 * width)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("rate", [0, 1, 4_000_000_000])
def test_wav_with_an_impossible_frame_rate(tmp_path, capsys, rate):
    path = write_config(tmp_path)
    (tmp_path / "notice-fr.wav").write_bytes(_wav_header(rate))
    code, text = check(path, capsys)
    assert code == 2 and "[notice] audio = 'notice-fr.wav'" in text and f"frame rate {rate} Hz" in text


def test_truncated_and_garbled_wav_headers(tmp_path, capsys):
    path = write_config(tmp_path)
    good = _wav_header(22050)
    for data in (good[:30], good[:12] + b"fmt " + b"\xff" * 8, b"RIFF\xff\xff\xff\xffWAVEfmt \x02\0\0\0\1\0"):
        (tmp_path / "notice-fr.wav").write_bytes(data)
        code, text = check(path, capsys)
        assert code == 2 and "[notice] audio" in text and "not a PCM WAV" in text


def test_paths_over_255_bytes(tmp_path, capsys):
    code, text = check(write_config(tmp_path, {"notice": {"audio": "n" * 300 + ".wav"}}), capsys)
    assert code == 2 and "[notice] audio = " in text and "at most 255 characters" in text
    long = "é" * 150    # 150 characters, 300 bytes: too long a file name for Linux
    path = write_config(tmp_path, {"notice": {"audio": long + ".wav"}})
    code, text = check(path, capsys)
    assert code == 2 and "[notice] audio = " in text and "longer than 255 bytes" in text
    path = write_config(tmp_path, {"geofence": {"communes": [f"communes/{long}.geojson"]}})
    code, text = check(path, capsys)
    assert code == 2 and "[geofence] communes = " in text and "longer than 255 bytes" in text
    code, text = check(tmp_path / (long + ".toml"), capsys)
    assert code == 2 and "too long" in text


def test_a_nul_character_in_a_file_name(tmp_path, capsys):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('audio = "notice-fr.wav"', 'audio = "notice\\u0000.wav"'))
    code, text = check(path, capsys)
    assert code == 2 and "[notice] audio = 'notice\\x00.wav'" in text and "no control characters" in text


def _sparse(path, size, head=b""):
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)


ENDLESS = 4 * 1024 ** 3   # a 4 GiB sparse file: reading it whole would exhaust memory


def test_endless_configuration_and_bundle(tmp_path, capsys):
    _sparse(tmp_path / "pieton.toml", ENDLESS, b"[video]\n")
    code, text = check(tmp_path / "pieton.toml", capsys)
    assert code == 2 and "pieton.toml" in text and "larger than the 1 MiB allowed" in text
    _sparse(tmp_path / "big.pbn", ENDLESS, MAGIC)
    code, text = check(tmp_path / "big.pbn", capsys)
    assert code == 2 and "big.pbn" in text and "larger than the 64 MiB allowed" in text
    code, text = check("/dev/zero", capsys)
    assert code == 2 and "larger than" in text


def test_endless_boundary_and_notice(tmp_path, capsys):
    path = write_config(tmp_path)
    _sparse(tmp_path / "communes" / "autun.geojson", ENDLESS, b"{")
    code, text = check(path, capsys)
    assert code == 2 and "[geofence] communes" in text and "larger than the 16 MiB allowed" in text
    path = write_config(tmp_path)
    _sparse(tmp_path / "notice-fr.wav", ENDLESS, _wav_header(22050)[:44])
    code, text = check(path, capsys)
    assert code == 2 and "[notice] audio" in text and "larger than the 32 MiB allowed" in text


def test_a_device_file_in_place_of_a_boundary(tmp_path, capsys):
    path = write_config(tmp_path)
    os.remove(tmp_path / "communes" / "autun.geojson")
    os.symlink("/dev/zero", tmp_path / "communes" / "autun.geojson")
    code, text = check(path, capsys)
    assert code == 2 and "is not a regular file" in text


def test_the_shipped_notice_header_round_trips(tmp_path):
    # the helper above writes what the wave module reads: the tests exercise real headers
    (tmp_path / "x.wav").write_bytes(_wav_header(22050))
    with wave.open(str(tmp_path / "x.wav")) as wav:
        assert wav.getframerate() == 22050 and wav.getnframes() == 4000


def _bundle_with_header(header_text: bytes) -> bytes:
    import struct as _struct
    return MAGIC + _struct.pack(">I", len(header_text)) + header_text + b"\0" * 64 + b"\0"


@pytest.mark.parametrize("header", [
    b'{"format": 1, "version": ' + b"9" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"format": 1, "version": NaN}',
    b'{"format": 1, "format": 1}',
])
def test_a_bundle_header_that_is_not_sane_json(tmp_path, capsys, header):
    path = tmp_path / "x.pbn"
    path.write_bytes(_bundle_with_header(header))
    code, text = check(path, capsys)
    assert code == 1 and "structure: FAILED [bad-format] bundle header" in text and "Traceback" not in text


def test_a_signed_bundle_with_nan_is_refused_by_the_camera(tmp_path, chief):
    """keyframe_interval_s = nan in a flashed bundle crashed the camera at every start."""
    from recorder.bundle import public_hex
    from tests.tech_device import forge, make_config, make_device, sign, technician

    _, tech = technician(tmp_path)
    device = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], chief[1]))
    good = sign(make_config(tmp_path / "v1", [public_hex(tech)], chief[1]), tech, 1)
    toml = (tmp_path / "v1" / "pieton.toml").read_bytes().replace(b"keyframe_interval_s = 1.0",
                                                                    b"keyframe_interval_s = nan")
    answer = device.updater.offer(forge(tech, good, toml=toml))
    assert answer.code == "config-invalid" and "[video] keyframe_interval_s = nan" in answer.message
    assert device.updater.running_version == 0


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path, capsys):
    os.mkfifo(tmp_path / "pieton.toml")
    code, text = check(tmp_path / "pieton.toml", capsys)
    assert code == 2 and "a named pipe" in text
