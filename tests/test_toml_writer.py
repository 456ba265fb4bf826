"""What recorder.toml_writer writes reads back with tomllib as the same value."""

from __future__ import annotations

import math
import tomllib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.toml_writer import toml_document, toml_value

SCALARS = (st.text() | st.integers(-2**63, 2**63 - 1) | st.booleans()
           | st.floats(allow_nan=False) | st.dates())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
TABLE = st.dictionaries(st.text(max_size=8), VALUES, max_size=4)
TABLES = st.dictionaries(st.text(min_size=1, max_size=8), TABLE | st.lists(TABLE, min_size=1, max_size=3), max_size=4)


def read_back(value):
    return tomllib.loads(f"v = {toml_value(value)}")["v"]


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_a_value_reads_back_the_same(value):
    assert read_back(value) == value


@settings(max_examples=200, deadline=None)
@given(TABLES)
def test_a_document_reads_back_the_same(tables):
    assert tomllib.loads(toml_document(tables)) == tables


@pytest.mark.parametrize("text", ['say "stop"', "C:\\pieton\\notice.wav", "\\u0041 is not A",
                                  "Mâcon — 71270 ✓ 📷", "line\nbreak\ttab\r\x00\x1f\x7f", "'", '"""', ""])
def test_strings_with_quotes_backslashes_controls_and_unicode(text):
    assert read_back(text) == text


def test_numbers_booleans_dates_and_nested_tables():
    value = {"fps": 25, "big": 10**18, "gain": -0.5, "tiny": 1e-300, "huge": 1.5e300, "on": True, "off": False,
             "until": date(2099, 12, 31), "communes": ["71014", "71270"], "empty": [], "table": {},
             "nested": {"a b": {"c.d": [1, {"e": "f"}]}}}
    assert read_back(value) == value
    assert read_back(math.inf) == math.inf and read_back(-math.inf) == -math.inf
    assert math.isnan(read_back(math.nan))


def test_a_key_left_unset_is_left_out_and_a_section_stays():
    assert tomllib.loads(toml_document({"gps": {"device": None, "rate": 1}, "empty": {}})) == \
        {"gps": {"rate": 1}, "empty": {}}


def test_what_toml_cannot_hold_is_refused():
    with pytest.raises(TypeError, match="NoneType"):
        toml_value([None])


def test_a_list_of_tables_is_written_as_blocks_a_scenario_reads():
    text = toml_document({"scenario": {"duration_s": 12}, "event": [{"at": 1, "do": "press"}, {"at": 6.5, "do": "hold"}]})
    assert "[[event]]" in text
    assert tomllib.loads(text) == {"scenario": {"duration_s": 12},
                                   "event": [{"at": 1, "do": "press"}, {"at": 6.5, "do": "hold"}]}
