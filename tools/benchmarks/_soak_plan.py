"""What `pieton bench soak` plays: the campaign's workspace (keys, vault, configurations)
and each shift's events, written as scenario files that `recorder.scenario` plays.

A shift is a list of scenario events over its hours of virtual time: the shift's signed
assignment, interventions started by each gesture (notice, request, flagrant délit) with
a bookmark and a stop, GPS walks, losses and jumps (one out of the commune, where a start
is refused), the battery running down (to critical on some shifts, during a recording), a
disk filling up to refusal on some shifts, a signed bundle flashed on others. A daemon
killed mid-shift restarts on the rest of it (`resume`), its simulated hardware put back
in the state the shift had reached, as a reboot finds the real hardware.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import random
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from drivers.signer import FileSigner
from recorder.assignment import sign_assignment
from recorder.bundle import load_technician_key, public_hex
from recorder.config import DEFAULT_CONFIG, SCHEMA
from recorder.evidence.age import generate_identity, load_identities
from recorder.localtime import format_local
from recorder.toml_writer import toml_document
from tools.vault.authorisation import authorise
from tools.vault.persons import designate
from tools.vault.vault import Vault, init_vault

CAMERA = "CAM-SIM-001"
CENTRE = (46.9510, 4.2985)                      # Autun, inside the commune
ROUTE = [(46.9535, 4.2990), (46.9510, 4.2985), (46.9490, 4.2995), (46.9478, 4.3010)]
OUTSIDE = (46.8600, 4.2800)                      # 8 km south: starts are refused there
HEARTBEAT_S = 60.0                              # a note this often: the daemon's progress and memory
RESTART_S = 2.0                                 # systemd/pieton-recorder.service RestartSec
# 320x240 at 5 fps, no pre-event ring and no sound: the soak's media is small enough to play
# 300 hours in an hour, and still really encoded, encrypted and sealed.
SMALL = {"video": {"width": 320, "height": 240, "fps": 5, "bitrate_kbps": 250, "segment_seconds": 4.0},
         "prebuffer": {"seconds": 0}, "audio": {"enabled": False}}
# What a signed bundle needs beyond a simulation (see DESIGN.md, "device configuration").
DEVICE_DRIVERS = {"leds": "gpiozero", "speaker": "sounddevice", "haptic": "gpiozero", "button": "gpiozero"}
AUTHORISATION = {"arrete": "2026-DSC-0412", "communes": ["71014"], "until": date(2099, 12, 31)}
STATE_EVENTS = ("light", "gps", "gps_route", "gps_lost", "gps_jump", "battery", "disk_fill")


def write_config(folder: Path, overrides: dict) -> Path:
    """A whole configuration (defaults changed by ``overrides[section][key]``) with the
    notice audio and commune boundaries it references, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {section: {key: overrides.get(section, {}).get(key, option.default) for key, option in options.items()}
              for section, options in SCHEMA.items()}
    shutil.copy(DEFAULT_CONFIG.with_name("notice-fr.wav"), folder / "notice-fr.wav")
    shutil.copytree(DEFAULT_CONFIG.parent / "communes", folder / "communes", dirs_exist_ok=True)
    path = folder / "pieton.toml"
    path.write_text(toml_document(tables))
    return path


