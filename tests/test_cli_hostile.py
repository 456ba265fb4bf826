"""Every `pieton` command against the classes of hostile input the testers keep replaying:
each is refused with exit 2 and a message naming the argument, the value and the rule;
never a traceback, never a hang, never a write somewhere else (an empty path is the
current folder), and the vault's records are left as they were.

The commands run in-process through ``tools.cli.main``; an alarm turns a hang (a named
pipe opened for reading waits for a writer) into a failure instead of a stuck suite."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from conftest import designate
from vault_support import CAMERA, make_spool

from recorder.evidence.age import generate_identity
from tools.cli import main

HANG_S = 20


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A vault holding two recordings of CAMERA and an extraction of one, the chief's
    identity (designated), another person's, the camera's spool and public key, a technician
    key and a signed configuration; built once, copied for each test."""
    b = tmp_path_factory.mktemp("base")
    identity, recipient = generate_identity()
    other, _ = generate_identity()
    (b / "police").mkdir()
    vault = str(b / "vault")
    assert main(["vault", "init", vault, "--recipient", recipient, "--register", str(b / "police/register.jsonl")]) == 0
    (b / "chief.key").write_text(identity + "\n")
    (b / "chief.rec").write_text(recipient)
    (b / "other.key").write_text(other + "\n")
    designate(vault, b / "chief.key", recipient)
    spool, signer = make_spool(b, [recipient], recordings=2, segments=1)
    (b / "device.pub").write_text(signer.public_key_hex)
    ident = ["--identity", str(b / "chief.key")]
    assert main(["vault", "authorise", vault, "--arrete", "T-1", "--date", "01/01/2026", "--cameras", "5",
                 "--communes", "71014", *ident]) == 0
    assert main(["vault", "enrol", vault, "--camera", CAMERA, "--key", signer.public_key_hex, *ident]) == 0
    assert main(["vault", "ingest", vault, "--from", str(spool), "--no-progress", *ident]) == 0
    (b / "ids").write_text(" ".join(sorted(p.name for p in spool.iterdir() if p.name.startswith(CAMERA))))
    assert main(["keys", "technician", "--out", str(b / "tech.key")]) == 0
    assert main(["config", "init", str(b / "cfg"), "--technician-key", str(b / "tech.key"), "--recipient",
                 recipient, "--device", "--vault-key", (b / "vault/keys/vault.pub").read_text().strip(),
                 "--arrete", "A-1", "--commune", "71014", "--until", "2030-01-01"]) == 0
    assert main(["config", "sign", str(b / "cfg/pieton.toml"), "--key", str(b / "tech.key"), "--version", "1",
                 "--fleet", "autun-pm", "--out", str(b / "v1.pbn")]) == 0
    return b


@pytest.fixture
def d(base, tmp_path, monkeypatch):
    """A fresh copy of ``base``, the current folder an empty one (so a write into '.' shows)."""
    work = tmp_path / "w"
    shutil.copytree(base, work, symlinks=True)
    (work / "here").mkdir()
    monkeypatch.chdir(work / "here")
    monkeypatch.setenv("PIETON_IDENTITY", str(work / "chief.key"))
    return work


class Hang(BaseException):
    """Not an OSError (as TimeoutError is): no handler of the command under test catches it."""


def _alarm(signum, frame):
    raise Hang(f"no answer within {HANG_S} s: the command hangs")


def run(argv, capsys) -> tuple[int, str]:
    """(exit code, what was printed on stderr) of ``pieton argv``, failing on a hang."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, capsys.readouterr().err


def _fill(d: Path, argv: list[str], value: str) -> list[str]:
    ids = (d / "ids").read_text().split()
    subs = {"D": str(d), "R0": ids[0], "REC": (d / "chief.rec").read_text()}
    return [value if a == "X" else a.format(**subs) for a in argv]


def _records(d: Path) -> dict[str, bytes]:
    """The vault's records and the register: what a refused command must leave untouched."""
    files = [*(d / "vault").rglob("*"), d / "police" / "register.jsonl"]
    return {str(p): p.read_bytes() for p in files if p.is_file() and p.suffix != ".lock"}


ID = ["--identity", "{D}/chief.key"]
V = "{D}/vault"
EXTRACT = ["vault", "extract", V, "{R0}", "--purpose", "judiciaire", "--requester", "R", "--deliver-to", "D", *ID]

