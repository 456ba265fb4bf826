"""A device configuration (any real driver, or a signed bundle) holds what the law needs:
real feedback drivers, the chief's recipients, technician keys, the vault key, the prefect's
authorisation and the boundaries; a simulation configuration may leave them out, with notes.
Every GPIO role has its own pin; the notice is speech loud enough to be heard."""

from __future__ import annotations

import wave
from datetime import date

import numpy as np
import pytest

from recorder.bundle import public_hex
from recorder.config import DEFAULT_CONFIG, load_config
from recorder.errors import ConfigError
from recorder.notice import load_wav, speech_level
from tests.conftest import device_config, write_config
from tests.tech_device import forge, make_config, make_device, sign, technician
from tools.cli import main

TECH = "7e" * 32
CHIEF = "age1" + "q" * 58


def check(path, capsys) -> tuple[int, str, str]:
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind", ["leds", "speaker", "haptic", "button"])
def test_a_simulated_feedback_driver_beside_real_hardware_is_refused(tmp_path, capsys, kind):
    overrides = device_config([TECH], [CHIEF], drivers={"camera": "opencv"})
    overrides["drivers"][kind] = "simulated"
    code, _, err = check(write_config(tmp_path, overrides), capsys)
    assert code == 2
    assert f"[drivers] {kind} = 'simulated': a device configuration drives the real" in err
    assert "CSI L241-2" in err and err.count("\n") == 1, err


def test_a_valid_device_configuration_passes(tmp_path, capsys):
    code, out, err = check(write_config(tmp_path, device_config([TECH], [CHIEF], drivers={"camera": "picamera2"})),
                           capsys)
    assert (code, out, err) == (0, "OK\n", "")


MISSING = {
    "recipients": ("keys", [], "[keys] recipients = []", "R241-12"),
    "technicians": ("keys", [], "[keys] technicians = []", "technician"),
    "vault": ("keys", "", "[keys] vault = ''", "receipt"),
    "arrete": ("authorisation", "", "[authorisation] arrete = ''", "R241-8"),
    "communes": ("authorisation", [], "[authorisation] communes = []", "R241-8"),
}


