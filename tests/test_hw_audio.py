import asyncio
import os
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from drivers.acoustics import Room
from drivers.errors import BadAudioFile, DriverFault, DriverUnavailable, UnknownBackend
from drivers.speaker import SounddeviceSpeaker, open_speaker
from recorder.clock import VirtualClockLoop
from recorder.config import DEFAULT_CONFIG, load_config
from recorder.errors import ConfigError
from recorder.notice import check_notice_audio, load_wav
from tests.conftest import copy_config_files


@pytest.fixture
def loop():
    loop = VirtualClockLoop(start=1000.0)
    yield loop
    loop.close()


def tone(freq, seconds, rate, level=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy(x, rate, freq, width=20.0):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return spectrum[(freqs > freq - width) & (freqs < freq + width)].sum() / spectrum.sum()


def test_room_ambience_is_quiet_deterministic_and_chunking_invariant():
    room = Room(seed=7)
    whole = room.render(12.0, 48000, 48000)
    parts = np.concatenate([room.render(12.0 + i * 0.1, 4800, 48000) for i in range(10)])
    assert whole.dtype == np.float32 and len(whole) == 48000
    np.testing.assert_allclose(whole, parts, atol=1e-6)
    np.testing.assert_array_equal(whole, Room(seed=7).render(12.0, 48000, 48000))
    assert not np.array_equal(whole, Room(seed=8).render(12.0, 48000, 48000))
    # Quiet background (no event forced): RMS well under -20 dBFS.
    quiet = Room(seed=7, events_per_minute=0).render(0.0, 48000, 48000)
    assert 0.001 < np.sqrt(np.mean(quiet ** 2)) < 0.02


def test_room_has_street_events_that_rise_above_the_background():
    room = Room(seed=3, events_per_minute=12)
    events = room.street_events(0.0, 120.0)
    assert len(events) >= 5 and {e.kind for e in events} <= set(Room.KINDS)
    loudest = max(events, key=lambda e: e.level)
    mid = loudest.start + loudest.duration / 2
    during = room.render(mid - 0.05, 4800, 48000)
    base = Room(seed=3, events_per_minute=0).render(mid - 0.05, 4800, 48000)
    assert np.sqrt(np.mean(during ** 2)) > 1.5 * np.sqrt(np.mean(base ** 2))


def test_room_mixes_played_sound_at_its_time_resampled_to_the_mic_rate():
    room = Room(seed=1, events_per_minute=0)
    room.play(tone(1000, 1.0, 22050), 22050, start_time=5.0)
    before = room.render(4.0, 48000, 48000)
    during = room.render(5.2, 24000, 48000)
    assert band_energy(before, 48000, 1000) < 0.01
    assert band_energy(during, 48000, 1000) > 0.9
    # The onset lands at the right sample of a render spanning it.
    span = room.render(4.9, 9600, 48000) - Room(seed=1, events_per_minute=0).render(4.9, 9600, 48000)
    onset = np.argmax(np.abs(span) > 1e-4)
    assert abs(onset - 4800) <= 1
    assert room.playing_at(5.5) is not None and room.playing_at(6.1) is None


def test_simulated_speaker_plays_into_room_without_blocking_and_can_fail(loop):
    room = Room(seed=2, events_per_minute=0)
    with open_speaker("simulated", None, loop=loop, room=room) as speaker:
        samples, rate = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
        start = speaker.play(samples, rate)
        assert start == loop.time() and speaker.playing
        assert speaker.duration(samples, rate) == pytest.approx(66904 / 22050)
        assert "playing" in repr(speaker)
        heard = room.render(start + 0.5, 48000, 48000)
        assert np.sqrt(np.mean(heard ** 2)) > 0.02
        loop.run_until_complete(asyncio.sleep(4.0))
        assert not speaker.playing
        speaker.fail(True)
        assert "failed" in repr(speaker)
        with pytest.raises(DriverFault):
            speaker.play(samples, rate)
        speaker.fail(False)
        # A new play cuts the one still playing, as a sound card does.
        first = speaker.play(tone(440, 2.0, 16000), 16000)
        loop.run_until_complete(asyncio.sleep(0.5))
        speaker.play(tone(880, 0.2, 16000), 16000)
        assert room.playbacks[-2].end == pytest.approx(first + 0.5)
    assert "closed" in repr(speaker)
    speaker.close()  # idempotent
    with pytest.raises(DriverFault):
        speaker.play(samples, rate)


def test_sounddevice_speaker_is_unavailable_without_an_output_device(loop):
    import sounddevice

    try:
        sounddevice.query_devices(kind="output")
    except sounddevice.PortAudioError:
        pass
    else:
        pytest.skip("this machine has a sound output device")
    with pytest.raises(DriverUnavailable, match="no audio output device"):
        open_speaker("sounddevice", None, loop=loop)
    with pytest.raises(DriverUnavailable):
        SounddeviceSpeaker(loop, device="no-such-card")


def test_unknown_speaker_backend_lists_valid_ones(loop):
    with pytest.raises(UnknownBackend, match="simulated, sounddevice"):
        open_speaker("bluetooth", None, loop=loop)


def write_wav(path, *, channels=1, width=2, rate=22050, frames=b""):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)