@dataclass
class Workspace:
    """The campaign's folders and keys: the camera's state, the chief's identity, the
    technician's key, the vault and the police register."""

    root: Path
    recipient: str = ""
    technician: str = ""
    vault_key: str = ""

    @property
    def device(self) -> Path:
        return self.root / "device"

    @property
    def spool(self) -> Path:
        return self.device / "spool"

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def identity(self) -> Path:
        return self.root / "chief" / "chief.identity"

    @property
    def tech_key(self) -> Path:
        return self.root / "technician" / "tech.key"

    @property
    def config(self) -> Path:
        return self.root / "config" / "pieton.toml"

    @classmethod
    def create(cls, root: Path) -> Workspace:
        ws = cls(root)
        identity, ws.recipient = generate_identity()
        ws.identity.parent.mkdir(parents=True)
        ws.identity.write_text(f"# public key: {ws.recipient}\n{identity}\n")
        ws.identity.chmod(0o600)
        FileSigner.create(ws.tech_key)
        ws.technician = public_hex(load_technician_key(ws.tech_key))
        (root / "police").mkdir()
        communes = [str(p) for p in sorted((DEFAULT_CONFIG.parent / "communes").glob("*.geojson"))]
        init_vault(ws.vault, [ws.recipient], root / "police" / "register.jsonl", communes=communes)
        with Vault.open(ws.vault) as vault:
            ws.vault_key = vault.signer.public_key_hex
            # The chief designates himself first (R241-12): every vault command is then his.
            designate(vault, load_identities(ws.identity), name="Chef de la police municipale (soak)",
                      matricule="PM-SOAK", role="responsable", designated_by="Maire (soak)",
                      decision="arrêté du banc d'essai", recipient=ws.recipient)
            # The prefect's arrêté the soak's configuration names (L241-2): enrolment needs it.
            authorise(vault, AUTHORISATION["arrete"], format_local(vault.now(), vault.timezone)[:10], 1,
                      AUTHORISATION["communes"])
        write_config(ws.config.parent, ws.overrides())
        return ws

    def overrides(self, *, device: bool = False, **changes: dict) -> dict:
        """The soak's configuration; ``device``: a device configuration, as a bundle holds."""
        sections = {name: dict(values) for name, values in SMALL.items()}
        sections["keys"] = {"technicians": [self.technician], "vault": self.vault_key,
                            "recipients": [self.recipient] if device else []}
        if device:
            sections["drivers"] = dict(DEVICE_DRIVERS)
            sections["authorisation"] = dict(AUTHORISATION)
        for name, values in changes.items():
            sections.setdefault(name, {}).update(values)
        return sections

    def bundle(self, version: int, sign) -> Path:
        """A signed bundle of version ``version`` (``sign`` is `pieton config sign`'s main)."""
        folder = self.root / "bundles" / f"v{version}"
        reminder = 60.0 if version % 2 else 120.0      # each version changes something the agent feels
        config = write_config(folder, self.overrides(device=True, gestures={"haptic_reminder_s": reminder}))
        out = folder.parent / f"v{version}.bundle"
        with contextlib.redirect_stdout(io.StringIO()):
            code = sign(["config", "sign", str(config), "--key", str(self.tech_key), "--version", str(version),
                         "--device", CAMERA, "--out", str(out)])
        if code != 0:
            raise RuntimeError(f"pieton config sign failed for version {version}")
        return out

    def assignment(self, shift: int, start: float, hours: float) -> Path:
        path = self.root / "assignments" / f"shift-{shift:03d}.assignment"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(sign_assignment(load_technician_key(self.tech_key), f"PM-{410 + shift % 7:04d}", CAMERA,
                                         shift, until=start + hours * 3600 + 3600, issued=start - 600))
        return path


@dataclass
class Shift:
    number: int
    start: float                  # UTC epoch of t = 0
    duration: float               # seconds of virtual time
    events: list[dict] = field(default_factory=list)   # {"at": t, "do": ..., fields}
    flash: int | None = None      # the bundle version flashed in this shift, if any


def shift_start(number: int, first: dt.datetime) -> float:
    """Four days on, two off (a municipal police rota), each shift from 06:00 UTC; the
    campaign spans more than a month, so purges erase what passed its retention."""
    day = (number - 1) // 4 * 6 + (number - 1) % 4
    return (first + dt.timedelta(days=day)).timestamp()


