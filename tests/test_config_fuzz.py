"""Hypothesis properties for the parsers of a configuration's outside data: the TOML
loader, the GeoJSON boundary loader and the notice WAV reader. Each input ends in success
or in the parser's own clear error (ConfigError, BadAudioFile), never another exception."""

from __future__ import annotations

import io
import json
import math
import random
import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import BadAudioFile
from recorder.config import DEFAULT_CONFIG, SCHEMA, ConfigError, parse_config
from recorder.device_rules import device_problems, is_device_configuration
from recorder.notice import load_wav
from recorder.position.geofence import Boundary, load_boundary
from recorder.toml_writer import toml_value
from tests.conftest import copy_config_files

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One folder for the whole module: the files a fuzzed configuration refers to.
FOLDER = Path(tempfile.mkdtemp(prefix="pieton-config-fuzz-"))
copy_config_files(FOLDER)


def teardown_module():
    shutil.rmtree(FOLDER, ignore_errors=True)


SCALARS = (st.booleans() | st.integers() | st.integers(-10**30, 10**30) | st.floats()
           | st.text(max_size=30) | st.sampled_from(["notice-fr.wav", "communes/autun.geojson", "simulated",
                                                      "gpiozero", "a" * 300, "/dev/zero", ""]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
SECTIONS = st.sampled_from([*SCHEMA, "oops"])
KEYS = {name: st.sampled_from([*options, "unknown"]) for name, options in SCHEMA.items()}


@st.composite
def configurations(draw) -> str:
    """A TOML text: a few sections of the schema with some keys set to any value, often
    one of the right type and around the allowed range."""
    lines = []
    for section in draw(st.lists(SECTIONS, unique=True, max_size=5)):
        lines.append(f"[{section}]")
        keys = KEYS.get(section, st.just("anything"))
        for key in draw(st.lists(keys, unique=True, max_size=4)):
            option = SCHEMA.get(section, {}).get(key)
            if option is not None and option.minimum is not None and draw(st.booleans()):
                span = option.maximum - option.minimum
                value = draw(st.floats(option.minimum - span, option.maximum + span)
                             | st.sampled_from([math.nan, math.inf, -math.inf, option.minimum, option.maximum]))
                if option.kind is int and math.isfinite(value):
                    value = int(value)
            else:
                value = draw(VALUES)
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _parses_or_refuses(text: bytes) -> None:
    try:
        config = parse_config(text, "fuzz.toml", FOLDER)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("fuzz.toml") for p in exc.problems), exc.problems
    else:   # what passes is whole: a device configuration lacks nothing, pins are distinct
        assert not (is_device_configuration(config) and device_problems(config))
        pins = [pin for pin in config.gpio.as_dict().values() if pin is not None]
        assert len(pins) == len(set(pins)) and all(2 <= pin <= 27 for pin in pins)


@FUZZ
@given(configurations())
def test_toml_loader_on_structured_configurations(text):
    _parses_or_refuses(text.encode())


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_toml_loader_on_any_bytes(data):
    _parses_or_refuses(data)


SHIPPED = DEFAULT_CONFIG.read_bytes()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SHIPPED) - 1), st.binary(min_size=1, max_size=4)), max_size=6))
def test_toml_loader_on_mutations_of_the_shipped_configuration(edits):
    data = bytearray(SHIPPED)
    for position, replacement in edits:
        data[position:position + len(replacement)] = replacement
    _parses_or_refuses(bytes(data))


NUMBERS = (st.integers() | st.floats() | st.integers(-10**60, 10**60)
           | st.floats(-200, 200, allow_nan=False))
JSONISH = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
                           st.sampled_from(["type", "features", "properties", "geometry", "coordinates",
                                            "name", "approximate", "x"]), inner, max_size=4),
                       max_leaves=30)
RING = st.lists(st.tuples(st.floats(-200, 200), st.floats(-100, 100)).map(list), min_size=0, max_size=6)
GEOMETRY = st.fixed_dictionaries({
    "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", 5]),
    "coordinates": st.lists(RING, max_size=2) | st.lists(st.lists(RING, max_size=2), max_size=2) | JSONISH})
FEATURE = st.fixed_dictionaries({"type": st.just("Feature"), "geometry": GEOMETRY | JSONISH,
                                 "properties": st.none() | JSONISH | st.fixed_dictionaries(
                                     {"name": JSONISH, "approximate": JSONISH})})
GEOJSON = (JSONISH | GEOMETRY | FEATURE
           | st.fixed_dictionaries({"type": st.just("FeatureCollection"),
                                    "features": st.lists(FEATURE, max_size=2) | JSONISH}))


def _loads_or_refuses(path: Path) -> None:
    try:
        boundary = load_boundary(path)
    except ConfigError as exc:
        assert exc.problems and str(path) in exc.problems[0], exc.problems
    else:
        assert isinstance(boundary, Boundary) and boundary.area.area > 0


def _json_text(value) -> str:
    return json.dumps(value)  # NaN and Infinity written as such: the loader must refuse them


@FUZZ
@given(GEOJSON)
def test_geojson_loader_on_structured_documents(document):
    path = FOLDER / "fuzz.geojson"
    path.write_text(_json_text(document))
    _loads_or_refuses(path)


AUTUN = (DEFAULT_CONFIG.parent / "communes" / "autun.geojson").read_bytes()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(AUTUN) - 1), st.binary(min_size=1, max_size=3)), max_size=5),
       st.integers(0, len(AUTUN)))
def test_geojson_loader_on_mutations_of_the_shipped_boundary(edits, length):
    data = bytearray(AUTUN[:length] if length % 3 == 0 else AUTUN)
    for position, replacement in edits:
        data[position:position + len(replacement)] = replacement
    path = FOLDER / "fuzz.geojson"
    path.write_bytes(bytes(data))
    _loads_or_refuses(path)


def _small_wav(rate: int = 16000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.sin(np.arange(800) / 5) * 8000).astype("<i2").tobytes() * channels)
    return out.getvalue()


WAV = _small_wav()


def _reads_or_refuses(data: bytes) -> None:
    path = FOLDER / "fuzz.wav"
    path.write_bytes(data)
    try:
        samples, rate = load_wav(path)
    except BadAudioFile as exc:
        assert str(path) in str(exc)
    else:
        assert samples.size > 0 and 8000 <= rate <= 192000 and np.all(np.abs(samples) <= 1.0)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 60), st.binary(min_size=1, max_size=4)), min_size=1, max_size=6),
       st.integers(0, len(WAV)))
def test_wav_reader_on_mutated_headers(edits, length):
    data = bytearray(WAV)
    for position, replacement in edits:
        data[position:position + len(replacement)] = replacement
    _reads_or_refuses(bytes(data[:length]) if length < 60 else bytes(data))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1),
       st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 0xFFFE, 0]))
def test_wav_reader_on_any_header_fields(rate, channels, bits, align, data_size, fmt):
    import struct
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, (rate * 2) & 0xFFFFFFFF, align, bits)
    frames = bytes(random.Random(rate).randbytes(64))
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
            + b"data" + struct.pack("<I", data_size) + frames)
    _reads_or_refuses(b"RIFF" + struct.pack("<I", len(body)) + body)
