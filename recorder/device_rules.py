"""What a device configuration must hold, by law and by design.

A **device configuration** is one with any non-simulated driver, or any signed bundle.
It must drive the real feedback hardware (the red light, the speaker for the notice, the
haptic motor, the record button), name the persons who may read its recordings, the
technicians who may re-flash it, the vault whose receipts free its space, the prefect's
authorisation it serves under, and the commune boundaries. For a simulation
configuration the same gaps are notes: `pieton config check` prints them after OK.

Each problem names the setting, its value and the rule it breaks, with the article of the
code de la sécurité intérieure (CSI) where the rule is the law's.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from recorder.localtime import zone

SIMULATED = "simulated"
INSEE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")   # a commune's INSEE code (Corsica: 2A, 2B)
ARRETE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 /._-]{0,63}$")  # a prefect's arrêté reference
FEEDBACK = {
    "leds": "red light that shows a recording is running (CSI L241-2: the recording is signalled by a visual signal)",
    "speaker": "speaker that plays the notice (CSI L241-2: the people filmed are told they are recorded)",
    "haptic": "haptic motor that tells the agent a start was refused or the notice not played "
              "(CSI L241-2: the agent knows what the camera does)",
    "button": "record button (CSI L241-2: recording starts only on the agent's gesture)",
}
AUTHORISATION = "CSI L241-2, R241-8: the cameras serve under the prefect's authorisation"


def is_device_configuration(config: Any) -> bool:
    """Signed, or naming any real driver (the signer has no simulated backend)."""
    drivers = config.drivers.as_dict()
    return config.signed or any(backend != SIMULATED for kind, backend in drivers.items() if kind != "signer")


def authorisation_ended(config: Any, today: date) -> str | None:
    """Why the authorisation no longer covers ``today`` (the local date), or None. Not part
    of parsing: a camera whose authorisation ends keeps running and refuses starts; the
    technician's `config check` and `config sign` refuse it."""
    until = config.authorisation.until
    if until is None or until >= today:
        return None
    return (f"{config.source}: [authorisation] until = {until.isoformat()}: the authorisation ended; "
            f"every start would be refused ({AUTHORISATION})")


AUTHORISATION_ENDED = "hors service : arrêté préfectoral échu"


def authorisation_refusal(config: Any, epoch: float) -> str | None:
    """Why a start at ``epoch`` is refused because the authorisation ended on the local
    day (the configured zone), or None."""
    today = datetime.fromtimestamp(epoch, zone(config.device.timezone)).date()
    until = config.authorisation.until
    if until is None or until >= today:
        return None
    return f"{AUTHORISATION_ENDED} le {until:%d/%m/%Y} ({AUTHORISATION})"


def recording_authorisation(config: Any) -> dict | None:
    """The arrêté a recording is made under, as its signed ``opened`` line and its metadata
    state it (CSI R241-8); None when the configuration names none (simulation)."""
    auth = config.authorisation
    if not auth.arrete:
        return None
    return {"arrete": auth.arrete, "communes": list(auth.communes),
            "until": auth.until.isoformat() if auth.until is not None else None}


def device_problems(config: Any) -> list[str]:
    """What a device configuration lacks; for a simulation configuration, the notes."""
    src, keys, auth = config.source, config.keys, config.authorisation
    problems = []
    if is_device_configuration(config):
        for kind, what in FEEDBACK.items():
            if getattr(config.drivers, kind) == SIMULATED:
                problems.append(f"{src}: [drivers] {kind} = {SIMULATED!r}: a device configuration drives the real {what}")
    if not keys.recipients:
        problems.append(f"{src}: [keys] recipients = []: no chief recipient; name the age recipients of the "
                        "persons designated to read recordings (CSI R241-12: only they may see them)")
    if not keys.technicians:
        problems.append(f"{src}: [keys] technicians = []: no technician key; the camera could never take a new "
                        "signed configuration (only a trusted technician's signed bundle is applied)")
    if not keys.vault:
        problems.append(f"{src}: [keys] vault = '': no vault key; the camera could check no offload receipt and "
                        "would never free space (a recording is freed only once the vault signed for it)")
    if not auth.arrete:
        problems.append(f"{src}: [authorisation] arrete = '': no prefect's arrêté named ({AUTHORISATION})")
    if not auth.communes:
        problems.append(f"{src}: [authorisation] communes = []: no commune authorised, by INSEE code "
                        f"({AUTHORISATION})")
    if auth.until is None:
        problems.append(f"{src}: [authorisation] until is not set: the authorisation's end date ({AUTHORISATION})")
    if not config.geofence.communes:
        problems.append(f"{src}: [geofence] communes = []: no commune boundary; every start would be "
                        "allowed as 'position unknown' (CSI L241-2: recording on the commune's territory only)")
    return problems