def plan_shift(number: int, hours: float, rng: random.Random, first: dt.datetime) -> Shift:
    duration = hours * 3600.0
    shift = Shift(number, shift_start(number, first), duration)
    ev = shift.events

    def add(at: float, do: str, **fields) -> None:
        ev.append({"at": round(min(max(at, 0.0), duration), 2), "do": do, **fields})

    add(0.2, "light", lux=300)
    add(0.3, "battery", percent=100)
    add(0.4, "disk_fill", free_mb=20000)
    add(0.5, "gps_route", points=[list(p) for p in ROUTE], speed_mps=1.4)
    add(1.0, "assign", assignment="")      # the shift's assignment file, filled in by the campaign
    # Interventions: one per slot, never overlapping; the gestures take turns.
    slots = max(3, round(hours * 1.5))
    slot = duration / slots
    gestures = ("notice", "request", "flagrant")
    for i in range(slots):
        begin = i * slot + rng.uniform(0.1, 0.4) * slot
        length = min(rng.uniform(25.0, 110.0), slot * 0.4)
        gesture = gestures[(number + i) % 3]
        if gesture == "notice":
            add(begin, "press")
        elif gesture == "request":
            add(begin, "double_press")
        else:
            add(begin, "hold", seconds=2.0)
        add(begin + length / 2, "press")               # a bookmark
        add(begin + length, "hold", seconds=3.5)       # stop
    # GPS: a loss and a jump inside the commune every shift; out of the commune (a refused
    # start) on every third.
    lost = rng.uniform(0.15, 0.6) * duration
    add(lost, "gps_lost")
    add(lost + rng.uniform(60, 600), "gps_regained")
    add(rng.uniform(0.05, 0.95) * duration, "gps_jump", lat=ROUTE[-1][0], lon=ROUTE[-1][1])
    if number % 3 == 0:
        away = (slots - 1) * slot + 0.05 * slot
        add(away, "gps_jump", lat=OUTSIDE[0], lon=OUTSIDE[1])
        add(away + 20, "press")                        # refused: outside the commune
        add(away + 0.08 * slot, "gps_jump", lat=CENTRE[0], lon=CENTRE[1])
    # Battery: down through the shift to low; to critical on every fifth, during its last recording.
    for k in range(1, 10):
        add(duration * k / 10, "battery", percent=round(100 - 8.5 * k, 1))
    if number % 5 == 0:
        last_begin = (slots - 1) * slot + 0.4 * slot
        add(last_begin + 5, "battery", percent=4)
    # A filling disk on every third shift (from the second): low, then full (a start refused).
    if number % 3 == 2:
        for k, free in enumerate((1500, 600, 400, 40), 1):
            add(duration * (0.1 + 0.2 * k) - slot * 0.5, "disk_fill", free_mb=free)
        add(duration * 0.9 - slot * 0.5 + 30, "press")    # refused: storage full
        add(duration * 0.95, "disk_fill", free_mb=20000)
    # A signed bundle on every fourth shift, often during a recording (applied after it).
    if number % 4 == 1:
        shift.flash = number // 4 + 1
        add(rng.uniform(0.2, 0.8) * duration, "flash", bundle="")
    t = HEARTBEAT_S
    while t < duration:
        add(t, "note", text="heartbeat")
        t += HEARTBEAT_S
    ev.sort(key=lambda e: e["at"])
    return shift


def resume(shift: Shift, reached: float) -> tuple[float, list[dict]]:
    """After a kill at virtual time ``reached`` or a little later (the daemon reports at
    least every HEARTBEAT_S): the restart's offset into the shift and its events, the
    hardware put back first in the state the shift had reached."""
    offset = float(min(math.ceil(reached + HEARTBEAT_S + RESTART_S), shift.duration))
    state: dict[str, dict] = {}
    for event in shift.events:
        if event["at"] > offset:
            break
        kind = "gps" if event["do"].startswith("gps") else event["do"]
        if event["do"] in STATE_EVENTS or event["do"] == "gps_regained":
            state[kind] = event
    first = []
    for i, event in enumerate(state.values()):
        if event["do"] == "gps_regained":
            first.append({"at": 0.1, "do": "gps", "lat": CENTRE[0], "lon": CENTRE[1]})
        elif event["do"] == "gps_lost":
            first += [{"at": 0.1, "do": "gps", "lat": CENTRE[0], "lon": CENTRE[1]}, {**event, "at": 0.15}]
        else:
            first.append({**event, "at": round(0.1 + 0.01 * i, 2)})
    # What the technician sent while the camera was down is sent again once it is back.
    missed = [{**e, "at": 0.5} for e in shift.events if reached < e["at"] <= offset and e["do"] in ("assign", "flash")]
    rest = [{**e, "at": round(e["at"] - offset, 2)} for e in shift.events if e["at"] > offset]
    return offset, first + missed + rest


def scenario_toml(name: str, start: float, duration: float, events: list[dict]) -> str:
    when = dt.datetime.fromtimestamp(start, dt.UTC).replace(microsecond=0)
    return toml_document({"scenario": {"name": name, "start": when, "duration_s": max(duration, 1.0)},
                          "event": events})
