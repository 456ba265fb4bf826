"""Past the prefect's arrêté's end date the camera refuses every start (CSI L241-2, R241-8):
journaled, the error pattern felt, the daemon still up; `config check` already says why
(tests/test_config_device.py). The day is the local day of the configured zone."""

from datetime import date

import pytest
from test_red_light import EPOCH, Camera

from recorder.device_rules import AUTHORISATION_ENDED


@pytest.mark.parametrize(("until", "refused"), [(date(2026, 11, 17), True), (date(2026, 11, 18), False)],
                         ids=["ended the day before", "its last day"])
def test_past_the_arretes_end_every_start_is_refused(tmp_path, chief, until, refused):
    assert date.fromtimestamp(EPOCH) == date(2026, 11, 18)
    camera = Camera(tmp_path, chief, {"authorisation": {"until": until}})
    try:
        daemon = camera.start()
        camera.press(1.0, 0.1)
        camera.at(5.0)
        if not refused:
            assert daemon.machine.current is not None
            return
        assert daemon.machine.current is None, "no recording past the arrêté's end"
        why = daemon.machine.refusals[-1][1]
        assert why.startswith(AUTHORISATION_ENDED) and "17/11/2026" in why and "R241-8" in why
        assert why in [line["data"]["why"] for line in camera.journal("recording refused")]
        assert any(c.why.startswith("error: start refused: " + AUTHORISATION_ENDED)
                   for c in daemon.machine.feedback.timeline)
        assert daemon.status()["state"] == "armed"
    finally:
        camera.close()