# Every command with one argument replaced by X: (name, argv).
PATH_ARGS = {
    "config check": ["config", "check", "X"],
    "config sign FILE": ["config", "sign", "X", "--key", "{D}/tech.key", "--version", "2", "--fleet", "autun-pm",
                         "--out", "{D}/o.pbn"],
    "config sign --key": ["config", "sign", "{D}/cfg/pieton.toml", "--key", "X", "--version", "2", "--fleet",
                          "autun-pm", "--out", "{D}/o.pbn"],
    "config flash": ["config", "flash", "X", "--dir", "{D}"],
    "config init --technician-key": ["config", "init", "{D}/new", "--technician-key", "X"],
    "assign --key": ["assign", "--agent", "1", "--device", CAMERA, "--until", "+8h", "--key", "X",
                     "--out", "{D}/o.assignment"],
    "verify --devices": ["verify", "{D}/spool", "--devices", "X"],
    "verify --identity": ["verify", "{D}/spool", "--device-key", "{D}/device.pub", "--identity", "X"],
    "run --config": ["run", "--config", "X", "--state-dir", "{D}/state"],
    "simulate --config": ["simulate", "config/scenarios/bench.toml", "--config", "X", "--state-dir", "{D}/state"],
    "vault list --identity": ["vault", "list", V, "--identity", "X"],
    "vault check-report": ["vault", "check-report", "X", "{D}/o.mp4", "--vault-key", "0" * 64],
}
OUT_ARGS = {
    "config sign --out": ["config", "sign", "{D}/cfg/pieton.toml", "--key", "{D}/tech.key", "--version", "2",
                          "--fleet", "autun-pm", "--out", "X"],
    "config flash --dir": ["config", "flash", "{D}/v1.pbn", "--dir", "X"],
    "config init DIR": ["config", "init", "X"],
    "keys technician --out": ["keys", "technician", "--out", "X"],
    "provision --state-dir": ["provision", "--state-dir", "X", "--camera-id", "CAM-X-1"],
    "assign --out": ["assign", "--agent", "1", "--device", CAMERA, "--until", "+8h", "--key", "{D}/tech.key",
                     "--out", "X"],
    "vault init": ["vault", "init", "X", "--recipient", "{REC}", "--register", "{D}/police/register2.jsonl"],
    "vault extract --out": [*EXTRACT, "--out", "X"],
    "vault mirror": ["vault", "mirror", V, "X"],
    "desk --exports": ["desk", V, "--person", "C={D}/chief.key", "--exports", "X"],
}
TEXT_ARGS = {
    "config init --recipient": ["config", "init", "{D}/new", "--recipient", "X"],
    "config init --commune": ["config", "init", "{D}/new", "--commune", "X"],
    "config init --vault-key": ["config", "init", "{D}/new", "--vault-key", "X"],
    "assign --agent": ["assign", "--agent", "X", "--device", CAMERA, "--until", "+8h", "--key", "{D}/tech.key",
                       "--out", "{D}/o.assignment"],
    "vault hold --procedure": ["vault", "hold", V, "{R0}", "--procedure", "X", *ID],
    "vault extract --requester": [*EXTRACT[:6], "--requester", "X", "--deliver-to", "D", *ID, "--out", "{D}/o.mp4"],
    "vault designate --name": ["vault", "designate", V, "--name", "X", "--matricule", "PM-9", "--role",
                               "agent-habilité", "--designated-by", "M", "--decision", "d", "--recipient", "{REC}",
                               *ID],
    "vault authorise --mairie": ["vault", "authorise", V, "--mairie", "X", *ID],
}
NUMBER_ARGS = {
    "config sign --version": ["config", "sign", "{D}/cfg/pieton.toml", "--key", "{D}/tech.key", "--version", "X",
                              "--fleet", "autun-pm", "--out", "{D}/o.pbn"],
    "assign --counter": ["assign", "--agent", "1", "--device", CAMERA, "--until", "+8h", "--key", "{D}/tech.key",
                         "--out", "{D}/o.assignment", "--counter", "X"],
    "selftest --wait": ["selftest", "--state-dir", "{D}/state", "--wait", "X"],
    "ctl status --timeout": ["ctl", "status", "--state-dir", "{D}/state", "--timeout", "X"],
    "vault stats --year": ["vault", "stats", V, "--year", "X"],
    "vault authorise --cameras": ["vault", "authorise", V, "--arrete", "A-2", "--date", "01/01/2026", "--cameras",
                                  "X", "--communes", "71014", *ID],
}
TIME_ARGS = {
    "assign --until": ["assign", "--agent", "1", "--device", CAMERA, "--until", "X", "--key", "{D}/tech.key",
                       "--out", "{D}/o.assignment"],
    "vault find --from": ["vault", "find", V, "--from", "X", "--to", "2026-11-19T00:00Z", "--purpose", "judiciaire",
                          "--requester", "R", *ID],
    "vault list --to": ["vault", "list", V, "--to", "X", *ID],
    "vault extract --end": [*EXTRACT, "--out", "{D}/o.mp4", "--end", "X"],
    "vault register --from": ["vault", "register", V, "--from", "X"],
    "vault purge --now": ["vault", "purge", V, "--now", "X"],
    "vault authorise --until": ["vault", "authorise", V, "--arrete", "A-2", "--date", "01/01/2026", "--cameras", "5",
                                "--communes", "71014", "--until", "X", *ID],
}


def _cases(table):
    return [pytest.param(argv, id=name) for name, argv in table.items()]


