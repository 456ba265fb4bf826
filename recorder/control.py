"""The daemon's control socket and `pieton ctl`.

A Unix stream socket in the state dir (mode 0660: the service's user and group). The
protocol is one JSON object per line each way: ``{"cmd": "status"}`` is answered by
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``; any other keys of
the request are passed to the handler as keyword arguments. A handler that takes a
``connection`` argument is given the number of the connection the request came on, and
``on_disconnect(number)`` is told when a connection closes (the self-test lives as long as
the technician's connection). The socket only answers
questions the daemon chooses to expose: it has no command to read, alter or delete a
recording, nor to turn the red light off.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recorder.arguments import bounded_float
from recorder.errors import ControlError, PietonError

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
DEFAULT_STATE_DIR = Path("/var/lib/pieton")
MAX_LINE = 64 * 1024


def socket_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


class ControlServer:
    """Serves ``handlers`` (command name -> callable, sync or async) on a Unix socket."""

    def __init__(self, path: str | Path, handlers: dict[str, Callable[..., Any]], *, mode: int = 0o660,
                 on_disconnect: Callable[[int], None] | None = None):
        self.path = Path(path)
        self.handlers = dict(handlers)
        self.mode = mode
        self.on_disconnect = on_disconnect
        self.requests = 0
        self._connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._inode: int | None = None

    async def start(self) -> None:
        if not self.path.parent.is_dir():
            raise ControlError(f"control socket {self.path}: folder {self.path.parent} does not exist")
        self._remove_stale()
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: cannot listen: {exc.strerror or exc}") from None
        os.chmod(self.path, self.mode)
        self._inode = self.path.stat().st_ino
        log.info("control socket listening on %s", self.path)

    def _remove_stale(self) -> None:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"control socket {self.path}: the path exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.path))
            except (ConnectionRefusedError, FileNotFoundError):
                self.path.unlink(missing_ok=True)  # left by a daemon that died
                return
        raise ControlError(f"control socket {self.path}: another daemon is already serving it")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._connections += 1
        connection = self._connections
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE
                    await self._send(writer, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                    break
                if not line:
                    break
                await self._send(writer, await self.answer(line, connection))
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            if self.on_disconnect is not None:
                self.on_disconnect(connection)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        writer.write(json.dumps(response, default=str, ensure_ascii=False).encode() + b"\n")
        await writer.drain()

    async def answer(self, line: bytes, connection: int | None = None) -> dict[str, Any]:
        """The response to one request line (from connection number ``connection``)."""
        self.requests += 1
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {"ok": False, "error": f"request is not JSON: {exc}"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'request must be an object with a "cmd" string, e.g. {"cmd": "status"}'}
        cmd = request.pop("cmd")
        request.pop("connection", None)   # given by the server, never by the client
        handler = self.handlers.get(cmd)
        if handler is None:
            return {"ok": False, "error": f"unknown command {cmd!r}; commands: {', '.join(sorted(self.handlers))}"}
        if "connection" in inspect.signature(handler).parameters:
            request["connection"] = connection
        try:
            result = handler(**request)
            if inspect.isawaitable(result):
                result = await result
        except TypeError as exc:
            return {"ok": False, "error": f"bad arguments for {cmd!r}: {exc}"}
        except PietonError as exc:   # the daemon's own refusal: its words are the answer
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # one failing command must not take the daemon down
            log.exception("control command %r failed", cmd)
            return {"ok": False, "error": f"{cmd} failed: {type(exc).__name__}: {exc}"}
        return {"ok": True, "result": result}

    async def close(self) -> None:
        """Stop listening, drop open connections and remove the socket; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()
        try:
            if self.path.stat().st_ino == self._inode:  # never remove a successor's socket
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "closed"
        return f"<ControlServer {self.path} {state} requests={self.requests}>"


# -- client -------------------------------------------------------------------------------

def request(path: str | Path, cmd: str, *, timeout: float = 3.0, **args: Any) -> Any:
    """Send one command to the daemon and return its result; ControlError otherwise."""
    with Connection(path, timeout=timeout) as connection:
        return connection.request(cmd, timeout=timeout, **args)


