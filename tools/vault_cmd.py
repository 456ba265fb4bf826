"""`pieton vault COMMAND VAULT ...`: the chief's vault.

Exit codes: 0 done, 1 verification failed (or evidence quarantined / missing), 2 bad
usage, bad input or refused.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import stat
import sys
import time
from pathlib import Path

from recorder.arguments import bounded_int
from recorder.errors import AgeError, PietonError, VaultError, VerificationError
from recorder.inputs import explain_os_error, read_bounded
from tools import vault_people_cmd, vault_territory_cmd, vault_training_cmd

_TIMES = "27/11/2026 14:05 or 2026-11-27T14:05, local time in the vault's zone unless an offset is given"
_PURPOSES = "judiciaire, administrative, disciplinaire or formation (or judicial, disciplinary, training)"
_RECORDING = "a recording's id, as `pieton vault list` prints it (CAM-..._2026...Z_000000)"
_REQUESTER = "who asked (name and service), written in the journal and the register"
_JSON = "print it as JSON (for a program) instead of lines"


def _vault(p):
    p.add_argument("vault", metavar="VAULT", help="the vault folder")


def _identity(p, required: bool = True):
    vault_people_cmd.identity_option(p, required)


def _author(vault, args, action: str) -> list:
    """The designated person whose --identity this is becomes the author of what is logged."""
    return vault_people_cmd.author(vault, args.identity, action, _identities)


def _author_or_automatic(vault, args, action: str) -> None:
    if args.identity:
        _author(vault, args, action)
    else:
        vault.operator = "automatique"  # run by a timer, not a person (never the login name)


def register(subparsers) -> None:
    vault = subparsers.add_parser("vault", help="the chief's vault: offload, retention, extraction")
    sub = vault.add_subparsers(dest="vault_command", metavar="COMMAND")
    vault.set_defaults(func=lambda args: (vault.print_help(), 2)[1])

    p = sub.add_parser("init", help="create a vault")
    _vault(p)
    p.add_argument("--recipient", action="append", required=True, metavar="age1...",
                   help="the chief's age public key (repeatable)")
    p.add_argument("--register", required=True, metavar="PATH",
                   help="the register file, on the police's own medium (outside the vault)")
    p.add_argument("--retention-days", help=argparse.SUPPRESS)  # gone: refused with the rule, below
    p.add_argument("--commune", action="append", default=[], metavar="GEOJSON",
                   help="commune boundary drawn under GPS tracks in reports (repeatable)")
    p.add_argument("--timezone", default="Europe/Paris", metavar="ZONE",
                   help="zone of the times typed and printed (default Europe/Paris; overseas communes "
                        "e.g. America/Cayenne, Indian/Reunion)")
    p.add_argument("--by", metavar="'NAME, ROLE'", help="who installs the vault, recorded with its creation "
                   "(whose author is 'installation': no one is designated yet)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("ingest", help="offload, verify and store a docked camera's recordings")
    _vault(p)
    p.add_argument("--from", dest="source", required=True, metavar="SPOOL", help="the camera's spool")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _identity(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("purge", help="erase recordings past the retention (holds excepted)")
    _vault(p)
    p.add_argument("--now", metavar="TIME", help=argparse.SUPPRESS)
    _identity(p, False)  # without one: the automatic erasure (the hourly timer), no person's act
    p.set_defaults(func=cmd_purge)

    for name, helptext in (("hold", "keep a recording past its retention for a procedure (placed before "
                                    "the retention ends, with the procedure's reference)"),
                           ("release", "lift a hold")):
        p = sub.add_parser(name, help=helptext)
        _vault(p)
        p.add_argument("recording", metavar="RECORDING", help=_RECORDING)
        p.add_argument("--procedure", required=True, metavar="REF",
                       help="the procedure's reference, e.g. the PV number or the disciplinary file")
        _identity(p)
        p.set_defaults(func=cmd_hold if name == "hold" else cmd_release)

    p = sub.add_parser("extract", help="export recordings to one MP4 with a signed report, logged twice")
    _vault(p)
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help=_RECORDING + " (several: one MP4)")
    p.add_argument("--start", metavar="T", help=f"seconds from the start, or a time ({_TIMES})")
    p.add_argument("--end", metavar="T", help=f"seconds from the start, or a time ({_TIMES})")
    p.add_argument("--purpose", required=True, help=_PURPOSES)
    p.add_argument("--requester", required=True, metavar="NAME", help=_REQUESTER)
    p.add_argument("--deliver-to", required=True, metavar="NAME", help="who receives the MP4 and its report")
    _identity(p, True)
    p.add_argument("--out", required=True, metavar="FILE.mp4",
                   help="the MP4 to write; its report goes beside it (.report.json, .report.html)")
    vault_training_cmd.plate_options(p)
    p.set_defaults(func=cmd_extract)
    vault_training_cmd.register(sub, _run, _open, _author)

    p = sub.add_parser("check-report", help="check an extraction report and its MP4 (no vault needed)")
    p.add_argument("report", metavar="REPORT", help="the extraction's .report.json")
    p.add_argument("mp4", metavar="FILE.mp4", help="the MP4 it came with")
    p.add_argument("--vault-key", required=True, metavar="PUB", help="the vault's public key, 64 hex digits")
    p.set_defaults(func=cmd_check_report)

    p = sub.add_parser("view", help="consult a recording (decrypted to a private temporary place)")
    _vault(p)
    p.add_argument("recording", metavar="RECORDING", help=_RECORDING)
    p.add_argument("--purpose", required=True, help=_PURPOSES)
    p.add_argument("--requester", required=True, metavar="NAME", help=_REQUESTER)
    _identity(p, True)
    p.add_argument("--no-play", action="store_true", help="decrypt and check only, do not start a player")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("find", help="search inside recordings (agent, place, trigger, notice): with a motive, "
                       "logged twice")
    _vault(p)
    p.add_argument("--from", dest="since", required=True, metavar="TIME", help=_TIMES)
    p.add_argument("--to", dest="until", required=True, metavar="TIME", help=_TIMES)
    p.add_argument("--purpose", metavar="MOTIVE",
                   help="judiciaire, administrative, disciplinaire, formation or droit d'accès (a person's request)")
    p.add_argument("--requester", metavar="NAME", help="who asked for the search")
    p.add_argument("--near", metavar="LAT,LON", help="recorded near this place (decimal degrees, e.g. 46.951,4.2985)")
    p.add_argument("--radius", type=float, metavar="M", help="with --near: how near, in metres")
    p.add_argument("--camera", metavar="ID", help="one camera only (e.g. CAM-AUTUN-07)")
    p.add_argument("--agent", metavar="N", help="the agent number recordings carry (needs a motive)")
    p.add_argument("--reason", metavar="TRIGGER",
                   help="how the recording was started: intervention (a press), request (at the person's "
                        "request), flagrant_delit (held, no notice) or pending (not yet known)")
    p.add_argument("--notice", choices=("given", "absent"), help="whether the spoken notice was played")
    p.add_argument("--outside", action="store_true", help="recorded outside the commune only")
    _identity(p)
    p.add_argument("--json", action="store_true", help=_JSON)
    p.set_defaults(func=cmd_find)

    p = sub.add_parser("list", help="what the vault holds, from its index: no decryption, not an access request")
    _vault(p)
    p.add_argument("--camera", metavar="ID", help="one camera only (e.g. CAM-AUTUN-07)")
    p.add_argument("--from", dest="since", metavar="TIME", help=_TIMES)
    p.add_argument("--to", dest="until", metavar="TIME", help=_TIMES)
    p.add_argument("--json", action="store_true", help=_JSON)
    _identity(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("stats", help="yearly figures for the préfet")
    _vault(p)
    p.add_argument("--year", type=bounded_int(2000, 2200), required=True, help="the calendar year, e.g. 2026")
    p.add_argument("--json", action="store_true", help=_JSON)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("verify", help="re-check stored recordings, the journal, the register and the mirrors")
    _vault(p)
    _identity(p, False)  # without one: the scheduled check, no person's act
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("mirror", help="keep a verified copy of the vault on another medium (incremental)")
    _vault(p)
    p.add_argument("dest", metavar="DEST", help="an empty folder on the other medium, or a mirror of this vault")
    p.add_argument("--recheck", action="store_true", help="verify the copies already there, recopy the bad ones")
    _identity(p, False)  # without one: the scheduled copy, no person's act
    p.set_defaults(func=cmd_mirror)

    vault_people_cmd.register(sub, _run, _identities)
    vault_territory_cmd.register(sub, _run, _identities)  # authorise, enrol, retire, cameras, information


def _run(fn):
    """User errors become a message and exit 2 (1 for failed verification), never a traceback."""
    def wrapper(args):
        try:
            return fn(args)
        except VerificationError as exc:
            print(f"pieton vault: verification failed: {exc}", file=sys.stderr)
            return 1
        except PietonError as exc:
            print(f"pieton vault: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"pieton vault: {explain_os_error(exc)}", file=sys.stderr)
            return 2
    wrapper.__name__ = fn.__name__
    return wrapper


def _open(args):
    from tools.vault.vault import Vault
    vault = Vault.open(args.vault)
    for note in vault.notes:
        print(f"pieton vault: note: {note}", file=sys.stderr)
    return vault


def _identities(path):
    from recorder.evidence.age import load_identities
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        raise AgeError(f"--identity {path}: {exc.strerror}") from None
    if not regular:  # a FIFO would block the read below, a device never end it
        raise AgeError(f"--identity {path}: not a regular file")
    read_bounded(path, "identity", what=f"--identity {path}")  # an endless file is refused here

    def ask():
        env = os.environ.get("PIETON_PASSPHRASE")
        if env is not None:
            return env
        if not sys.stdin.isatty():
            raise AgeError(f"identity file {path} is protected: give its passphrase in PIETON_PASSPHRASE")
        return getpass.getpass(f"passphrase for {path}: ")
    return load_identities(path, ask)


@_run
def cmd_init(args):
    from recorder.retention import RULE
    from tools.vault.vault import init_vault
    if args.retention_days is not None:
        print(f"pieton vault: --retention-days {args.retention_days}: retention is not a setting "
              f"({RULE}, then erased unless a procedure holds it)", file=sys.stderr)
        return 2
    pub = init_vault(args.vault, args.recipient, args.register, communes=args.commune, timezone=args.timezone,
                     by=args.by)
    print(f"vault created in {args.vault}")
    print(f"vault public key ({pub}): {pub.read_text().strip()}")
    print("  give it to each camera ([keys] vault) and to the recipients of extractions")
    print(f"register: {Path(args.register).resolve()}")
    return 0


@_run
def cmd_ingest(args):
    from tools.vault.ingest import ingest
    with _open(args) as vault:
        _author(vault, args, "ingest")
        report = ingest(vault, args.source, progress=False if args.no_progress else None)
    for rid in report.stored:
        print(f"stored       {rid}")
    for rid in report.already:
        print(f"already held {rid}")
    for rid, problems in report.quarantined:
        print(f"QUARANTINED  {rid}")
        for p in problems:
            print(f"    {p}")
    for rid, why in report.failed:
        print(f"NOT COPIED   {rid}: {why} (the camera keeps it)")
    for rid in report.erased_on_camera:
        print(f"erased on the camera (retention) {rid}")
    for rid in report.missing:
        print(f"MISSING      {rid}: in the camera's sequence, neither on the camera nor in the vault")
    for p in report.journal_problems:
        print(f"JOURNAL      {p}")
    for note in report.notes:
        print(f"note: {note}")
    for rid in report.erased:
        print(f"erased (retention) {rid}")
    if report.receipt:
        print(f"receipt: {report.receipt}")
    print(f"{len(report.stored)} stored, {len(report.already)} already held, {len(report.quarantined)} "
          f"quarantined, {len(report.failed)} not copied, {report.bytes_copied / 1e6:.1f} MB copied")
    return 0 if report.ok else 1


@_run
def cmd_purge(args):
    from recorder.retention import RULE
    from tools.vault.arguments import shown_time, typed_time
    from tools.vault.retention import purge
    with _open(args) as vault:
        _author_or_automatic(vault, args, "purge")  # R241-13: erased automatically, by the timer
        report = purge(vault, typed_time(vault, args.now, "--now") if args.now else None)
        ended = {rid: shown_time(vault, end) for rid, end in report.ends.items()}
        following = report.next_end and (report.next_end[0], shown_time(vault, report.next_end[1]))
    for rid in report.erased:
        print(f"erased {rid} (retention ended {ended[rid]})")
    for rid, procedures in report.held:
        print(f"kept   {rid}: held for {', '.join(procedures)} (retention ended {ended[rid]})")
    for folder in report.quarantine_erased:
        print(f"erased quarantined copy {folder}")
    for item in report.mirror_erased:
        print(f"erased from mirror {item}")
    for dest in report.mirrors_unreachable:
        print(f"MIRROR NOT REACHABLE {dest}: not purged; connect it and run `pieton vault purge` today")
    for cp in report.pruned:
        print(f"pruned {cp['pruned_lines']} line(s) of {cp['log']} older than {cp['keep_days']:.0f} days "
              "(signed checkpoint kept)")
    if following:
        print(f"next   {following[0]} kept until {following[1]}")
    print(f"{len(report.erased)} erased, {len(report.held)} held past their retention, {report.kept} within "
          f"retention ({RULE})")
    return 0


@_run
def cmd_hold(args):
    from tools.vault.retention import hold
    with _open(args) as vault:
        _author(vault, args, "hold")
        hold(vault, args.recording, args.procedure)
    print(f"{args.recording} held for procedure {args.procedure}")
    return 0


@_run
def cmd_release(args):
    from tools.vault.retention import release
    with _open(args) as vault:
        _author(vault, args, "release")
        release(vault, args.recording, args.procedure)
    print(f"{args.recording} released from procedure {args.procedure}")
    return 0


def _anonymising(started: float):
    """A line every few seconds of media while a training clip is anonymised (it re-encodes
    every frame: minutes for a long clip)."""
    def say(done: float, total: float) -> None:
        spent = time.monotonic() - started
        print(f"anonymising: {done:.0f} of {total:.0f} s of media ({spent:.0f} s so far)", flush=True)
    return say


@_run
def cmd_extract(args):
    from tools.vault.extract import Request, extract
    request = Request(args.recordings, args.purpose, args.requester, args.deliver_to, Path(args.out),
                      args.start, args.end, progress=_anonymising(time.monotonic()),
                      plates=vault_training_cmd.plate_marks(args))
    with _open(args) as vault:
        request.zone = vault.timezone
        request.check()  # before asking for a passphrase; an argument error is no access attempt
        identities = _author(vault, args, "extract")
        result = extract(vault, request, identities)
    mp4 = result.report["mp4"]
    print(f"extracted {', '.join(args.recordings)} to {result.out} ({mp4['duration_s']} s, audio {mp4['audio']})")
    if result.report.get("truncated"):
        print(f"note: {result.report['truncated']}")
    if result.report.get("anonymised"):
        print("anonymised for training: faces blurred, caption masked, sound removed; the report names "
              "no agent, camera, place or date")
    if result.pending is not None:
        print(f"pending: kept in the vault until you sign off its contact sheet {result.pending}, then "
              f"pieton vault training-approve {args.vault} --extraction {result.report['extraction_id']} "
              f"--identity {args.identity} delivers it to --out")
    print(f"report: {result.report_path} (signed), {result.html_path} (to look at)")
    print(f"logged: vault journal entry {result.journal_seq} and register {vault.settings['register']}")
    return 0


@_run
def cmd_check_report(args):
    from tools.vault.report import check_report
    report = check_report(args.report, args.mp4, args.vault_key)
    print(f"report {report['extraction_id']}: signature valid (vault {args.vault_key[:16]}...), "
          f"{args.mp4} matches (SHA-256 {report['mp4']['sha256'][:16]}...)")
    print(f"purpose {report['purpose']}, requested by {report['requester']}, delivered to {report['deliver_to']}")
    if "sources" in report:  # training: the recordings are named in the vault's logs only
        print(f"  training clip from {report['sources']['recordings']} recording(s), anonymised")
    for rec in report.get("recordings", []):
        print(f"  {rec['id']} from camera {rec['camera']}, {len(rec['segments'])} segment(s)"
              + (" (truncated)" if rec.get("truncated") else ""))
    return 0


@_run
def cmd_view(args):
    from tools.vault.extract import consult
    with _open(args) as vault:
        identities = _author(vault, args, "view")
        result = consult(vault, args.recording, args.purpose, args.requester, identities,
                         play=False if args.no_play else None)
    if not result["played"]:
        why = "--no-play" if args.no_play else "no ffplay or no display on this machine"
        print(f"no player started ({why}); the decrypted copy was removed; to watch it, "
              "use the desk in a browser (pieton desk) or extract it (pieton vault extract)")
    print(f"consultation of {args.recording} ({result['duration_s']} s) logged: journal entry "
          f"{result['journal_seq']} and the register")
    return 0


@_run
def cmd_find(args):
    from tools.vault.arguments import camera_id, shown_time, typed_time
    from tools.vault.find import Filters, motive_name, parse_near, search
    if not args.purpose:
        raise VaultError("--purpose is required: " + ("filtering by agent without a motive would be monitoring "
                         "the agents, refused" if args.agent else "a search states its motive")
                         + " (R241-12; judiciaire, administrative, disciplinaire, formation, droit d'accès)")
    motive = motive_name(args.purpose)
    if not (args.requester or "").strip():
        raise VaultError("--requester NAME is required: every search says who asked for it (R241-14)")
    filters = Filters(agent=args.agent, reason=args.reason, notice=args.notice, outside=args.outside,
                      near=parse_near(args.near) if args.near else None, radius_m=args.radius)
    with _open(args) as vault:
        since, until = typed_time(vault, args.since, "--from"), typed_time(vault, args.until, "--to")
        filters.camera = camera_id(vault, args.camera)
        filters.check()
        identities = _author(vault, args, "search")
        result = search(vault, since, until, filters, motive=motive, requester=args.requester or "",
                        identities=identities)
        started = {f.row.recording_id: shown_time(vault, f.row.started_at) for f in result.found}
    if args.json:
        print(json.dumps({"found": [{"recording": f.row.recording_id, "camera": f.row.camera_id,
                                     "closest_m": f.closest_m} for f in result.found],
                          "without_position": result.without_position}))
        return 0
    for f in result.found:
        print(f"{f.row.recording_id}  camera {f.row.camera_id}  {started[f.row.recording_id]}"
              + (f"  closest {f.closest_m:.0f} m" if f.closest_m is not None else ""))
    for rid in result.without_position:
        print(f"{rid}  (no recorded position: cannot say whether it was near)")
    print(f"{len(result.found)} recording(s) found; search ({motive}, asked by {args.requester.strip()}) logged: "
          f"journal entry {result.journal_seq} and the register")
    return 0


@_run
def cmd_list(args):
    from tools.vault.arguments import camera_id, shown_time, typed_time
    from tools.vault.listing import list_recordings
    with _open(args) as vault:
        since = typed_time(vault, args.since, "--from") if args.since else None
        until = typed_time(vault, args.until, "--to") if args.until else None
        _author(vault, args, "list")
        listed = list_recordings(vault, camera=camera_id(vault, args.camera), since=since, until=until)
        rows = [{"camera": x.camera, "recording": x.recording, "start": shown_time(vault, x.start),
                 "end": shown_time(vault, x.end), "duration_s": x.duration_s,
                 "retention_end": shown_time(vault, x.retention_end), "holds": x.holds,
                 "quarantine": x.quarantine} for x in listed]
    if args.json:
        print(json.dumps({"recordings": rows}, ensure_ascii=False))
        return 0
    for r in rows:
        if r["quarantine"]:
            print(f"{r['camera']:12} {r['recording']}  QUARANTINED ({r['quarantine']}), "
                  f"kept until {r['retention_end']}")
            continue
        duration = f"{r['duration_s']:.0f} s" if r["duration_s"] is not None else "end unknown"
        print(f"{r['camera']:12} {r['recording']}  {r['start']} to {r['end']} ({duration}), "
              f"kept until {r['retention_end']}" + (f", held for {', '.join(r['holds'])}" if r["holds"] else ""))
    print(f"{len(rows)} recording(s) listed (index only: nothing decrypted, journaled as a listing)")
    return 0


@_run
def cmd_stats(args):
    from tools.vault.find import stats
    with _open(args) as vault:
        figures = stats(vault, args.year)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    for key, value in figures.items():
        if isinstance(value, dict):   # by purpose: "judicial 2, training 1", not a program's notation
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items())) or "none"
        print(f"{key.replace('_', ' '):32} {value}")
    return 0


@_run
def cmd_verify(args):
    from tools.vault.audit import audit
    with _open(args) as vault:
        _author_or_automatic(vault, args, "verify")
        report = audit(vault)
        vault.log("vault-verified", recordings=report.recordings, problems=len(report.problems))
    for p in report.problems:
        print(f"PROBLEM {p}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{report.recordings} stored recording(s) checked, journal {report.journal_lines} lines, "
          f"register {report.register_lines} lines, {report.quarantined} in quarantine: "
          f"{'OK' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


@_run
def cmd_mirror(args):
    from tools.vault.mirror import mirror
    with _open(args) as vault:
        _author_or_automatic(vault, args, "mirror")
        report = mirror(vault, args.dest, recheck=args.recheck)
    for rid in report.copied:
        print(f"mirrored     {rid}")
    for rid in report.erased:
        print(f"erased       {rid} (no longer stored in the vault)")
    for p in report.problems:
        print(f"PROBLEM      {p}")
    print(f"{len(report.copied)} copied and verified, {len(report.already)} already there, {len(report.erased)} "
          f"erased, {report.bytes_copied / 1e6:.1f} MB copied to {report.dest}")
    return 0 if report.ok else 1
