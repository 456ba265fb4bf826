"""Crashes `pieton bench fuzz` found, each kept as a case: a clear error, never another exception."""

from pathlib import Path

import pytest

from drivers.gps import GpsdGps
from recorder.config import parse_config
from recorder.errors import ConfigError


@pytest.mark.parametrize("text, says", [
    (b"[gps]\ntrack_interval_s = " + b"9" * 400 + b"\n", "must be a number from"),   # was OverflowError
    (b"[device]\nx = " + b"1" * 5000 + b"\n", "more digits than any setting allows"),  # was ValueError
    (b'battery = "x"\n', "[battery] must be a table"),                                # was KeyError
    (b"gpio = 3\n", "[gpio] must be a table"),
])
def test_configuration_fuzz_findings(text, says):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.toml", Path("."))
    assert says in str(caught.value)


def test_gpsd_answer_nested_too_deep_is_a_broken_connection():
    with pytest.raises(ConnectionError, match="nested too deep"):
        GpsdGps.__new__(GpsdGps)._fix_from_answer("[" * 100000 + "\n")    # was RecursionError
