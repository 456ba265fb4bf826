"""`pieton run`, `pieton simulate` and `pieton ctl`: the daemon's commands.
`python -m recorder` is `pieton run`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from recorder.config import DEFAULT_CONFIG, on_simulated_hardware
from recorder.control import register_ctl
from recorder.errors import ConfigError, DriverError, PietonError

SCENARIOS = DEFAULT_CONFIG.parent / "scenarios"


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the recorder daemon")
    _common(run)
    run.add_argument("--unsigned-config", action="store_true",
                     help="accept a plain TOML with real drivers (development; recordings say so)")
    run.set_defaults(func=cmd_run)

    sim = subparsers.add_parser("simulate", help="run a scenario on simulated hardware")
    sim.add_argument("scenario", help="a scenario TOML (see config/scenarios/)")
    _common(sim, state_required=True)
    sim.add_argument("--realtime", action="store_true", help="follow the wall clock instead of running faster")
    sim.set_defaults(func=cmd_simulate)

    register_ctl(subparsers)


def _common(parser: argparse.ArgumentParser, state_required: bool = False) -> None:
    parser.add_argument("--config", default=None, help="configuration (signed bundle or TOML); default: config/pieton.toml")
    parser.add_argument("--state-dir", required=state_required, default=None if state_required else "/var/lib/pieton",
                        help="the device's state folder (keys, spool, control socket)")
    parser.add_argument("--recipient", action="append", default=[], metavar="AGE1...",
                        help="the chief's age recipient (repeatable); default: [keys] recipients")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the daemon's log as it goes")


def _logging(verbose: bool, quiet: int = logging.WARNING) -> None:
    logging.basicConfig(level=logging.INFO if verbose else quiet,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _load(args):
    from recorder.config_update import load_device_config
    from recorder.daemon import resolve_recipients
    config, _version = load_device_config(args.config, args.state_dir)
    return config, resolve_recipients(config, args.recipient)


def _fail(exc: Exception) -> int:
    problems = getattr(exc, "problems", None) or [str(exc)]
    for problem in problems:
        print(f"pieton: {problem}", file=sys.stderr)
    return 2


def cmd_run(args) -> int:
    from recorder.daemon import Options, serve
    from recorder.provisioned import ProvisionedDamaged
    _logging(True)
    try:
        try:
            config, recipients = _load(args)
            simulated = all(getattr(config.drivers, k) == "simulated" for k in ("camera", "button", "leds"))
        except ProvisionedDamaged:   # the daemon comes up in maintenance, saying why
            recipients, simulated = list(args.recipient), False
        options = Options(Path(args.state_dir), recipients, simulated=simulated,
                          unsigned_config=args.unsigned_config)
        return asyncio.run(serve(args.config, options))
    except (ConfigError, PietonError, DriverError) as exc:
        return _fail(exc)


def simulate(scenario_path, state_dir, *, config_path=None, recipients=(), realtime=False,
             control_socket=False, progress=None):
    """Run a scenario through the daemon; return the player (its daemons, log and failures)."""
    from recorder.config_update import load_device_config
    from recorder.daemon import Daemon, Options, resolve_recipients
    from recorder.scenario import load_scenario, run_scenario
    config, _version = load_device_config(config_path, state_dir)
    config = on_simulated_hardware(config)
    recipients = resolve_recipients(config, list(recipients))
    scenario = load_scenario(scenario_path)
    options = Options(Path(state_dir), recipients, simulated=True, control_socket=control_socket,
                      notify=False)

    def make_daemon(loop, wall, previous=None):
        # At every (re)start: a configuration flashed meanwhile is the one in force.
        config, version = load_device_config(config_path, state_dir)
        config = on_simulated_hardware(config)     # a device's bundle, played on simulated hardware
        return Daemon(config, options, loop=loop, wall_clock=wall, config_version=version, previous=previous)

    return run_scenario(scenario, make_daemon, realtime=realtime, progress=progress)


def cmd_simulate(args) -> int:
    from recorder.scenario import verdict
    from recorder.summary import print_summary
    _logging(args.verbose, quiet=logging.ERROR)   # warnings (a refused start...) are in the summary
    try:
        player = simulate(args.scenario, args.state_dir, config_path=args.config,
                          recipients=args.recipient, realtime=args.realtime, control_socket=True)
    except (ConfigError, PietonError) as exc:
        return _fail(exc)
    print_summary(player)
    problem = verdict(player)
    if problem:
        print(f"pieton: {problem}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m recorder [run options]`."""
    parser = argparse.ArgumentParser(prog="python -m recorder", description="the pieton recorder daemon")
    _common(parser)
    parser.add_argument("--unsigned-config", action="store_true")
    return cmd_run(parser.parse_args(argv))
