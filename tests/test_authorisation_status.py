"""Past the arrêté's end the camera says so before anyone presses (CSI L241-2, R241-8): the
status names it ("hors service : arrêté préfectoral échu le JJ/MM/AAAA") and the error
pattern is felt at arming, or as soon as the local day passes the end while it runs."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from recorder.clock import SimulatedWallClock
from recorder.control import format_summary
from recorder.device_rules import AUTHORISATION_ENDED
from tests.test_red_light import EPOCH, Camera


def authorisation_fault(daemon):
    return daemon.status()["faults"].get("authorisation", "")


def test_an_ended_arrete_is_in_the_status_and_felt_at_arming(tmp_path, chief):
    camera = Camera(tmp_path, chief, {"authorisation": {"until": date(2026, 11, 17)}})
    try:
        daemon = camera.start()
        camera.at(1.0)
        fault = authorisation_fault(daemon)
        assert fault.startswith(f"{AUTHORISATION_ENDED} le 17/11/2026"), daemon.status()["faults"]
        assert f"{AUTHORISATION_ENDED} le 17/11/2026" in format_summary(daemon.status())
        assert camera.error_patterns(AUTHORISATION_ENDED) == [0.0]
        assert daemon.status()["state"] == "armed"
    finally:
        camera.close()


def test_its_last_day_is_in_service_and_the_day_after_is_not_even_while_running(tmp_path, chief):
    camera = Camera(tmp_path, chief, {"authorisation": {"until": date(2026, 11, 18)}})
    zone = ZoneInfo(camera.config.device.timezone)
    midnight = datetime(2026, 11, 19, tzinfo=zone).timestamp()
    assert datetime.fromtimestamp(EPOCH, zone).date() == date(2026, 11, 18)
    camera.daemon.wall = SimulatedWallClock(camera.loop, midnight - 20.0)   # 23:59:40, its last day
    try:
        daemon = camera.start()
        camera.at(10.0)
        assert authorisation_fault(daemon) == "" and camera.error_patterns(AUTHORISATION_ENDED) == []
        camera.at(20.0 + 5.0 + 1.0)   # past midnight, and one monitor tick
        assert authorisation_fault(daemon).startswith(f"{AUTHORISATION_ENDED} le 18/11/2026")
        felt = camera.error_patterns(AUTHORISATION_ENDED)
        assert len(felt) == 1 and 20.0 <= felt[0] <= 26.0
        camera.press(30.0, 0.1)
        camera.at(35.0)
        assert daemon.machine.current is None
        assert daemon.machine.refusals[-1][1].startswith(AUTHORISATION_ENDED)
        assert camera.error_patterns("start refused: " + AUTHORISATION_ENDED)[-1] >= 30.0
    finally:
        camera.close()
