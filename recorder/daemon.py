"""The recorder daemon: one asyncio loop that owns the state machine.

Hardware callbacks arrive on gpiozero's or the drivers' own threads and are handed to
the loop thread-safely. Recovery of anything left open runs at every start. A driver
that fails to open leaves the daemon running with what works, and the fault shows in
the status and on the lights; a start is never refused for a missing GPS or speaker,
always for a red light that cannot be driven (recorder/visual_signal.py, CSI L241-2).

A start that fails on a flashed configuration falls back to the previous one (journaled);
when no configuration is left to fall back to, the daemon runs in maintenance: status and
serial link only, recording nothing, so a new bundle can still be flashed. Never a boot loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import recorder
from drivers.signer import CAMERA_ID_FILE, KEYS_DIR, FileSigner, open_signer
from recorder import notify, provisioned
from recorder.assignment import AssignmentKeeper
from recorder.clock import WallClock
from recorder.config import DEFAULT_CONFIG, with_camera_id
from recorder.config_update import ConfigUpdater, fall_back, load_device_config
from recorder.control import ControlServer, socket_path
from recorder.device_rules import authorisation_refusal
from recorder.errors import ConfigError, DriverError, PietonError
from recorder.evidence import expiry
from recorder.evidence.age import parse_recipient
from recorder.evidence.format import INBOX
from recorder.evidence.spool import Spool
from recorder.evidence.storage import Storage
from recorder.feedback import Feedback
from recorder.hardware import Hardware, open_hardware
from recorder.link.listener import device_listener, port_present
from recorder.notice import Notice
from recorder.selftest import SelfTest
from recorder.session import LiveSessions
from recorder.state import NOTICE_FAULT, Machine, State
from recorder.visual_signal import VisualSignal

log = logging.getLogger("pieton.daemon")

SPOOL_DIR = "spool"
AUTHORISATION_FAULT = "authorisation"   # the fault shown past the arrêté's end
MONITOR_INTERVAL_S = 5.0
RETENTION_INTERVAL_S = 60.0    # a retention pass reads every manifest: not at every monitor tick


@dataclass
class Options:
    state_dir: Path
    recipients: list[str]
    simulated: bool
    unsigned_config: bool = False      # a plain TOML with real drivers (development only)
    control_socket: bool = True
    notify: bool = True


def resolve_recipients(config, given: list[str] | None) -> list[str]:
    """The chief's recipients: from the command line, else from the configuration.
    With none the daemon refuses to start: no default may encrypt to a published key."""
    recipients = list(given or config.keys.recipients)
    if not recipients:
        raise ConfigError([f"{config.source}: [keys] recipients is empty and no --recipient was given: "
                           "the daemon cannot encrypt recordings to the chief, so it does not start"])
    for recipient in recipients:
        parse_recipient(recipient)
    return recipients


class Daemon:
    def __init__(self, config, options: Options, *, loop: asyncio.AbstractEventLoop,
                 wall_clock: WallClock | None = None, config_version: int = 0, previous: Daemon | None = None):
        self.config = config
        self.config_version = config_version
        self.updater = None
        self.assignment = None
        self.listener = None
        self.restart_requested = False
        self._previous = previous      # the daemon this one replaces after a configuration change
        self.options = options
        self.loop = loop
        self.wall = wall_clock or WallClock()
        self.state_dir = Path(options.state_dir)
        self.hardware: Hardware | None = None
        self.machine: Machine | None = None
        self.sessions: LiveSessions | None = None
        self.storage: Storage | None = None
        self.spool: Spool | None = None
        self.faults: dict[str, str] = {}
        self._stop_requested = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._control = None
        self._watchdog = None
        self.recovered: list = []
        self.warnings: set[str] = set()
        self._free_mb_override: float | None = None
        self.maintenance: str | None = None   # why only the status and the link run
        self.retention: expiry.Sweep | None = None   # the last pass of the camera's retention
        self._retention_pass: tuple[float, bool] | None = None   # (loop time, clock synchronised)
        self.erased_on_camera = 0
        self.selftest = SelfTest(self)   # the commissioning test state (pieton selftest)

    # -- start -------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.config.signed and not self.options.simulated and not self.options.unsigned_config:
            raise ConfigError([f"{self.config.source}: a plain TOML configuration is accepted only in "
                               "simulation or with --unsigned-config (development); flash a signed bundle"])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.loop.set_exception_handler(self._loop_exception)
        self._open_spool()
        self._start_configuration()
        self.hardware = open_hardware(self.config, self.loop, simulated_room=self.options.simulated)
        self.faults.update(self.hardware.faults)
        feedback = Feedback(self.hardware.leds, self.hardware.haptic, self.loop,
                            leds_fault=self.hardware.faults.get("leds"))
        visual_signal = VisualSignal(feedback, self.loop, journal=self.spool.journal, faults=self.faults)
        notice = self._open_notice()
        self.sessions = LiveSessions(self.config, self.loop, self.wall, spool=self.spool, storage=self.storage,
                                     assignment=self.assignment, faults=self.faults, on_fault=self._media_fault,
                                     visual_signal=visual_signal)
        self.machine = Machine(self.config, self.loop, feedback, notice, self.sessions)
        self.machine.on_change = self._notify_status
        self.machine.on_closed = lambda: self.updater.apply_pending(False)
        self.sessions.start(self.hardware)
        self.faults.update(self.hardware.faults)
        if self.hardware.button is not None:
            self.hardware.button.start(self.loop, self.selftest.route(self.machine.button_edge))
        self.machine.arm()
        self._sweep_retention()
        self._arming_signals(feedback)
        self._check_authorisation()
        hardware = sorted(k for k in self.faults if k != AUTHORISATION_FAULT)
        if hardware:
            feedback.error("hardware fault: " + ", ".join(hardware))
        self._tasks.append(self.loop.create_task(self._monitor()))
        self._tasks.append(self.loop.create_task(visual_signal.run()))
        self._start_link()
        if self.options.control_socket:
            await self._start_control()
        if self.options.notify:
            self._start_notify()
        log.info("armed; faults: %s", ", ".join(sorted(self.faults)) or "none")

    async def start_maintenance(self, why: str) -> None:
        """Every configuration failed to start: serve only the status and the serial link
        (and the SD card's inbox), record nothing, so a new bundle can be flashed."""
        self.maintenance = why
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.loop.set_exception_handler(self._loop_exception)
        try:
            self._open_spool()
            self.spool.journal.append("start failed", {"reason": why[:2000], "config_version": self.config_version,
                                                       "now": "maintenance: status and link only"})
        except Exception as exc:  # noqa: BLE001 - without a journal the link still runs
            log.exception("maintenance: no spool")
            self.faults["spool"] = str(exc)
        self._start_configuration()
        self._start_link()
        if self.options.control_socket:
            await self._start_control()
        if self.options.notify:
            self._start_notify()
        log.error("maintenance (no recording): %s", why)

    def restart_when_replaced(self, bundle_path: Path) -> None:
        """Maintenance on a damaged provisioned bundle: start again once the file changes."""
        self._tasks.append(self.loop.create_task(provisioned.watch(bundle_path, self._configuration_changed)))

    def _open_spool(self) -> None:
        signer = self._open_signer()
        provisioned = self.provisioned_camera_id()
        if provisioned and provisioned != self.config.device.camera_id:
            self.config = with_camera_id(self.config, provisioned)
        spool_dir = self.state_dir / SPOOL_DIR
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.storage = Storage.from_config(spool_dir, self.config.storage)
        self.storage.simulated_free_mb = self._free_mb_override
        self.spool = Spool(spool_dir, signer, self.options.recipients,
                           self.config.device.camera_id, self.config.digest, self.config.signed,
                           sync_interval=self.config.storage.sync_interval_s, wall_clock=self.wall.now,
                           storage=self.storage)
        self.recovered = self.spool.recover()
        self.spool.journal.append("boot", {"version": _version(), "config_digest": self.config.digest,
                                           "config_signed": self.config.signed,
                                           "config_version": self.config_version,
                                           "recovered": len(self.recovered)})

    def _start_configuration(self) -> None:
        """Flashed configurations (applied between recordings) and the shift's assignment."""
        device = self.config.device
        journal = self.spool.journal if self.spool is not None else None
        self.updater = ConfigUpdater(self.state_dir, self.config, journal, device.camera_id,
                                     device.fleet, is_recording=self.recording_active,
                                     on_applied=self._configuration_applied,
                                     running_version=self.config_version)
        self.updater.apply_pending(False)
        self._take_card_bundles()
        self.assignment = AssignmentKeeper(self.state_dir, journal, device.camera_id,
                                           self._assignment_signers, wall_clock=self.wall.now)
        if self._previous is not None and self._previous.assignment is not None:
            self.assignment.carry_over(self._previous.assignment)
        self._previous = None
        self._take_assignments()

    def _assignment_signers(self) -> list[str]:
        """[keys] assigners of the latest accepted configuration when it lists any, else
        its technicians that are not revoked (recorder.assignment.assignment_signers)."""
        return list(self.updater.latest[1].keys.assigners) or self.updater.trusted_technicians()

    def _take_card_bundles(self) -> None:
        """Bundles left on the SD card or dock folder (pieton config flash --dir): taken at
        start and at every monitor tick, each answered on the card."""
        if self.config.link.card_dir:
            signer = self.spool.signer if self.spool is not None else None
            self.updater.pickup_inbox(self.config.link.card_dir, signer=signer, now=self.wall.now)

    def _take_assignments(self) -> None:
        """Assignments (and ends) left in the inbox of the spool (the dock) or of the SD card."""
        if self.spool is None:
            return
        self.assignment.pickup_inbox(self.spool.dir / INBOX, origin="dock")
        if self.config.link.card_dir:
            self.assignment.pickup_inbox(Path(self.config.link.card_dir) / INBOX, origin="card")

    def clock_synchronised(self) -> bool:
        position = self.sessions.position if self.sessions is not None else None
        return bool(position is not None and position.clock_status().get("synchronised"))

    def _sweep_retention(self) -> None:
        """Erase on the camera what is past its retention (R241-13), never during a
        recording, only with a synchronised clock; note what is due for offload. Runs at
        arming, every RETENTION_INTERVAL_S, and as soon as the clock becomes synchronised."""
        if self.spool is None:
            return
        synced, now = self.clock_synchronised(), self.loop.time()
        last = self._retention_pass
        if last is not None and now - last[0] < RETENTION_INTERVAL_S and synced == last[1]:
            return
        self._retention_pass = (now, synced)
        self.retention = expiry.sweep(self.spool, self.wall.now(), synchronised=synced,
                                      zone=self.config.device.timezone,
                                      warning_days=self.config.storage.offload_warning_days,
                                      erase=not self.recording_active())
        self.erased_on_camera += len(self.retention.erased)
        if self.retention.erased:
            log.info("retention: %d recording(s) erased on the camera", len(self.retention.erased))

    def _arming_signals(self, feedback: Feedback) -> None:
        """At arming, what the agent must know before the shift: no agent number, and
        recordings waiting for the dock. An assignment that ends or expires while armed
        is shown the same way, for whoever takes the camera next."""
        self.assignment.on_unassigned = lambda why: feedback.signal("not_assigned", why)
        if self.assignment.current() is None:
            feedback.signal("not_assigned", "armed without an assignment")
        if self.retention is not None and self.retention.offload_due:
            feedback.signal("offload_due", f"{len(self.retention.offload_due)} recording(s) not offloaded")

    def _check_authorisation(self) -> None:
        """Past the arrêté's end (the local day, R241-8) every start is refused: shown in the
        status and felt (error pattern) from arming or the day it ends, not only at a press."""
        refusal = authorisation_refusal(self.config, self.wall.now())
        if refusal is None:
            self.faults.pop(AUTHORISATION_FAULT, None)
        elif self.faults.get(AUTHORISATION_FAULT) != refusal:
            self.faults[AUTHORISATION_FAULT] = refusal
            log.error("%s", refusal)
            self.machine.feedback.error(refusal)

    def recording_active(self) -> bool:
        return self.machine is not None and self.machine.current is not None

    def _media_fault(self, kind: str, what: str) -> None:
        """A media device or the encoder failed while running: shown in the status, felt
        by the agent, noted in the recording."""
        self.faults[kind] = what
        if self.machine is not None:
            self.machine.fault(what)

    def _configuration_applied(self, config) -> None:
        # Everything downstream (spool, pipeline, gestures, boundary) was built from the old
        # configuration: restart cleanly on the new one, as systemd would.
        log.info("configuration %s applied: restarting on it", config.digest[:16])
        self._configuration_changed()

    def _configuration_changed(self) -> None:
        self.restart_requested = True
        self.request_stop()

    def _start_link(self) -> None:
        """The technician's serial link (USB gadget serial on the device)."""
        port = self.config.link.serial_port
        if not port or not port_present(port):
            return
        try:
            self.listener = device_listener(port, self.updater, self.assignment,
                                            baud=self.config.link.serial_baud, loop=self.loop).start()
        except PietonError as exc:
            self.faults["link"] = str(exc)

    def provisioned_camera_id(self) -> str | None:
        try:
            return (self.state_dir / KEYS_DIR / CAMERA_ID_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _open_signer(self):
        key_dir = self.state_dir / KEYS_DIR
        if self.options.simulated and not (key_dir / "device-signing.key").exists():
            FileSigner.create(key_dir / "device-signing.key")  # a simulated device provisions itself
        return open_signer(self.config.drivers.signer, key_dir)

    def _open_notice(self) -> Notice | None:
        if self.config.notice_fault:  # loaded anyway so that a new bundle can be flashed
            self.faults["notice"] = f"{NOTICE_FAULT}: " + "; ".join(self.config.notice_fault)
            return None
        try:
            return Notice(self.config, self.hardware.speaker, self.hardware.microphone)
        except PietonError as exc:
            self.faults["notice"] = f"{NOTICE_FAULT}: {exc}"
            return None

    async def _start_control(self) -> None:
        self._control = ControlServer(socket_path(self.state_dir), {"status": self.status, **self.selftest.handlers()},
                                      on_disconnect=self.selftest.disconnected)
        await self._control.start()

    def _start_notify(self) -> None:
        notify.ready()
        self._watchdog = notify.Watchdog(self.loop, healthy=self.healthy)
        self._watchdog.start()

    # -- running -----------------------------------------------------------------------
    def healthy(self) -> bool:
        return (self.machine is not None or self.maintenance is not None) and not self.loop.is_closed()

    def _loop_exception(self, loop, context) -> None:
        # A crash in one callback must not stop the loop: log it, show it, go on.
        exc = context.get("exception")
        what = f"{context.get('message', 'callback failed')}: {exc!r}" if exc else context.get("message")
        log.error("loop: %s", what, exc_info=exc)
        self.faults["callback"] = str(what)
        if self.machine is not None and not loop.is_closed():
            self.machine.fault("internal: " + str(what))

    async def _monitor(self) -> None:
        while True:
            try:
                self._check_battery()
                self._check_storage()
                self._apply_receipts()
                self._take_card_bundles()
                self._take_assignments()
                self.assignment.current()   # an expiry is noticed (and shown) within a tick
                self._sweep_retention()
                self._check_authorisation()
                self._notify_status()
            except Exception:
                log.exception("monitor check failed")
            await asyncio.sleep(MONITOR_INTERVAL_S)

    def _apply_receipts(self) -> None:
        """Free what the vault's signed receipts cover (after an offload at the dock);
        never during a recording, never without a receipt that verifies."""
        if self.config.keys.vault and not self.recording_active():
            freed = self.spool.apply_receipts(self.config.keys.vault)
            if freed:
                log.info("vault receipt: %d recording(s) offloaded and freed", len(freed))

    def _notify_status(self) -> None:
        """systemd's STATUS= line: state and faults, never a position or an identity."""
        if not self.options.notify or self.machine is None:
            return
        machine = self.machine
        text = machine.state.value
        if machine.current is not None:
            text += f" ({machine.current.reason or 'pending'}, {self.loop.time() - machine.current.started:.0f} s)"
        if self.faults:
            text += "; faults: " + ", ".join(sorted(self.faults))
        notify.status(text)

    def _check_battery(self) -> None:
        battery = self.hardware.battery if self.hardware else None
        if battery is None:
            return
        level = battery.percent()
        if level <= self.config.battery.critical_percent:
            if self.machine.state is State.RECORDING:
                log.warning("battery critical (%.0f%%): sealing the recording", level)
                self.machine.stop("battery critical")
            self._warn("battery_critical")
        elif level <= self.config.battery.low_percent:
            self._warn("battery_low")
        else:
            self.warnings.discard("battery_low")
            self.warnings.discard("battery_critical")

    @property
    def free_mb_override(self) -> float | None:
        """A scenario's "disk filling": the free space every storage check then sees."""
        return self._free_mb_override

    @free_mb_override.setter
    def free_mb_override(self, value: float | None) -> None:
        self._free_mb_override = value
        if self.storage is not None:
            self.storage.simulated_free_mb = value

    def storage_free_mb(self) -> float:
        if self.storage is None:
            return Storage(self.state_dir).free_mb()
        return self.storage.free_mb()

    def _check_storage(self) -> None:
        if self.storage.low():
            self._warn("storage_low")
        else:
            self.warnings.discard("storage_low")

    def _warn(self, what: str) -> None:
        if what not in self.warnings:
            self.warnings.add(what)
            self.machine.feedback.pulse("warning")
            log.warning("%s", what.replace("_", " "))

    def status(self) -> dict[str, Any]:
        machine = self.machine
        current = machine.current if machine else None
        status: dict[str, Any] = {
            "state": machine.state.value if machine else ("maintenance" if self.maintenance else "starting"),
            "camera_id": self.config.device.camera_id,
            "config": {"digest": self.config.digest[:16], "signed": self.config.signed},
            "recording": None,
            "storage_free_mb": round(self.storage_free_mb(), 1),
            "faults": {**self.faults, **(machine.feedback.failed if machine else {})},
            "warnings": sorted(self.warnings),
            "recordings_made": len(machine.history) if machine else 0,
        }
        if current is not None:
            status["recording"] = {"id": current.session.id, "reason": current.reason or "pending",
                                   "seconds": round(self.loop.time() - current.started, 1),
                                   "bookmarks": len(current.bookmarks)}
        if self.hardware and self.hardware.battery is not None:
            try:
                status["battery_percent"] = round(self.hardware.battery.percent(), 1)
            except DriverError as exc:   # a failing gauge must not take the status with it
                status["battery_percent"] = None
                status["battery_error"] = str(exc)
        status.update(self.sessions.status() if machine and self.sessions else {})
        if self.maintenance is not None:
            status["maintenance"] = self.maintenance
        if self.config.provisioned_fault:
            status["config"]["provisioned_fault"] = self.config.provisioned_fault
        if self.updater is not None:
            info = self.updater.info()
            status["config"]["version"] = self.updater.running_version
            status["config"]["pending"] = info["pending_version"]
            status["config"]["version_floor"] = info["version_floor"]
        if self.assignment is not None:
            status["assignment"] = self.assignment.status()
        if self.retention is not None:
            status["retention"] = {**self.retention.status(), "erased_since_start": self.erased_on_camera}
        if self.listener is not None:
            status["link"] = self.listener.status()
        if self.selftest.active:
            status["selftest"] = self.selftest.status()
        return status

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def wait_stopped(self) -> None:
        await self._stop_requested.wait()

    # -- shutdown ----------------------------------------------------------------------
    async def shutdown(self, reason: str = "daemon stopping") -> None:
        """Seal and close any recording, then release the hardware."""
        if self.options.notify:
            notify.stopping()
        self.selftest.end(reason)
        if self.machine is not None:
            task = self.machine.stop(reason)
            if task is not None:
                await task
            await self.machine.feedback.settle()
        await self._stop_services()
        if self.machine is not None:
            await self.sessions.close()
        if self.spool is not None:
            self.spool.journal.append("shutdown", {"reason": reason})
            # Closed here, not left to the garbage collector: a daemon started after this one
            # (a new configuration) reads the journal's last sequence number, and no writer of
            # this one may append after it.
            self.spool.close()
        if self.hardware is not None:
            self.hardware.close()

    async def _stop_services(self) -> None:
        """Cancel the daemon's tasks and close its watchdog, control socket and serial link."""
        for task in self._tasks:
            task.cancel()
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._control is not None:
            await self._control.close()
        if self.listener is not None:
            self.listener.close()

    async def abandon(self, why: str) -> None:
        """A start failed part way: release what it opened, and journal why."""
        await self._stop_services()
        if self.sessions is not None:
            try:
                await self.sessions.close()
            except Exception:  # noqa: BLE001 - half built: release the rest anyway
                log.exception("closing a half-started pipeline failed")
        if self.hardware is not None:
            self.hardware.close()
        if self.spool is not None:
            self.spool.journal.append("start failed", {"reason": why[:2000],
                                                       "config_version": self.config_version})
            self.spool.close()

    def power_cut(self) -> None:
        """Simulated loss of power: everything stops where it is, nothing is sealed or
        closed; the next start's recovery deals with what was left."""
        for task in self._tasks:
            task.cancel()
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._control is not None:
            self.loop.create_task(self._control.close())
        pipeline = self.sessions.pipeline if self.sessions is not None else None
        if pipeline is not None:
            pipeline.power_cut()
        if self.spool is not None:
            self.spool.power_cut()   # its opening thread stops before the next start reads the journal
        if self.machine is not None:
            self.machine.gestures.reset()
            self.machine.state = State.ARMED
        if self.hardware is not None:
            self.hardware.close()


def _version() -> str:
    return recorder.__version__


async def serve(config_path, options: Options) -> int:
    """`pieton run`: run until SIGTERM/SIGINT, sealing any recording before exit; a
    configuration applied while running restarts the daemon on it."""
    loop = asyncio.get_running_loop()
    daemon = None
    while True:
        try:
            config, version = load_device_config(config_path, options.state_dir)
        except provisioned.ProvisionedDamaged as exc:   # nothing verified to run on
            daemon = Daemon(exc.stand_in, options, loop=loop, previous=daemon)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.request_stop)
            await daemon.start_maintenance("; ".join(exc.problems))
            daemon.restart_when_replaced(Path(config_path) if config_path else DEFAULT_CONFIG)
            await daemon.wait_stopped()
            if not daemon.restart_requested:
                await daemon.shutdown("daemon stopping (signal)")
                return 0
            await daemon.shutdown("provisioned bundle replaced")
            continue
        daemon = Daemon(config, options, loop=loop, config_version=version, previous=daemon)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.request_stop)
        try:
            await daemon.start()
        except Exception as exc:  # noqa: BLE001 - whatever it is, never a boot loop
            why = "; ".join(getattr(exc, "problems", None) or [f"{type(exc).__name__}: {exc}"])
            log.exception("start on configuration version %d failed", version)
            await daemon.abandon(why)
            if fall_back(options.state_dir, f"start failed: {why}") is not None:
                daemon = None
                continue
            daemon = Daemon(config, options, loop=loop, config_version=version)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.request_stop)
            await daemon.start_maintenance(why)
        await daemon.wait_stopped()
        if not daemon.restart_requested:
            await daemon.shutdown("daemon stopping (signal)")
            return 0
        await daemon.shutdown("configuration applied")
