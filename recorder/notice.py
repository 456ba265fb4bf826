"""The spoken notice: "Attention, cette intervention est enregistrée."

Loaded once at start (so playing it costs no disk access when the gesture is known) and
played through the speaker; the speaker starts it within its own latency, inside the
recording that is already running, so the recording itself contains it.

The file comes from outside (a technician's bundle), so it is read with the notice's size
limit and every malformed file is a BadAudioFile naming it: at ``config check`` a
configuration error, at daemon start a fault (the notice cannot be given), never a crash.
"""

from __future__ import annotations

import io
import logging
import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivers.errors import BadAudioFile, DriverError, DriverFault
from drivers.speaker import decode_wav
from recorder.hearing import AFTER_S, BEFORE_S, Ear
from recorder.inputs import InputError, read_bounded

log = logging.getLogger("pieton.notice")

LAW = "CSI L241-2: the people filmed are told, by a notice they can hear, that they are recorded"

DURATION_S = (0.3, 30.0)

# What a notice must be to be heard (CSI L241-2: the people filmed are told). The speech
# band of a telephone, 300-3400 Hz; a frame is voiced when it is periodic at a voice's
# pitch (70-400 Hz), is not a pure tone, and is not far below the loudest frame.
SPEECH_BAND_HZ = (300.0, 3400.0)
MIN_SPEECH_DBFS = -30.0
MIN_VOICED_SHARE = 0.40
FRAME_S = 0.03
PITCH_HZ = (70.0, 400.0)
MIN_PERIODICITY = 0.4       # normalised autocorrelation at the pitch lag
MAX_TONE_SHARE = 0.8        # of a frame's band energy in its 4 strongest FFT bins
ACTIVITY_DB = (-70.0, 40.0)  # absolute floor (dBFS), and range below the loudest frame


@dataclass(frozen=True)
class SpeechLevel:
    level_dbfs: float    # RMS of the speech band over the voiced frames (-inf when none)
    voiced_share: float  # of the notice's length

    def problem(self) -> str | None:
        """Why this notice cannot be relied on to be heard, or None."""
        if self.voiced_share < MIN_VOICED_SHARE:
            return (f"voiced during {self.voiced_share:.0%} of its length; a notice must be speech "
                    f"voiced during at least {MIN_VOICED_SHARE:.0%} of it")
        if self.level_dbfs < MIN_SPEECH_DBFS:
            return (f"its speech band (300-3400 Hz) is at {self.level_dbfs:.1f} dBFS RMS over its voiced "
                    f"frames; it must be at least {MIN_SPEECH_DBFS:.0f} dBFS")
        return None


def speech_level(samples: np.ndarray, rate: int) -> SpeechLevel:
    """How loud the notice's speech band is over its voiced frames, and how much of it is
    voiced. The band is cut by FFT; voicing is judged frame by frame."""
    samples = np.asarray(samples, dtype=np.float64)
    n = len(samples)
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < SPEECH_BAND_HZ[0]) | (freqs > SPEECH_BAND_HZ[1])] = 0.0
    band = np.fft.irfft(spectrum, n)
    size = max(int(rate * FRAME_S), 8)
    count = n // size
    if count == 0:
        return SpeechLevel(-math.inf, 0.0)
    frames = band[: count * size].reshape(count, size)
    power = np.mean(frames ** 2, axis=1)
    level = 10 * np.log10(np.maximum(power, 1e-20))
    active = (level > ACTIVITY_DB[0]) & (level > level.max() - ACTIVITY_DB[1])
    # periodic at a voice's pitch: the autocorrelation's peak among the pitch lags
    centred = frames - frames.mean(axis=1, keepdims=True)
    auto = np.fft.irfft(np.abs(np.fft.rfft(centred, 2 * size, axis=1)) ** 2, axis=1)[:, :size]
    lo, hi = int(rate / PITCH_HZ[1]), min(int(rate / PITCH_HZ[0]), size - 1)
    periodic = auto[:, lo:hi].max(axis=1) >= MIN_PERIODICITY * np.maximum(auto[:, 0], 1e-20)
    # not a pure tone: a tone's energy sits in a few FFT bins, a voice's in its harmonics
    bins = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)) ** 2
    strongest = np.sort(bins, axis=1)[:, -4:].sum(axis=1) / np.maximum(bins.sum(axis=1), 1e-30)
    voiced = active & periodic & (strongest < MAX_TONE_SHARE)
    if not voiced.any():
        return SpeechLevel(-math.inf, 0.0)
    return SpeechLevel(float(10 * np.log10(np.mean(power[voiced]))), float(voiced.sum() / count))


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """The notice audio at ``path`` as float32 mono samples and their rate; BadAudioFile
    naming the file when it is missing, too large or not a 16-bit PCM WAV."""
    path = Path(path)
    try:
        data = read_bounded(path, "notice", what=f"{path}: notice audio file")
    except InputError as exc:
        raise BadAudioFile(str(exc)) from None
    samples, rate = decode_wav(data, str(path))
    declared = _declared_frames(data)
    if declared is not None and len(samples) < declared:  # cut short on the card: not the notice
        raise BadAudioFile(f"{path}: truncated: holds {len(samples) / rate:.2f} s of the "
                           f"{declared / rate:.2f} s its header declares")
    return samples, rate