def _refused(d, argv, value, capsys, *said):
    before = _records(d)
    code, err = run(_fill(d, argv, value), capsys)
    assert code == 2, err
    assert "Traceback" not in err
    for words in said:
        assert words in err, err
    after = _records(d)
    for name, data in before.items():  # nothing recorded is lost or changed; a log may say it refused
        assert after[name] == data or (name.endswith(".jsonl") and after[name].startswith(data)), name
    assert not os.listdir(".")        # nothing written into the current folder instead
    return err


# -- empty values, blanks, bytes that are not UTF-8 and control characters, in any argument --

@pytest.mark.parametrize("value, words", [
    ("", "an empty value"), ("   ", "an empty value"),
    ("\udcff\udcfe", "not UTF-8"),            # what Python makes of a file name in Latin-1
    ("a\x1b[2Jb", "control character"), ("a\nb", "control character"),
    ("OPJ \u202eDurand", "control character"),   # a right-to-left override: prints reversed
], ids=["empty", "blank", "not-utf8", "escape", "newline", "bidi-override"])
@pytest.mark.parametrize("argv", _cases(PATH_ARGS) + _cases(OUT_ARGS) + _cases(TEXT_ARGS))
def test_a_value_that_is_not_plain_text_is_refused_naming_the_argument(d, argv, value, words, capsys):
    err = _refused(d, argv, value, capsys, words)
    option = argv[argv.index("X") - 1]
    assert (option if option.startswith("--") else "argument ") in err


# -- a named pipe where a file is expected: refused at once, never waited on --

@pytest.mark.parametrize("argv", _cases(PATH_ARGS))
def test_a_named_pipe_is_refused_without_waiting(d, argv, capsys):
    os.mkfifo(d / "capture")
    err = _refused(d, argv, str(d / "capture"), capsys, str(d / "capture"))
    assert "named pipe" in err or "not a regular file" in err, err


@pytest.mark.parametrize("argv", [pytest.param(PATH_ARGS[k], id=k) for k in ("run --config", "simulate --config")])
def test_an_endless_configuration_is_refused_by_size(d, argv, capsys):
    _refused(d, argv, "/dev/zero", capsys, "/dev/zero", "larger than")


# -- a destination the system refuses: the file named with the reason, not a traceback --

@pytest.mark.parametrize("where", ["{D}/afile/inside.mp4", "{D}/" + "n" * 300 + ".mp4"],
                         ids=["under-a-file", "name-too-long"])
@pytest.mark.parametrize("argv", _cases(OUT_ARGS))
def test_a_destination_the_system_refuses_is_named(d, argv, where, capsys):
    (d / "afile").write_text("x")
    where = where.format(D=d)
    err = _refused(d, argv, where, capsys)
    assert where[:len(str(d)) + 6] in err, err   # the file or the folder at fault
    assert "File exists" not in err, err        # a file where a folder belongs is said so


# -- numbers: NaN, infinities, absurd sizes, negative, not a number --

@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1", "99999999999999999999999999", "1e308", "x"])
@pytest.mark.parametrize("argv", _cases(NUMBER_ARGS))
def test_a_number_out_of_its_range_is_refused(d, argv, value, capsys):
    option = argv[argv.index("X") - 1]
    _refused(d, argv, value, capsys, option, repr(value))


# -- times: out of range years, nonsense --

@pytest.mark.parametrize("value", ["0001-01-01T00:00", "9999-12-31T23:59", "31/02/2026 10:00", "nan",
                                   "2026-11-18T12:00+99:00", "+99999999999h", "9999-01-01T00:00Z"])
@pytest.mark.parametrize("argv", _cases(TIME_ARGS))
def test_a_time_out_of_range_is_refused(d, argv, value, capsys):
    _refused(d, argv, value, capsys, repr(value))



# -- an output named over something already recorded: refused, the record kept --

OVERWRITE_ARGS = {k: OUT_ARGS[k] for k in ("config sign --out", "assign --out", "keys technician --out")}


@pytest.mark.parametrize("record", ["vault/journal.jsonl", "police/register.jsonl", "vault/index.sqlite",
                                    "chief.key"])
@pytest.mark.parametrize("argv", _cases(OVERWRITE_ARGS))
def test_an_output_over_a_record_is_refused_and_the_record_kept(d, argv, record, capsys):
    kept = (d / record).read_bytes()
    err = _refused(d, argv, str(d / record), capsys, str(d / record))
    assert (d / record).read_bytes() == kept, err


@pytest.mark.parametrize("argv, again", [
    pytest.param(OUT_ARGS["config sign --out"], "{D}/v1.pbn", id="bundle"),
    pytest.param(OUT_ARGS["assign --out"], "{D}/o.assignment", id="assignment"),
])
def test_an_output_of_the_same_kind_is_still_replaced(d, argv, again, capsys):
    target = again.format(D=d)
    if not Path(target).exists():
        assert run(_fill(d, argv, target), capsys)[0] == 0
    before = Path(target).read_bytes()
    code, err = run(_fill(d, argv, target), capsys)
    assert code == 0, err
    assert Path(target).read_bytes() != before
