"""Numbers that are not numbers: NaN, inf and absurd sizes in the configuration."""

import math

import pytest

from recorder.config import SCHEMA, load_config
from recorder.errors import ConfigError
from tests.conftest import write_config
from tools.cli import main


def test_every_number_in_the_schema_has_a_finite_range():
    for section, options in SCHEMA.items():
        for key, option in options.items():
            if option.kind in (int, float) and option.choices is None:
                assert option.minimum is not None and option.maximum is not None, (section, key)
                assert math.isfinite(option.minimum) and math.isfinite(option.maximum), (section, key)


@pytest.mark.parametrize("section, key, literal", [
    ("gps", "track_interval_s", "nan"),           # a short press read as a flagrant délit
    ("video", "keyframe_interval_s", "nan"),      # the camera crashed at every start
    ("video", "keyframe_interval_s", "inf"),
    ("gestures", "flagrant_delit_hold_s", "-nan"),
    ("prebuffer", "seconds", "+inf"),
    ("storage", "min_free_mb", "1_000_000_000_000"),   # every start refused
    ("storage", "low_space_mb", "9_223_372_036_854_775_807"),
])
def test_nan_inf_and_absurd_sizes_are_refused(tmp_path, capsys, section, key, literal):
    path = write_config(tmp_path)
    text = path.read_text().replace(f"\n{key} = ", f"\n{key} = {literal}\n#", 1)
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(f"[{section}] {key} = " in p and "from" in p for p in info.value.problems), info.value.problems
    assert main(["config", "check", str(path)]) == 2
    assert f"[{section}] {key}" in capsys.readouterr().err


def test_every_float_option_refuses_nan_and_inf():
    for options in SCHEMA.values():
        for option in options.values():
            if option.kind is float:
                assert not option.check(math.nan) and not option.check(math.inf)
                assert not option.check(-math.inf)


def test_min_free_must_not_exceed_the_low_space_warning(tmp_path):
    path = write_config(tmp_path, {"storage": {"min_free_mb": 600, "low_space_mb": 512}})
    with pytest.raises(ConfigError, match=r"\[storage\] min_free_mb = 600"):
        load_config(path)


@pytest.mark.parametrize("section, key, literal", [
    ("link", "card_dir", '"/media/card\\u0000x"'),        # NUL: the open at start would raise
    ("gps", "gpsd_host", '"localhost\\nforged line"'),    # a newline forges a log line
    ("device", "commune", '"' + "A" * 300 + '"'),
    ("notice", "text", '"' + "bla " * 300 + '"'),
    ("geofence", "communes", "[" + ", ".join(['"communes/autun.geojson"'] * 65) + "]"),
])
def test_text_settings_are_bounded_and_plain(tmp_path, capsys, section, key, literal):
    path = write_config(tmp_path)
    text = path.read_text()
    start = text.index(f"\n{key} = ", text.index(f"[{section}]")) + 1
    end = text.index("\n", start)
    path.write_text(text[:start] + f"{key} = {literal}" + text[end:])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert f"[{section}] {key} = " in problem and ("control characters" in problem or "at most" in problem)