@pytest.mark.parametrize("key", MISSING)
def test_what_a_device_lacks_is_an_error_and_for_a_simulation_a_note(tmp_path, capsys, key):
    section, empty, words, rule = MISSING[key]
    device = device_config([TECH], [CHIEF])
    device[section][key] = empty
    code, _, err = check(write_config(tmp_path / "device", device), capsys)
    assert code == 2 and words in err and rule in err, err
    simulation = {"keys": {"recipients": [CHIEF], "technicians": [TECH], "vault": "5a" * 32},
                  "authorisation": device["authorisation"]}
    simulation[section] = {**simulation[section], key: empty}
    code, out, err = check(write_config(tmp_path / "sim", simulation), capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "OK" and len(lines) == 2 and lines[1].startswith("note: ") and words in lines[1]


def test_the_authorisation_end_date(tmp_path, capsys):
    device = device_config([TECH], [CHIEF])
    del device["authorisation"]["until"]
    code, _, err = check(write_config(tmp_path, device), capsys)
    assert code == 2 and "[authorisation] until is not set" in err
    path = write_config(tmp_path, device_config([TECH], [CHIEF]))
    for bad, words in (('"2031-01-01"', "a date written YYYY-MM-DD, unquoted"),
                       ("2031-01-01T10:00:00", "a date written YYYY-MM-DD, unquoted")):
        path.write_text(path.read_text().replace("until = 2099-12-31", f"until = {bad}"))
        code, _, err = check(path, capsys)
        assert code == 2 and "[authorisation] until = " in err and words in err
        path = write_config(tmp_path, device_config([TECH], [CHIEF]))


def test_communes_are_insee_codes(tmp_path, capsys):
    device = device_config([TECH], [CHIEF], authorisation={"communes": ["71014", "Autun"]})
    code, _, err = check(write_config(tmp_path, device), capsys)
    assert code == 2 and "[authorisation] communes = ['71014', 'Autun']" in err and "INSEE" in err
    assert load_config(write_config(tmp_path, device_config(
        [TECH], [CHIEF], authorisation={"communes": ["71014", "2A004"]}))).authorisation.communes == ["71014", "2A004"]


def test_a_device_needs_a_boundary(tmp_path, capsys):
    code, _, err = check(write_config(tmp_path, device_config([TECH], [CHIEF], geofence={"communes": []})), capsys)
    assert code == 2 and "[geofence] communes = []" in err and "L241-2" in err


def test_a_signed_bundle_is_a_device_configuration(tmp_path, chief):
    """`config sign` refuses a simulation configuration, and a camera refuses a bundle
    that a trusted technician signed with simulated lights anyway."""
    key_path, tech = technician(tmp_path)
    simulation = write_config(tmp_path / "sim", {"keys": {"technicians": [public_hex(tech)],
                                                          "recipients": [chief[1]]}})
    assert main(["config", "sign", str(simulation), "--key", str(key_path), "--version", "1",
                 "--device", "CAM-SIM-001", "--out", str(tmp_path / "x.pbn")]) == 2
    assert not (tmp_path / "x.pbn").exists()
    running = make_config(tmp_path / "running", [public_hex(tech)], chief[1])
    device = make_device(tmp_path / "device", running)
    good = sign(make_config(tmp_path / "v1", [public_hex(tech)], chief[1]), tech, 1)
    toml = read_toml_of(good).replace(b'leds = "gpiozero"', b'leds = "simulated"')
    answer = device.updater.offer(forge(tech, good, toml=toml))
    assert answer.code == "config-invalid" and "[drivers] leds = 'simulated'" in answer.message
    assert device.updater.running_version == 0
    assert device.updater.offer(good).code == "applied"


def read_toml_of(bundle: bytes) -> bytes:
    from recorder.bundle import read_bundle
    return read_bundle(bundle).files[0].data


# -- GPIO ----------------------------------------------------------------------------------

def test_every_gpio_role_has_its_own_pin(tmp_path, capsys):
    code, _, err = check(write_config(tmp_path, {"gpio": {"red_led": 22, "green_led": 22}}), capsys)
    assert code == 2 and "[gpio] green_led = 22: already the pin of red_led" in err
    code, _, err = check(write_config(tmp_path, {"gpio": {"haptic": 17}}), capsys)
    assert code == 2 and "[gpio] haptic = 17: already the pin of button" in err


@pytest.mark.parametrize("pin", [0, 1, 28, 40, -1])
def test_gpio_pins_outside_the_usable_range(tmp_path, capsys, pin):
    code, _, err = check(write_config(tmp_path, {"gpio": {"red_led": pin}}), capsys)
    assert code == 2 and f"[gpio] red_led = {pin}: must be an integer from 2 to 27" in err
    assert "each role its own pin" in err


def test_the_optional_red_light_sense_input(tmp_path, capsys):
    assert load_config(write_config(tmp_path, {})).gpio.red_led_sense is None
    assert load_config(write_config(tmp_path, {"gpio": {"red_led_sense": 5}})).gpio.red_led_sense == 5
    code, _, err = check(write_config(tmp_path, {"gpio": {"red_led_sense": 27}}), capsys)
    assert code == 2 and "[gpio] red_led_sense = 27: already the pin of red_led" in err


def test_shared_pins_would_leave_the_lights_out(tmp_path):
    """What the check prevents: gpiozero refuses a second device on a pin (once a crash of
    the daemon, now a leds driver that cannot open, so a camera that refuses every start)."""
    from drivers.errors import DriverUnavailable
    from drivers.gpio import reset_simulated_pins
    from drivers.leds import open_leds
    try:
        with pytest.raises(DriverUnavailable, match="green light on GPIO22: pin GPIO22 is already in use"):
            open_leds("simulated", 22, 22)
    finally:
        reset_simulated_pins()


# -- the notice ----------------------------------------------------------------------------

def _write_notice(path, samples: np.ndarray, rate: int = 22050) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


SHIPPED, RATE = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
T = np.arange(int(3 * RATE)) / RATE


def test_the_shipped_notice_passes():
    level = speech_level(SHIPPED, RATE)
    assert level.problem() is None and level.level_dbfs >= -30 and level.voiced_share >= 0.4
    assert main(["config", "check", str(DEFAULT_CONFIG)]) == 0


@pytest.mark.parametrize("name, samples, words", [
    ("silence", np.zeros(len(T)), "voiced during 0% of its length"),
    ("a 1 kHz tone", 0.5 * np.sin(2 * np.pi * 1000 * T), "voiced during 0% of its length"),
    ("white noise", np.random.default_rng(7).uniform(-0.3, 0.3, len(T)), "voiced during 0% of its length"),
    ("the notice at -40 dB", SHIPPED * 10 ** (-40 / 20), "dBFS RMS over its voiced frames; it must be at least -30"),
])
def test_a_notice_that_cannot_be_heard_is_refused(tmp_path, capsys, name, samples, words):
    path = write_config(tmp_path)
    _write_notice(tmp_path / "notice-fr.wav", samples)
    code, _, err = check(path, capsys)
    assert code == 2, name
    assert "[notice] audio = 'notice-fr.wav'" in err and words in err and "CSI L241-2" in err, err


def test_a_missing_or_unreadable_notice_is_an_error_at_check(tmp_path, capsys):
    path = write_config(tmp_path)
    (tmp_path / "notice-fr.wav").unlink()
    code, _, err = check(path, capsys)
    assert code == 2 and "[notice] audio = 'notice-fr.wav'" in err and "not found" in err and "L241-2" in err
    (tmp_path / "notice-fr.wav").write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    code, _, err = check(path, capsys)
    assert code == 2 and "not a PCM WAV" in err and "L241-2" in err


@pytest.mark.parametrize("hold, ok", [(0.5, False), (0.99, False), (1.0, True), (1.5, True)])
def test_the_flagrant_delit_hold_is_at_least_one_second(tmp_path, hold, ok):
    path = write_config(tmp_path, {"gestures": {"flagrant_delit_hold_s": hold}})
    if ok:
        assert load_config(path).gestures.flagrant_delit_hold_s == hold
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert f"[gestures] flagrant_delit_hold_s = {hold}: must be a number from 1.0 to 5.0" in problem
    assert "CSI L241-2" in problem


# -- territory -----------------------------------------------------------------------------

def test_a_device_boundary_is_one_of_the_authorised_communes(tmp_path, capsys):
    code, _, err = check(write_config(tmp_path, device_config([TECH], [CHIEF], authorisation={"communes": ["21231"]})),
                         capsys)
    assert code == 2 and "[geofence] communes = 'communes/autun.geojson': commune 71014 is not among" in err
    assert "R241-8" in err
    path = write_config(tmp_path, device_config([TECH], [CHIEF]))
    boundary = tmp_path / "communes" / "autun.geojson"
    boundary.write_text(boundary.read_text().replace('"insee": "71014",', ""))
    code, _, err = check(path, capsys)
    assert code == 2 and "names no commune by its 'insee' property" in err
    # a simulation configuration is not held to its (absent) authorisation
    code, out, _ = check(write_config(tmp_path / "sim", {}), capsys)
    assert code == 0


@pytest.mark.parametrize("insee", ['"7101"', "71014", '"71014\\n"'])
def test_a_boundary_insee_code_is_checked(tmp_path, capsys, insee):
    path = write_config(tmp_path)
    boundary = tmp_path / "communes" / "autun.geojson"
    boundary.write_text(boundary.read_text().replace('"insee": "71014"', f'"insee": {insee}'))
    code, _, err = check(path, capsys)
    assert code == 2 and "property 'insee' must be a commune's INSEE code" in err


def test_a_trailing_newline_does_not_pass_a_pattern(tmp_path, capsys):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('camera_id = "CAM-SIM-001"', 'camera_id = "CAM-SIM-001\\n"'))
    code, _, err = check(path, capsys)
    assert code == 2 and "[device] camera_id = 'CAM-SIM-001\\n'" in err