def test_load_wav_reads_shipped_notice_and_mixes_stereo(tmp_path):
    samples, rate = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    assert rate == 22050 and samples.dtype == np.float32 and 2.0 < len(samples) / rate < 5.0
    assert 0.05 < np.abs(samples).max() <= 1.0
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, channels=2, rate=8000, frames=struct.pack("<4h", 16384, 0, -32768, 32767))
    samples, rate = load_wav(stereo)
    assert rate == 8000
    np.testing.assert_allclose(samples, [0.25, -0.5 / 32768], atol=1e-6)


def test_load_wav_errors_name_the_file(tmp_path):
    with pytest.raises(BadAudioFile, match="missing.wav: notice audio file: not found"):
        load_wav(tmp_path / "missing.wav")
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    with pytest.raises(BadAudioFile, match="text.wav: not a PCM WAV"):
        load_wav(text)
    eight = tmp_path / "eight.wav"
    write_wav(eight, width=1, frames=b"\x80" * 100)
    with pytest.raises(BadAudioFile, match="eight.wav: 8-bit samples"):
        load_wav(eight)
    surround = tmp_path / "surround.wav"
    write_wav(surround, channels=6, frames=b"\x00" * 120)
    with pytest.raises(BadAudioFile, match="surround.wav: 6 channels"):
        load_wav(surround)
    empty = tmp_path / "empty.wav"
    write_wav(empty)
    with pytest.raises(BadAudioFile, match="empty.wav: the audio file holds no samples"):
        load_wav(empty)


def test_check_notice_audio_for_the_configuration_checker(tmp_path):
    assert check_notice_audio(load_config()) == []
    copy_config_files(tmp_path)
    write_wav(tmp_path / "notice-fr.wav", width=1, frames=b"\x80" * 100)
    (tmp_path / "pieton.toml").write_text(DEFAULT_CONFIG.read_text())
    # The configuration check runs it: loading such a configuration fails, naming the file.
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "pieton.toml")
    problems = info.value.problems
    assert len(problems) == 1 and "[notice] audio = 'notice-fr.wav'" in problems[0] and "8-bit" in problems[0]


def test_make_notice_regenerates_the_notice_from_the_configured_text(tmp_path):
    import shutil
    import subprocess

    if shutil.which("make") is None or shutil.which("espeak-ng") is None:
        pytest.fail("make and espeak-ng are needed (make system installs espeak-ng)")
    repo = DEFAULT_CONFIG.parent.parent
    config = tmp_path / "pieton.toml"
    config.write_text('[notice]\ntext = "Attention, vous êtes filmés par une caméra piéton de la police municipale."\n')
    out = tmp_path / "notice.wav"
    import sys

    done = subprocess.run(["make", "-s", "-C", str(repo), "notice", f"NOTICE_CONFIG={config}", f"NOTICE_WAV={out}",
                           f"NOTICE_PY={sys.executable}"], check=True, capture_output=True, timeout=60, text=True)
    assert "pieton" not in done.stderr and "vous êtes filmés" in done.stdout  # `pieton notice build` spoke
    samples, rate = load_wav(out)
    shipped, _ = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    assert rate == 22050 and len(samples) > 1.3 * len(shipped)  # the longer sentence was spoken
    assert np.sqrt(np.mean(samples ** 2)) > 0.02


PLAY_ON_NULL_CARD = r"""
import asyncio, json, time
from drivers.speaker import open_speaker
from recorder.notice import load_wav
from recorder.config import DEFAULT_CONFIG

async def main():
    loop = asyncio.get_running_loop()
    samples, rate = load_wav(DEFAULT_CONFIG.with_name("notice-fr.wav"))
    with open_speaker("sounddevice", None, loop=loop, device="pietonnull") as speaker:
        before = time.perf_counter()
        start = speaker.play(samples, rate)
        call_s = time.perf_counter() - before
        playing = speaker.playing
        await asyncio.sleep(0.2)
        speaker.stop()
        out = {"name": speaker.device_name, "call_s": call_s, "start_ahead": start - before,
               "playing": playing, "after_stop": speaker.playing, "repr": repr(speaker)}
    out["closed"] = repr(speaker)
    print(json.dumps(out))

asyncio.run(main())
"""


def test_sounddevice_speaker_plays_without_blocking_on_a_real_portaudio_device(tmp_path):
    """PortAudio and ALSA for real, on ALSA's null output plugin (this machine has no card)."""
    import json
    import subprocess
    import sys

    alsa = tmp_path / "asound.conf"
    alsa.write_text("</usr/share/alsa/alsa.conf>\n"
                    "pcm.pietonnull { type null hint { show on description \"pieton test output\" } }\n")
    if not (Path("/usr/share/alsa/alsa.conf")).is_file():
        pytest.skip("no ALSA configuration on this machine")
    env = {**os.environ, "ALSA_CONFIG_PATH": str(alsa)}
    result = subprocess.run([sys.executable, "-c", PLAY_ON_NULL_CARD], capture_output=True, text=True,
                            env=env, timeout=60, cwd=DEFAULT_CONFIG.parent.parent)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["name"] == "pietonnull"
    assert out["call_s"] < 0.5            # the 3 s notice is not played on the caller's time
    assert out["playing"] and not out["after_stop"]
    assert "idle" in out["repr"] and "closed" in out["closed"]