class Connection:
    """One connection to the daemon, for several commands in a row (the self-test)."""

    def __init__(self, path: str | Path, *, timeout: float = 3.0):
        self.path = Path(path)
        self._buffer = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _errors(self.path, timeout):
                self.sock.settimeout(timeout)
                self.sock.connect(str(self.path))
        except ControlError:
            self.sock.close()
            raise

    def request(self, cmd: str, *, timeout: float = 3.0, **args: Any) -> Any:
        message = json.dumps({**args, "cmd": cmd}).encode() + b"\n"
        with _errors(self.path, timeout):
            self.sock.settimeout(timeout)
            self.sock.sendall(message)
            while b"\n" not in self._buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self._buffer += chunk
        data, _, self._buffer = self._buffer.partition(b"\n")
        return _result(self.path, cmd, data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _errors(path: Path, timeout: float):
    """The socket's errors in the technician's words."""
    try:
        yield
    except OSError as exc:
        raise _control_error(path, exc, timeout) from None


def _control_error(path: Path, exc: OSError, timeout: float) -> ControlError:
    if isinstance(exc, FileNotFoundError):
        return ControlError(f"no control socket at {path}: the pieton daemon is not running "
                            "(or uses another --state-dir); see `systemctl status pieton-recorder`")
    if isinstance(exc, ConnectionRefusedError):
        return ControlError(f"{path}: connection refused: the pieton daemon is not running "
                            "(the socket was left by a stopped daemon)")
    if isinstance(exc, PermissionError):
        return ControlError(f"{path}: permission denied: run as root or as a member of the 'pieton' group")
    if isinstance(exc, TimeoutError):
        return ControlError(f"{path}: the daemon did not answer within {timeout:g} s")
    return ControlError(f"{path}: {exc.strerror or exc}")


def _result(path: Path, cmd: str, data: bytes) -> Any:
    try:
        response = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(f"{path}: the daemon's answer is not JSON: {data[:80]!r}") from None
    if not isinstance(response, dict) or "ok" not in response:
        raise ControlError(f"{path}: unexpected answer {str(response)[:80]}")
    if not response["ok"]:
        raise ControlError(f"the daemon refused {cmd!r}: {response.get('error', 'no reason given')}")
    return response.get("result")


# -- readable status --------------------------------------------------------------------------

# Never printed in readable form, wherever they appear: positions and identities stay out
# of terminals and the logs they get pasted into.
_WITHHELD = {"lat", "lon", "latitude", "longitude", "alt", "altitude", "position", "agent", "agent_number"}


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        shown = [f"{k}={_nested(v)}" for k, v in value.items() if k not in _WITHHELD]
        return ", ".join(shown) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "none"
    return str(value)


def _nested(value: Any) -> str:
    return "{" + _value(value) + "}" if isinstance(value, dict) else _value(value)


def _rest(value: dict, used: set[str]) -> str:
    rest = {k: v for k, v in value.items() if k not in used and k not in _WITHHELD}
    return f" ({_value(rest)})" if rest else ""


def _recording(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    parts = [str(value.get("id", "?"))]
    if "reason" in value:
        parts.append(f"reason {value['reason']}")
    if "seconds" in value:
        parts.append(f"{_value(value['seconds'])} s")
    return ", ".join(parts) + _rest(value, {"id", "reason", "seconds"})


def _battery(value: Any) -> str:
    if isinstance(value, dict):
        text = f"{_value(value.get('percent'))} %" + (", charging" if value.get("charging") else "")
        return text + _rest(value, {"percent", "charging"})
    return f"{_value(value)} %" if isinstance(value, int | float) else _value(value)


def _storage(value: Any) -> str:
    if isinstance(value, dict):
        free = value.get("free_mb")
        return (f"{_value(free)} MB free" if free is not None else "") + _rest(value, {"free_mb"})
    return f"{_value(value)} MB free" if isinstance(value, int | float) else _value(value)


def _gps(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    mode = value.get("mode")
    parts = [{1: "no fix", 2: "2D fix", 3: "3D fix"}.get(mode, "unknown" if mode is None else f"mode {mode}")]
    if value.get("sats") is not None:
        parts.append(f"{value['sats']} satellites")
    if value.get("hdop") is not None:
        parts.append(f"hdop {_value(value['hdop'])}")
    if value.get("age_s") is not None:
        parts.append(f"{_value(value['age_s'])} s old")
    return ", ".join(parts) + _rest(value, {"mode", "sats", "hdop", "age_s"})


def _clock(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    text = str(value.get("source", "unknown"))
    if value.get("offset_s") is not None:
        text += f", offset {value['offset_s']:+.3f} s"
    if "synchronised" in value:
        text += ", synchronised" if value["synchronised"] else ", NOT synchronised"
    return text + _rest(value, {"source", "offset_s", "synchronised"})


def _config(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    text = f"digest {value.get('digest', '?')}"
    if "signed" in value:
        text += ", signed" if value["signed"] else ", UNSIGNED (development)"
    return text + _rest(value, {"digest", "signed"})


# key -> (label, renderer), in display order; several keys may share a label.
_KNOWN: list[tuple[str, str, Callable[[Any], str]]] = [
    ("state", "state", lambda v: str(v).upper()),
    ("camera_id", "camera", _value),
    ("recording", "recording", _recording),
    ("storage", "storage", _storage),
    ("storage_free_mb", "storage", _storage),
    ("battery", "battery", _battery),
    ("battery_percent", "battery", _battery),
    ("gps", "GPS", _gps),
    ("gps_fix", "GPS", _gps),
    ("clock", "clock", _clock),
    ("clock_source", "clock", _clock),
    ("config", "configuration", _config),
    ("warnings", "warnings", _value),
]


def _agent(value: Any) -> str:
    if not isinstance(value, dict):
        return _value(value)
    if value.get("state") == "assigned":
        return f"assigned until {_value(value.get('until'))}"
    return _value(value.get("state"))


# A fault whose text starts so refuses every start (the daemon, status and link stay up):
# the summary shows its headline, e.g. "hors service : voyant rouge", not only its name.
OUT_OF_SERVICE = "hors service"


def _faults(value: Any) -> str:
    if not value:
        return "none"
    if isinstance(value, dict):
        names = [f"{name}: {str(text).split(' (')[0]}" if str(text).startswith(OUT_OF_SERVICE) else str(name)
                 for name, text in value.items()]
    else:
        names = value if isinstance(value, list) else [value]
    return ", ".join(str(name) for name in names) + " (details: --verbose)"


# The summary read at a glance: what the agent's camera is doing and what is wrong; the
# rows are _KNOWN's, with the agent after the recording and the faults by name at the end.
_GLANCE = {"state", "recording", "storage", "storage_free_mb", "battery", "battery_percent", "gps",
           "gps_fix", "clock", "clock_source"}
_SUMMARY: list[tuple[str, str, Callable[[Any], str]]] = [row for row in _KNOWN if row[0] in _GLANCE]
_SUMMARY.insert(2, ("assignment", "agent", _agent))
_SUMMARY.append(("faults", "faults", _faults))


def format_summary(status: dict[str, Any]) -> str:
    """The few lines `pieton ctl status` prints by default; the rest with --verbose or --json."""
    lines = [(label, render(status[key])) for key, label, render in _SUMMARY if key in status]
    width = max((len(label) for label, _ in lines), default=0) + 2
    return "\n".join([f"{label + ':':<{width}}{value}" for label, value in lines]
                     + ["(everything: pieton ctl status --verbose, or --json)"])


def format_status(status: dict[str, Any]) -> str:
    """Readable lines for `pieton ctl status --verbose`; keys it does not know are printed as they are."""
    lines: list[tuple[str, str]] = []
    for key, label, render in _KNOWN:
        if key in status:
            lines.append((label, render(status[key])))
    faults = status.get("faults")
    known = {key for key, _, _ in _KNOWN} | {"faults"}
    details: list[str] = []  # sections of the status that are themselves tables
    for key in sorted(k for k in status if k not in known and k not in _WITHHELD):
        value = status[key]
        if isinstance(value, dict) and value:
            details.append(f"{key.replace('_', ' ')}:")
            details.extend(f"  {k}: {_value(v) if not isinstance(v, dict) else _nested(v)}"
                           for k, v in value.items() if k not in _WITHHELD)
        else:
            lines.append((key.replace("_", " "), _value(value)))
    labels = [label for label, _ in lines] + (["driver faults"] if "faults" in status else [])
    width = max((len(label) for label in labels), default=0) + 2
    text = [f"{label + ':':<{width}}{value}" for label, value in lines]
    if "faults" in status:
        if not faults:
            text.append(f"{'driver faults:':<{width}}none")
        elif isinstance(faults, dict):
            text.append("driver faults:")
            text.extend(f"  {name}: {_value(message)}" for name, message in faults.items())
        else:
            text.append("driver faults:")
            text.extend(f"  {_value(item)}" for item in (faults if isinstance(faults, list) else [faults]))
    return "\n".join(text + details)


# -- `pieton ctl` ---------------------------------------------------------------------------

def register_ctl(subparsers) -> None:
    """Add `pieton ctl status [--state-dir DIR] [--json]`."""
    ctl = subparsers.add_parser("ctl", help="ask the running daemon (status)")
    ctl.set_defaults(func=lambda args: (ctl.print_help(), 2)[1])
    commands = ctl.add_subparsers(dest="ctl_command", metavar="COMMAND")
    status = commands.add_parser("status", help="state, recording, storage, battery, GPS, clock, faults")
    status.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"the daemon's state dir (default {DEFAULT_STATE_DIR})")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.add_argument("-v", "--verbose", action="store_true",
                        help="every field, not only the summary (state, recording, agent, storage, battery, "
                             "GPS, clock, faults)")
    status.add_argument("--timeout", type=bounded_float(0.1, 600, " seconds"), default=3.0, help="seconds to wait for the answer")
    status.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        result = request(socket_path(args.state_dir), "status", timeout=args.timeout)
    except ControlError as exc:
        print(f"pieton ctl: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True, ensure_ascii=False))
    elif isinstance(result, dict):
        print(format_status(result) if args.verbose else format_summary(result))
    else:
        print(_value(result))
    return 0