def test_an_ended_authorisation_is_refused_by_check_and_sign_but_not_at_parsing(tmp_path, capsys):
    """A camera whose authorisation ends keeps starting (it then refuses recordings); the
    technician's check and sign refuse it, naming the date and the article."""
    path = write_config(tmp_path, device_config([TECH], [CHIEF], authorisation={"until": date(2020, 1, 31)}))
    assert load_config(path).authorisation.until == date(2020, 1, 31)
    code, _, err = check(path, capsys)
    assert code == 2 and "[authorisation] until = 2020-01-31: the authorisation ended" in err and "R241-8" in err
    key_path, _ = technician(tmp_path)
    assert main(["config", "sign", str(path), "--key", str(key_path), "--version", "1",
                 "--device", "CAM-SIM-001", "--out", str(tmp_path / "x.pbn")]) == 2
    assert "the authorisation ended" in capsys.readouterr().err
    simulation = write_config(tmp_path / "sim", {"authorisation": {"until": date(2020, 1, 31)}})
    code, out, _ = check(simulation, capsys)
    assert code == 0 and "note: " in out and "the authorisation ended" in out


def test_a_gps_on_the_pi_uart_holds_its_pins(tmp_path, capsys):
    device = device_config([TECH], [CHIEF], gpio={"haptic": 14})
    device["drivers"]["gps"] = "nmea-serial"
    code, _, err = check(write_config(tmp_path, device), capsys)
    assert code == 2 and "[gpio] haptic = 14: already the pin of the GPS's UART (/dev/serial0 TXD)" in err
    assert err.count("\n") == 1, err
    device["gps"] = {"serial_port": "/dev/ttyUSB0"}    # a USB receiver leaves the UART pins free
    assert load_config(write_config(tmp_path, device)).gpio.haptic == 14
