"""A short patrol played on simulated hardware: the agent walks in Autun (inside the
commune) while their gestures start, mark and stop recordings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from recorder.cli import simulate
from recorder.scenario import verdict
from recorder.toml_writer import toml_document
from tests.conftest import write_config

WALK = {"at": 1, "do": "gps_route", "points": [[46.9535, 4.2990], [46.9510, 4.2985]], "speed_mps": 1.4}


def play_patrol(folder: Path, recipient: str, gestures: list[dict], duration_s: float, *, settings: dict,
                start: datetime | None = None, name: str = "Short patrol"):
    """The walk and ``gestures`` (scenario events) played into folder/device by a camera
    configured with ``settings`` (folder/cfg), recording for ``recipient``; ``start`` None
    dates the patrol when played. Returns the player and the configuration's path."""
    config = write_config(folder / "cfg", settings)
    head = {"name": name, "start": start, "duration_s": duration_s}
    scenario = folder / "patrol.toml"
    scenario.write_text(toml_document({"scenario": head, "event": [WALK, *gestures]}))
    player = simulate(scenario, folder / "device", config_path=config, recipients=[recipient])
    assert verdict(player) is None, player.failures
    return player, config
