"""`pieton notice build [--config F] [--out WAV]`: the spoken notice from its text.

The [notice] text of the configuration is what the people filmed are told (CSI L241-2);
this speaks it with espeak-ng into the WAV the configuration plays ([notice] audio, next
to the configuration, unless --out says otherwise). The text is in the configuration, so
it travels in the signed bundle beside the audio, and every recording names it. The
result is checked as `pieton config check` checks it (speech loud and voiced enough)
before it replaces the old file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from drivers.errors import BadAudioFile
from drivers.speaker import decode_wav
from recorder.config import DEFAULT_CONFIG, check_values
from recorder.evidence.chain import write_atomic
from recorder.inputs import InputError, read_bounded
from recorder.notice import LAW, speech_level
from tools.outputs import refuse_overwrite

SPEED_WPM = 150   # espeak-ng's words per minute: slow enough to be understood in the street
TIMEOUT_S = 60


def register(subparsers) -> None:
    notice = subparsers.add_parser("notice", help="the spoken notice: build its audio from its text")
    actions = notice.add_subparsers(dest="notice_command", metavar="ACTION")
    build = actions.add_parser("build", help="speak the [notice] text with espeak-ng into the notice WAV")
    build.add_argument("--config", default=str(DEFAULT_CONFIG), help="configuration whose [notice] text is spoken")
    build.add_argument("--out", help="WAV to write (default: the configuration's [notice] audio)")
    build.add_argument("--voice", default="fr", help="espeak-ng voice (default: fr)")
    build.set_defaults(func=cmd_build)
    notice.set_defaults(func=lambda args: (notice.print_help(), 2)[1])


def _fail(message: str) -> int:
    print(f"pieton notice build: {message}", file=sys.stderr)
    return 2


def cmd_build(args) -> int:
    path = Path(args.config)
    try:
        data = tomllib.loads(read_bounded(path, "config", what=f"{path}: configuration").decode("utf-8"))
    except InputError as exc:
        return _fail(str(exc))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        return _fail(f"{path}: not a valid TOML configuration ({exc})")
    sections, problems = check_values(data, str(path))
    if problems:  # the text and audio name must be what the camera would accept
        return _fail("the configuration is refused:\n  " + "\n  ".join(problems))
    text, audio = sections["notice"].text, sections["notice"].audio
    if not text.strip():
        return _fail(f"{path}: [notice] text is empty: nothing to say ({LAW})")
    out = Path(args.out) if args.out else path.resolve().parent / audio
    if shutil.which("espeak-ng") is None:
        return _fail("espeak-ng is missing: `make system` installs it (Debian package espeak-ng)")
    try:
        wav = speak(text, args.voice)
    except RuntimeError as exc:
        return _fail(str(exc))
    try:
        samples, rate = decode_wav(wav, "espeak-ng's output")
    except BadAudioFile as exc:
        return _fail(str(exc))
    problem = speech_level(samples, rate).problem()
    if problem:
        return _fail(f"espeak-ng's audio for {text!r} is {problem} ({LAW})")
    try:
        refuse_overwrite(out, "--out", "a WAV", lambda head: head.startswith(b"RIFF"))
        write_atomic(out, wav)
    except InputError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{out}: cannot be written ({exc.strerror or exc})")
    print(f"{out}: {len(samples) / rate:.1f} s, \"{text}\"")
    return 0


def speak(text: str, voice: str) -> bytes:
    """espeak-ng's WAV of ``text`` (read from standard input, so no text is an option)."""
    with tempfile.TemporaryDirectory(prefix="pieton-notice-") as tmp:
        wav = Path(tmp) / "notice.wav"
        try:
            result = subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", str(wav), "--stdin"],
                                    input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"espeak-ng did not finish within {TIMEOUT_S} s") from None
        error = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"espeak-ng failed (voice {voice!r}): {error or f'exit {result.returncode}'}")
        try:
            return read_bounded(wav, "notice", what="espeak-ng's output")
        except InputError as exc:
            raise RuntimeError(str(exc)) from None
