"""`pieton desk VAULT`: the chief's desk, served on this machine only.

It listens on 127.0.0.1 (or ::1); any other address is refused unless a TLS certificate and
key are given, so that no passphrase or recording ever crosses a network in clear."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from recorder.errors import PietonError
from recorder.localtime import zone
from tools.vault.vault import read_settings

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class DeskUsageError(PietonError):
    """A bad argument to `pieton desk`: one line, exit 2."""


def register(subparsers) -> None:
    p = subparsers.add_parser("desk", help="the chief's desk: the vault as a local web application (French)")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--person", action="append", default=[], metavar="NAME=IDENTITY_FILE", required=True,
                   help="a designated person and their age identity file (repeatable)")
    p.add_argument("--exports", required=True, metavar="DIR",
                   help="the folder extractions are written to (outside the vault)")
    p.add_argument("--port", type=int, default=8484, metavar="N", help="port (default 8484)")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on (127.0.0.1 unless --tls-cert and --tls-key are given)")
    p.add_argument("--tls-cert", metavar="CERT.pem", help="the TLS certificate, needed with another --host")
    p.add_argument("--tls-key", metavar="KEY.pem", help="the TLS certificate's private key")
    p.add_argument("--idle-minutes", type=float, default=10.0, metavar="M",
                   help="a session locks after this long without a request (default 10)")
    p.add_argument("--timezone", default=None, metavar="ZONE",
                   help="local zone of times typed and shown (default: the vault's, set by vault init --timezone)")
    p.set_defaults(func=cmd_desk)


def check_address(host: str, cert: str | None, key: str | None) -> None:
    if bool(cert) != bool(key):
        raise DeskUsageError("--tls-cert and --tls-key go together: give both or neither")
    for path, name in ((cert, "--tls-cert"), (key, "--tls-key")):
        if path and not Path(path).is_file():
            raise DeskUsageError(f"{name} {path}: file not found")
    if host in LOOPBACK:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not cert:
        raise DeskUsageError(f"--host {host}: the desk listens on 127.0.0.1 only; another address needs "
                             "--tls-cert and --tls-key (passphrases and recordings never cross a network in clear)")


def is_protected(path: Path) -> bool:
    """An identity file in age's passphrase format (armored or not), not in clear."""
    with open(path, "rb") as f:
        head = f.read(64)
    return head.startswith((b"age-encryption.org/", b"-----BEGIN AGE ENCRYPTED FILE-----"))


def build_config(args):
    from tools.desk.app import DeskConfig  # starlette: loaded only when the desk runs
    check_address(args.host, args.tls_cert, args.tls_key)
    if not 1 <= args.port <= 65535:
        raise DeskUsageError(f"--port {args.port}: a port number from 1 to 65535")
    if not 0 < args.idle_minutes <= 24 * 60:
        raise DeskUsageError(f"--idle-minutes {args.idle_minutes}: from a fraction of a minute to 1440")
    vault = Path(args.vault).resolve()
    if not (vault / "vault.json").is_file():
        raise DeskUsageError(f"{args.vault}: not a vault (no vault.json)")
    exports = Path(args.exports).resolve()
    if not exports.is_dir():
        raise DeskUsageError(f"--exports {args.exports}: folder not found")
    if exports.is_relative_to(vault):
        raise DeskUsageError(f"--exports {args.exports}: must be outside the vault")
    persons = {}
    for item in args.person:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path:
            raise DeskUsageError(f"--person {item!r}: write NAME=IDENTITY_FILE")
        if not Path(path).is_file():
            raise DeskUsageError(f"--person {item!r}: identity file {path} not found")
        if not is_protected(Path(path)):
            raise DeskUsageError(f"--person {item!r}: {path} is not protected by a passphrase "
                                 "(make it with `pieton keys chief`): signing in must need the passphrase")
        persons[name.strip()] = Path(path).resolve()
    # One rule for times: the vault's own zone unless --timezone says otherwise.
    zone_name = args.timezone or read_settings(vault / "vault.json").get("timezone")
    zone(zone_name)
    hosts = ["127.0.0.1", "localhost", "[::1]"] if args.host in LOOPBACK else [args.host]
    return DeskConfig(vault, persons, exports, zone=zone_name, idle_s=args.idle_minutes * 60,
                      secure=bool(args.tls_cert), hosts=hosts)


def cmd_desk(args) -> int:
    try:
        config = build_config(args)
    except PietonError as exc:
        print(f"pieton desk: {exc}", file=sys.stderr)
        return 2
    import uvicorn  # loaded only when the desk runs, not at every `pieton` command

    from tools.desk.app import create_app
    scheme = "https" if args.tls_cert else "http"
    print(f"pieton desk: {scheme}://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, ssl_certfile=args.tls_cert,
                ssl_keyfile=args.tls_key, log_level="warning", access_log=False, server_header=False)
    return 0
