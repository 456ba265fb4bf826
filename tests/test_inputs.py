"""Data from outside: bounded reads and strict JSON give an InputError, never a crash."""

import pytest

from drivers.errors import DriverError, PietonError
from recorder.errors import ConfigError, VaultError
from recorder.inputs import InputError, loads_strict, read_bounded


def test_every_error_has_one_root():
    for error in (DriverError, ConfigError, VaultError, InputError):
        assert issubclass(error, PietonError)


def test_endless_file_is_refused_by_size():
    with pytest.raises(InputError, match="larger than the 64 KiB allowed for a identity"):
        read_bounded("/dev/zero", "identity")


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_bounded(tmp_path / "nope", "config")
    with pytest.raises(InputError, match="is a folder"):
        read_bounded(tmp_path, "config")


@pytest.mark.parametrize("text, reason", [
    ('{"a": NaN}', "NaN"), ('[Infinity]', "Infinity"), ('[1e400]', "out of range"),
    ("[" + "1" * 5000 + "]", "digits"), ("[" * 10000 + "]" * 10000, "nested deeper"),
    ('{"a": 1, "a": 2}', "twice"), ('{"a": ', "not valid JSON"), (b"\xff", "not UTF-8"),
])
def test_strict_json_refuses(text, reason):
    with pytest.raises(InputError, match=reason) as caught:
        loads_strict(text, "receipt r.json")
    assert str(caught.value).startswith("receipt r.json: ")


def test_strict_json_keeps_valid_values():
    assert loads_strict('{"s": "[{", "n": -12, "f": 0.5, "l": [[1]]}', "x") == {
        "s": "[{", "n": -12, "f": 0.5, "l": [[1]]}