def _declared_frames(data: bytes) -> int | None:
    """The number of frames a WAV header declares (decode_wav has read it once already)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnframes()
    except (wave.Error, EOFError, ValueError, OSError):
        return None


def check_notice_audio(config: Any) -> list[str]:
    """Problems with the configured notice audio, in the configuration checker's words."""
    where = f"{config.source}: [notice] audio = {config.notice.audio!r}"
    try:
        samples, rate = load_wav(config.resolve(config.notice.audio))
    except BadAudioFile as exc:
        return [f"{where}: {exc} ({LAW})"]
    duration = len(samples) / rate
    if not DURATION_S[0] <= duration <= DURATION_S[1]:
        return [f"{where}: lasts {duration:.1f} s; must be from {DURATION_S[0]} to {DURATION_S[1]} s "
                f"({LAW})"]
    problem = speech_level(samples, rate).problem()
    return [f"{where}: {problem} ({LAW})"] if problem else []


class Notice:
    """The notice as the recorder plays it: its audio, its text, the speaker that plays it
    and the microphone that must hear it."""

    listen_after_s = AFTER_S

    def __init__(self, config, speaker, microphone=None):
        self.path = config.resolve(config.notice.audio)
        self.text = config.notice.text
        self.speaker = speaker
        self.samples, self.rate = load_wav(self.path)
        self.duration = len(self.samples) / self.rate
        self.ear = Ear(microphone, self.duration + BEFORE_S + AFTER_S + 1.0)

    @property
    def output(self) -> str:
        return getattr(self.speaker, "backend", "none")

    def play(self) -> tuple[float, float]:
        """Start the notice now; return (loop time playback starts, duration).
        Raises DriverFault when it cannot be played, so the agent is told to say it."""
        if self.speaker is None:
            raise DriverFault("no speaker: the notice cannot be played")
        try:
            start = self.speaker.play(self.samples, self.rate)
        except DriverFault:
            raise
        except DriverError as exc:
            raise DriverFault(f"speaker: {exc}") from exc
        return start, self.duration

    def outcome(self, start: float, played: bool = True) -> dict[str, Any]:
        """What the recording says of the notice started at loop time ``start``, once its
        time is over: given only when a real output confirmed it ran to its end
        (``"simulated"`` for the simulated speaker), and whether the microphone heard it.
        ``played`` is False when the speaker refused it (the microphone is asked anyway)."""
        out: dict[str, Any] = {}
        if played:
            report = self.speaker.report()
            problem = "the speaker reported nothing" if report is None else report.problem()
            if problem is not None:
                out.update(given=False, failed=f"{self.output} speaker: {problem}")
            else:
                out["given"] = "simulated" if report.simulated else True
            if report is not None:
                out["playback"] = report.as_dict()
        out["heard"] = self.ear.heard(self.samples, self.rate, start).as_dict()
        return out


# The notice's outcome in each reader's language: English for the technician (scenario
# summary, the signed report), French for the chief and a court (the desk, the report's page).
_SAY = {
    "en": {"none": "none", "skipped": "skipped ({})", "flagrant_delit": "skipped (flagrant delit)",
           "playing": "playing, not yet confirmed", "given": "given{}", "simulated": "simulated speaker only, not given{}",
           "failed": "NOT GIVEN: {} (agent told to say it aloud)", "not_given": "not given",
           "microphone": "; microphone: {}", "heard": "heard", "not_heard": "NOT heard", "unchecked": "not checked",
           "peak": " (correlation peak {}, lag {} ms)"},
    "fr": {"none": "Pas d'avertissement enregistré", "skipped": "Pas d'avertissement ({})",
           "flagrant_delit": "Flagrant délit : pas d'avertissement",
           "playing": "Avertissement en cours de diffusion, non confirmé", "given": "Avertissement donné{}",
           "simulated": "Avertissement non donné : haut-parleur simulé seulement{}",
           "failed": "Avertissement NON DONNÉ : {} (l'agent invité à le dire à voix haute)",
           "not_given": "Avertissement non donné", "microphone": " ; microphone : {}", "heard": "entendu",
           "not_heard": "NON entendu", "unchecked": "non vérifié", "peak": " (pic de corrélation {}, décalage {} ms)"},
}


def _number(value, language: str) -> str:
    """A number as the metadata holds it (any JSON value), with the French decimal comma."""
    return str(value).replace(".", ",") if language == "fr" and isinstance(value, float) else str(value)


def _length(duration, language: str) -> str:
    if not (isinstance(duration, int | float) and not isinstance(duration, bool) and math.isfinite(duration)):
        return ""
    if language == "fr" and duration >= 60:
        minutes, rest = divmod(int(round(duration)), 60)
        return f" ({minutes} min {rest:02d} s)"
    text = f"{duration:.1f}"
    return f" ({text.replace('.', ',') if language == 'fr' else text} s)"


def describe(notice: dict, language: str = "en") -> str:
    """A recording's notice in a reader's words: ``en`` for the scenario summary and the
    signed report, ``fr`` ("Avertissement donné (3,0 s)") for the desk and the report's page."""
    say = _SAY[language]
    if not isinstance(notice, dict) or not notice:
        return say["none"]
    if notice.get("skipped"):
        if notice["skipped"] == "flagrant_delit":
            return say["flagrant_delit"]
        return say["skipped"].format(str(notice["skipped"]).replace("_", " "))
    given, length = notice.get("given"), _length(notice.get("duration"), language)
    if notice.get("playing"):
        said = say["playing"]
    elif given is True:
        said = say["given"].format(length)
    elif given == "simulated":
        said = say["simulated"].format(length)
    elif notice.get("failed"):
        said = say["failed"].format(notice["failed"])
    else:
        said = say["not_given"]
    heard = notice.get("heard")
    if isinstance(heard, dict) and "verdict" in heard:
        said += say["microphone"].format({True: say["heard"], False: say["not_heard"]}.get(heard["verdict"],
                                                                                           say["unchecked"]))
        if heard["verdict"] is not None:
            said += say["peak"].format(_number(heard.get("peak"), language), _number(heard.get("lag_ms"), language))
        elif heard.get("why"):
            said += f" ({heard['why']})"
    return said
