"""The device configuration: one TOML file, one section per concern.

The loader is strict, in the manner of Klipper's config: every option is declared with
its type and bounds, unknown sections and keys are errors, and every error names the
file, the section, the key, the offending value and what is allowed. All errors are
collected before failing, so a technician sees every mistake at once.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from recorder.device_rules import ARRETE_REF, INSEE_CODE, SIMULATED, device_problems, is_device_configuration
from recorder.errors import ConfigError
from recorder.evidence.format import CAMERA_ID, CAMERA_ID_HELP
from recorder.inputs import InputError, check_name_length, read_bounded
from recorder.localtime import DEFAULT_ZONE, TimeError, zone

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "pieton.toml"

_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
_ED25519_HEX = re.compile(r"^[0-9a-f]{64}$")

# The BCM pins a role may use: 0 and 1 hold the HAT's EEPROM bus, 28 and up are not on
# the header.
GPIO_PINS = (2, 27)
GPIO_RULE = "BCM pins 2 to 27, each role its own pin"
UART_PORTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")   # the header's UART: BCM 14 and 15

# Text settings are names, paths and one sentence: bounded, and without control characters
# (a NUL in a path stops the program that opens it, a newline forges a log line).
MAX_TEXT = 255
MAX_ITEMS = 64
_PLAIN_TEXT = re.compile(r"[^\x00-\x1f\x7f]*")


def _plain(value: str, max_length: int) -> bool:
    return len(value) <= max_length and _PLAIN_TEXT.fullmatch(value) is not None


@dataclass(frozen=True)
class Option:
    """One declared option: its type, default and what values are allowed."""

    kind: type | tuple[type, ...]
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_help: str = ""
    item_kind: type | None = None  # for lists
    rule: str = ""                 # the rule a refused value breaks, named in the error
    max_length: int = MAX_TEXT     # for text, and each text item of a list

    def __post_init__(self):
        # Every number has a finite range: an unbounded one lets a huge value through
        # (a min_free_mb that refuses every start), and the checks below refuse NaN.
        if self.kind in (int, float) and self.choices is None and not (
                self.minimum is not None and self.maximum is not None
                and math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise TypeError("a numeric option needs a finite minimum and maximum")

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = f"at most {self.max_length} characters, no control characters"
        if self.kind is list:
            what = f"a list of at most {MAX_ITEMS} {self.item_kind.__name__}" if self.item_kind else "a list"
            return what + f" ({self.pattern_help or text})"
        name = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                date: "a date written YYYY-MM-DD, unquoted"}.get(
            self.kind if isinstance(self.kind, type) else float, "a value")
        if self.minimum is not None and self.maximum is not None:
            return f"{name} from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"{name} of at least {self.minimum}"
        if self.pattern_help:
            return f"{name} ({self.pattern_help})"
        return f"{name} ({text})" if self.kind is str else name

    def check(self, value: Any) -> bool:
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            # TOML has nan and inf; NaN compares false with every bound. (An int is exact and
            # compares with the bounds below; math.isfinite would overflow on a huge one.)
            if isinstance(value, float) and not math.isfinite(value):
                return False
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return False
        elif self.kind is date:
            if not isinstance(value, date) or isinstance(value, datetime):
                return False
        elif not isinstance(value, self.kind):
            return False
        if self.choices is not None and value not in self.choices:
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        if self.maximum is not None and value > self.maximum:
            return False
        if self.kind is list:
            if len(value) > MAX_ITEMS:
                return False
            for item in value:
                if self.item_kind is not None and not isinstance(item, self.item_kind):
                    return False
                if isinstance(item, str) and not _plain(item, self.max_length):
                    return False
                if self.pattern is not None and not self.pattern.fullmatch(str(item)):
                    return False
        else:
            if self.kind is str and not _plain(value, self.max_length):
                return False
            if self.pattern is not None and not self.pattern.fullmatch(value):
                return False
        return True


def _int(default, lo=None, hi=None, rule=""):
    return Option(int, default, lo, hi, rule=rule)


def _float(default, lo=None, hi=None, rule=""):
    return Option(float, default, lo, hi, rule=rule)


def _choice(default, *choices):
    return Option(str, default, choices=choices)


def _str(default, pattern=None, help="", max_length=MAX_TEXT):
    return Option(str, default, pattern=re.compile(pattern) if pattern else None, pattern_help=help,
                  max_length=max_length)


def _bool(default):
    return Option(bool, default)


def _list(default, item=str, pattern=None, help=""):
    return Option(list, default, item_kind=item, pattern=pattern, pattern_help=help)


# Backends per kind of hardware; the modules in drivers/ map these names to classes.
DRIVER_BACKENDS: dict[str, tuple[str, ...]] = {
    "camera": (SIMULATED, "picamera2", "opencv"),
    "microphone": (SIMULATED, "sounddevice"),
    "speaker": (SIMULATED, "sounddevice"),
    "gps": (SIMULATED, "gpsd", "nmea-serial"),
    "button": (SIMULATED, "gpiozero"),
    "leds": (SIMULATED, "gpiozero"),
    "haptic": (SIMULATED, "gpiozero"),
    "ir": (SIMULATED, "gpiozero"),
    "battery": (SIMULATED, "sysfs"),
    "signer": ("file",),
}

SCHEMA: dict[str, dict[str, Option]] = {
    "device": {
        "camera_id": Option(str, "CAM-SIM-001", pattern=CAMERA_ID, pattern_help=CAMERA_ID_HELP),  # one rule
        "fleet": _str("autun-pm", r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
                      "letters, digits, '-' and '_', at most 32"),
        "commune": _str("Autun"),
        # the burnt-in caption shows local time with its zone; metadata stays UTC
        "timezone": _str(DEFAULT_ZONE, r"^[A-Za-z][A-Za-z0-9_+-]{0,31}(/[A-Za-z0-9_+-]{1,32}){0,2}$",
                         "an IANA time zone name such as 'Europe/Paris'"),
    },
    "video": {
        "width": _int(1280, 320, 4056),
        "height": _int(720, 240, 3040),
        "fps": _int(30, 5, 60),
        "preset": _choice("ultrafast", "ultrafast", "superfast", "veryfast", "faster", "fast", "medium"),
        "bitrate_kbps": _int(4000, 250, 20000),
        "keyframe_interval_s": _float(1.0, 0.25, 10.0),
        "overlay": _bool(True),
        "segment_seconds": _float(2.0, 1.0, 10.0),
    },
    "audio": {
        "enabled": _bool(True),
        "sample_rate": Option(int, 48000, choices=(48000, 44100, 32000, 16000)),
        "bitrate_kbps": _int(64, 16, 256),
    },
    "prebuffer": {
        "seconds": _float(30.0, 0.0, 120.0),
        "audio": _bool(False),
    },
    "notice": {
        "audio": _str("notice-fr.wav"),
        "text": _str("Attention, cette intervention est enregistrée.", max_length=1000),
    },
    "gestures": {
        "debounce_ms": _float(20.0, 1.0, 200.0),
        "double_press_window_s": _float(0.6, 0.2, 2.0),
        "flagrant_delit_hold_s": _float(1.5, 1.0, 5.0, rule="CSI L241-2: the hold that skips the notice "
                                        "must be deliberate, never a clumsy press"),
        "stop_hold_s": _float(3.0, 1.0, 10.0),
        "haptic_reminder_s": _float(120.0, 10.0, 3600.0),
    },
    "nightmode": {
        "enabled": _bool(True),
        "enter_lux": _float(8.0, 0.0, 1000.0),
        "exit_lux": _float(20.0, 0.0, 1000.0),
        "min_dwell_s": _float(5.0, 0.0, 600.0),
    },
    "gps": {
        "track_interval_s": _float(1.0, 0.1, 60.0),
        "gpsd_host": _str("127.0.0.1"),
        "gpsd_port": _int(2947, 1, 65535),
        "serial_port": _str("/dev/serial0"),
        "serial_baud": Option(int, 9600, choices=(4800, 9600, 19200, 38400, 57600, 115200)),
        "max_fix_age_s": _float(5.0, 0.5, 120.0),
    },
    "geofence": {
        "communes": _list(["communes/autun.geojson"]),
        "policy": _choice("refuse", "refuse", "flag"),
    },
    "storage": {
        "sync_interval_s": _float(0.5, 0.05, 0.5),
        "low_space_mb": _int(512, 0, 65536),
        "min_free_mb": _int(64, 0, 16384),
        # un-offloaded recordings this old show in status and at arming, before the
        # retention erases them on the camera (R241-13)
        "offload_warning_days": _int(7, 1, 27),
    },
    "battery": {
        "low_percent": _float(15.0, 0.0, 100.0),
        "critical_percent": _float(5.0, 0.0, 100.0),
        "simulated_drain_per_hour": _float(10.0, 0.0, 1000.0),
    },
    "gpio": {  # BCM numbers; every role its own pin (checked below)
        "button": _int(17, *GPIO_PINS, rule=GPIO_RULE),
        "red_led": _int(27, *GPIO_PINS, rule=GPIO_RULE),
        "green_led": _int(22, *GPIO_PINS, rule=GPIO_RULE),
        "haptic": _int(23, *GPIO_PINS, rule=GPIO_RULE),
        "ir_cut": _int(24, *GPIO_PINS, rule=GPIO_RULE),
        "ir_illuminator": _int(25, *GPIO_PINS, rule=GPIO_RULE),
        "red_led_sense": _int(None, *GPIO_PINS, rule=GPIO_RULE),  # optional: reads the red light back
    },
    "drivers": {kind: _choice(backends[0], *backends) for kind, backends in DRIVER_BACKENDS.items()},
    "link": {  # the technician's way in: bundles and shift assignments (recorder/link/)
        "serial_port": _str("/dev/ttyGS0"),
        "serial_baud": Option(int, 115200, choices=(9600, 19200, 38400, 57600, 115200, 230400, 460800)),
        "card_dir": _str(""),
    },
    "keys": {
        "recipients": _list([], pattern=_AGE_RECIPIENT, help="age recipients, 'age1...'"),
        "technicians": _list([], pattern=_ED25519_HEX, help="Ed25519 public keys, 64 hex digits"),
        # keys that sign shift assignments only, never a bundle (R241-10); when any is
        # listed, the technicians' keys no longer sign assignments
        "assigners": _list([], pattern=_ED25519_HEX, help="Ed25519 public keys, 64 hex digits"),
        "vault": _str("", r"^([0-9a-f]{64})?$", "the vault's Ed25519 public key, 64 hex digits, or empty"),
    },
    "authorisation": {  # the prefect's arrêté the cameras serve under (CSI L241-2, R241-8)
        "arrete": _str("", f"^({ARRETE_REF.pattern[1:-1]})?$",
                       "the arrêté's reference: letters, digits, spaces, '/', '.', '_', '-', at most 64"),
        "communes": _list([], pattern=INSEE_CODE, help="INSEE codes of the communes, e.g. '71014'"),
        "until": Option(date, None),
    },
}


class Section:
    """A read-only view of one section; unknown attributes are programming errors."""

    def __init__(self, name: str, values: dict[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", MappingProxyType(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"configuration section [{self._name}] has no option {key!r}") from None

    def __setattr__(self, key, value):
        raise AttributeError("configuration is read-only")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"<Section [{self._name}] {dict(self._values)!r}>"


@dataclass(frozen=True)
class Config:
    """A checked configuration. ``digest`` is the SHA-256 of the bytes it was read from
    (or of the signed bundle), which every recording's manifest binds."""

    source: str
    base_dir: Path
    sections: dict[str, Section]
    digest: str
    signed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()   # what a simulation may leave out but a device may not
    notice_fault: tuple[str, ...] = ()  # the notice audio's problems, when loaded to start the daemon
    provisioned_fault: str = ""  # why the provisioned bundle was not run (recorder.provisioned)

    def __getattr__(self, name: str) -> Section:
        sections = object.__getattribute__(self, "sections")
        try:
            return sections[name]
        except KeyError:
            raise AttributeError(f"no configuration section [{name}]") from None

    def resolve(self, relative: str) -> Path:
        """A file referenced by the configuration, relative to the configuration's folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.base_dir / path


def with_camera_id(config: Config, camera_id: str) -> Config:
    """The configuration as this camera runs it: the camera id comes from provisioning, so
    one fleet-wide bundle serves every camera of the fleet."""
    device = Section("device", {**config.device.as_dict(), "camera_id": camera_id})
    return replace(config, sections={**config.sections, "device": device})


def on_simulated_hardware(config: Config) -> Config:
    """The configuration with every driver simulated: `pieton simulate` plays a device's
    signed bundle (the technician's, as flashed) on simulated hardware."""
    drivers = Section("drivers", {kind: name if kind == "signer" else "simulated"   # the key file stays
                                  for kind, name in config.drivers.as_dict().items()})
    return replace(config, sections={**config.sections, "drivers": drivers})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_values(data: dict[str, Any], source: str) -> tuple[dict[str, Section], list[str]]:
    """Check parsed TOML against the schema; return the sections and every problem."""
    problems: list[str] = []
    sections: dict[str, Section] = {}
    for name, value in data.items():
        if name not in SCHEMA:
            problems.append(f"{source}: unknown section [{name}]; allowed sections: {', '.join(SCHEMA)}")
        elif not isinstance(value, dict):
            problems.append(f"{source}: [{name}] must be a table, got {_describe(value)}")
    for name, options in SCHEMA.items():
        given = data.get(name, {})
        if not isinstance(given, dict):   # already a problem above; its defaults keep the checks whole
            given = {}
        values: dict[str, Any] = {}
        for key in given:
            if key not in options:
                problems.append(f"{source}: [{name}] unknown key {key!r}; allowed keys: {', '.join(options)}")
        for key, option in options.items():
            if key not in given:
                values[key] = option.default
                continue
            value = given[key]
            if not option.check(value):
                rule = f" ({option.rule})" if option.rule else ""
                problems.append(f"{source}: [{name}] {key} = {_describe(value)}: must be {option.allowed()}{rule}")
                values[key] = option.default
            else:
                values[key] = float(value) if option.kind is float else value
        sections[name] = Section(name, values)
    problems.extend(_cross_checks(sections, source))
    problems.extend(_shared_pins(sections["gpio"], sections["gps"], sections["drivers"], source))
    return sections, problems


def _shared_pins(gpio: Section, gps: Section, drivers: Section, source: str) -> list[str]:
    """Every GPIO role its own pin: a shared one would stop the daemon at start with
    GPIOPinInUse, or make the red light follow another role. A GPS on the Pi's own UART
    holds its two pins."""
    problems, owner = [], {}
    if drivers.gps == "nmea-serial" and gps.serial_port in UART_PORTS:
        owner = {14: f"the GPS's UART ({gps.serial_port} TXD)", 15: f"the GPS's UART ({gps.serial_port} RXD)"}
    for role, pin in gpio.as_dict().items():
        if pin is None:
            continue
        if pin in owner:
            problems.append(f"{source}: [gpio] {role} = {pin}: already the pin of {owner[pin]} ({GPIO_RULE})")
        else:
            owner[pin] = role
    return problems


def _cross_checks(sections: dict[str, Section], source: str) -> list[str]:
    problems = []
    try:
        zone(sections["device"].timezone)
    except TimeError as exc:
        problems.append(f"{source}: [device] timezone = {sections['device'].timezone!r}: {exc}")
    night = sections["nightmode"]
    if night.enter_lux >= night.exit_lux:
        problems.append(f"{source}: [nightmode] enter_lux = {night.enter_lux!r}: must be below "
                        f"exit_lux ({night.exit_lux!r}) so the switch has hysteresis")
    gestures = sections["gestures"]
    if gestures.stop_hold_s <= gestures.flagrant_delit_hold_s:
        problems.append(f"{source}: [gestures] stop_hold_s = {gestures.stop_hold_s!r}: must be longer "
                        f"than flagrant_delit_hold_s ({gestures.flagrant_delit_hold_s!r}) so a bump "
                        "cannot end a recording")
    storage = sections["storage"]
    if storage.min_free_mb > storage.low_space_mb:
        problems.append(f"{source}: [storage] min_free_mb = {storage.min_free_mb!r}: must not exceed "
                        f"low_space_mb ({storage.low_space_mb!r}) so the agent is warned before starts "
                        "are refused")
    keys = sections["keys"]
    for key in sorted(set(keys.assigners) & set(keys.technicians)):
        problems.append(f"{source}: [keys] assigners lists {key[:16]}..., also in [keys] technicians: an "
                        "assigner's key signs assignments only and must not be able to sign a bundle "
                        "(CSI R241-10)")
    battery = sections["battery"]
    if battery.critical_percent >= battery.low_percent:
        problems.append(f"{source}: [battery] critical_percent = {battery.critical_percent!r}: must be "
                        f"below low_percent ({battery.low_percent!r})")
    return problems


def _reference_problem(config: Config, where: str, relative: str) -> str | None:
    """Why a file the configuration names cannot be read, or None: checked before it is
    opened, so a name too long or with a NUL byte is an error, not a traceback."""
    path = config.resolve(relative)
    try:
        check_name_length(path, f"{config.source}: {where} = {_describe(relative)}")
        if not path.exists():
            return (f"{config.source}: {where} = {_describe(relative)}: file {path} not found (a configuration "
                    "needs the files it names beside it: `pieton config init DIR` copies the default "
                    "configuration with all of them)")
        if not path.is_file():
            return f"{config.source}: {where} = {_describe(relative)}: {path} is not a regular file"
    except InputError as exc:
        return str(exc)
    except OSError as exc:
        return f"{config.source}: {where} = {_describe(relative)}: cannot be read ({exc.strerror or exc})"
    return None


def _check_notice_file(config: Config) -> list[str]:
    """The notice audio exists and is speech that can be heard."""
    # Imported here: it needs numpy, and the schema must stay readable with the standard
    # library alone.
    from recorder.notice import LAW, check_notice_audio

    problem = _reference_problem(config, "[notice] audio", config.notice.audio)
    return [f"{problem} ({LAW})"] if problem else check_notice_audio(config)


def _check_referenced_files(config: Config) -> list[str]:
    """The commune boundaries exist and hold what they must."""
    from recorder.position.geofence import check_boundary_file  # shapely: see above

    authorised = list(config.authorisation.communes) if is_device_configuration(config) else None
    problems = []
    for commune in config.geofence.communes:
        problem = _reference_problem(config, "[geofence] communes", commune)
        problems.extend([problem] if problem else check_boundary_file(config, commune, authorised))
    return problems


# Checks of what a checked configuration refers to; `pieton config check`, the device's
# bundle acceptance and the daemon's start all run them through parse_config.
EXTRA_CHECKS: list = [_check_referenced_files]


def parse_config(text: bytes, source: str, base_dir: Path, *, signed: bool = False,
                 notice_fault_ok: bool = False) -> Config:
    """Parse and check configuration bytes; raise ConfigError listing every problem.

    With ``notice_fault_ok`` (the daemon's start) an unreadable or unfit notice audio is
    not an error but the configuration's ``notice_fault``: the daemon runs, refusing
    starts, so a new bundle can be flashed (CSI L241-2)."""
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: a number with more digits than any setting "
                           f"allows ({exc.args[0].split(':')[0] if exc.args else exc})"]) from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError([f"{source}: not valid TOML: arrays or tables nested too deep"]) from None
    except ValueError as exc:  # an integer past Python's 4300-digit conversion limit
        raise ConfigError([f"{source}: not valid TOML: a number with more digits than any setting "
                           f"allows ({exc.args[0].split(':')[0] if exc.args else exc})"]) from None
    sections, problems = check_values(data, source)
    config = Config(source=source, base_dir=base_dir, sections=sections,
                    digest=hashlib.sha256(text).hexdigest(), signed=signed, raw=data)
    notice_fault: tuple[str, ...] = ()
    if not problems:
        for check in EXTRA_CHECKS:
            problems.extend(check(config))
        if notice_fault_ok:
            notice_fault = tuple(_check_notice_file(config))
        else:
            problems.extend(_check_notice_file(config))
    device = device_problems(config)
    if is_device_configuration(config):
        problems.extend(device)
    if problems:
        raise ConfigError(problems)
    return replace(config, notes=tuple(device), notice_fault=notice_fault)


def load_config(path: str | Path | None = None, *, notice_fault_ok: bool = False) -> Config:
    """Load a plain TOML configuration file (the default one when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        text = read_bounded(path, "config", what=f"{path}: configuration")
    except InputError as exc:
        raise ConfigError([str(exc)]) from None
    return parse_config(text, str(path), path.resolve().parent, notice_fault_ok=notice_fault_ok)
