"""Whatever arrives, the bundle reader and the frame reader answer with a reason code;
they never raise anything else and never accept altered bytes."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.bundle import REASONS, public_hex, read_bundle
from recorder.errors import BundleError
from recorder.link.protocol import BadFrame, Frame, FrameReader, encode_frame
from tests.tech_device import make_config, sign, technician

_CACHE: dict = {}


def good_bundle(tmp_path_factory) -> bytes:
    if "bundle" not in _CACHE:
        folder = tmp_path_factory.mktemp("fuzz")
        _, tech = technician(folder)
        from recorder.evidence.age import generate_identity
        config = make_config(folder / "cfg", [public_hex(tech)], generate_identity()[1])
        _CACHE["bundle"] = sign(config, tech, 1)
    return _CACHE["bundle"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_altered_bundle_is_refused_with_a_reason_code(tmp_path_factory, data):
    good = good_bundle(tmp_path_factory)
    kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    pos = data.draw(st.integers(0, len(good) - 1))
    if kind == "flip":
        bad = good[:pos] + bytes([good[pos] ^ data.draw(st.integers(1, 255))]) + good[pos + 1:]
    elif kind == "cut":
        bad = good[:pos]
    else:
        bad = good[:pos] + data.draw(st.binary(min_size=1, max_size=8)) + good[pos:]
    try:
        read_bundle(bad)
    except BundleError as exc:
        assert exc.code in REASONS
    else:
        raise AssertionError(f"altered bundle accepted ({kind} at {pos})")


class BytesPort:
    """Bytes already on the line, read as pyserial reads them."""

    def __init__(self, data: bytes):
        self.stream = io.BytesIO(data)
        self.timeout = 0

    @property
    def in_waiting(self) -> int:
        return len(self.stream.getbuffer()) - self.stream.tell()

    def read(self, n: int) -> bytes:
        return self.stream.read(n)


@settings(max_examples=200, deadline=None)
@given(noise=st.lists(st.binary(max_size=64), min_size=3, max_size=3),
       payloads=st.lists(st.binary(max_size=300), min_size=2, max_size=2))
def test_frames_are_found_between_any_garbage(noise, payloads):
    frames = [encode_frame(Frame.DATA, 1, payloads[0]), encode_frame(Frame.DATA, 2, payloads[1])]
    line = noise[0] + frames[0] + noise[1] + frames[1] + noise[2]
    reader = FrameReader(BytesPort(line), frame_timeout=0.0)
    got = []
    while (event := reader.read(0.0)) is not None:
        if isinstance(event, BadFrame):
            assert event.code in ("bad-checksum", "truncated-frame")
        else:
            got.append((event.type, event.seq, event.payload))
    real = [(Frame.DATA, 1, payloads[0]), (Frame.DATA, 2, payloads[1])]
    # a frame taken is always one that was sent: noise never passes the checksum as a frame
    assert all(frame in real for frame in got)
    if not any(0xA5 in n for n in noise):
        assert got == real  # without a false start in the noise, nothing is lost
