"""The camera's end of the serial link against whatever a technician's end may send: every
whole frame is answered with a reason code, noise is skipped, the listener never dies, and
each transfer refused is journaled."""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.simcable import PtyCable
from recorder.bundle import MAGIC, public_hex
from recorder.evidence.age import generate_identity
from recorder.link.listener import SerialListener, device_listener
from recorder.link.protocol import Frame, FrameReader, Received, encode_frame
from tests.tech_device import make_config, make_device, technician

# No frame here stalls and no transfer goes silent, so the listener's "cut short" and
# "silent" limits are set far above any pause of a loaded machine (a 4 KB frame is written
# into the pty in pieces, each waiting for the test's thread); an answer is awaited as long.
FRAME_TIMEOUT_S = IDLE_TIMEOUT_S = ANSWER_TIMEOUT_S = 30.0

ANSWERS = {Frame.INFO: Frame.INFO_REPLY, Frame.BEGIN: Frame.ACK, Frame.DATA: Frame.ACK, Frame.END: Frame.RESULT,
           Frame.ABORT: Frame.ACK}


class Host:
    """The technician's end, frame by frame."""

    def __init__(self, url: str):
        self.port = serial.serial_for_url(url, timeout=0.05)
        self.reader = FrameReader(self.port)

    def ask(self, ftype: int, seq: int, payload: bytes = b"", timeout: float = ANSWER_TIMEOUT_S) -> Received | None:
        self.port.write(encode_frame(ftype, seq, payload))
        event = self.reader.read(timeout)
        assert not isinstance(event, Received) or event.seq == seq, event
        return event

    def transfer(self, kind: str, data: bytes, seq: int = 100) -> Received:
        begin = {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        ack = self.ask(Frame.BEGIN, seq, json.dumps(begin).encode())
        assert ack.type == Frame.ACK, ack.json()
        for i, offset in enumerate(range(0, len(data), 1024), start=1):
            ack = self.ask(Frame.DATA, seq + i, struct.pack(">I", offset) + data[offset:offset + 1024])
            assert ack.type == Frame.ACK, ack.json()
        return self.ask(Frame.END, seq + 9999)

    def close(self) -> None:
        self.port.close()


@contextlib.contextmanager
def listening_camera(folder, recipient):
    """A camera whose listener answers on a pty cable, and the technician's end of it."""
    _, tech = technician(folder)
    device = make_device(folder / "device", make_config(folder / "running", [public_hex(tech)], recipient))
    with PtyCable() as cable:
        listener = device_listener(cable.device_url, device.updater, device.keeper, frame_timeout=FRAME_TIMEOUT_S,
                                   idle_timeout=IDLE_TIMEOUT_S).start()
        host = Host(cable.host_url)
        yield device, listener, host
        host.close()
        listener.close()


@pytest.fixture
def camera(tmp_path, chief):
    with listening_camera(tmp_path, chief[1]) as rig:
        yield rig


@pytest.mark.parametrize("payload, shows", [
    (b'{"kind":["bundle"],"size":3,"sha256":"' + b"0" * 64 + b'"}', "kind ['bundle'] is not a transfer name"),
    (b'{"kind":{"a":1},"size":3,"sha256":"00"}', "kind {'a': 1} is not a transfer name"),
    (b"[" * 2000 + b"]" * 2000, "nested deeper than 32 levels"),
    (b'{"kind":"bundle","size":' + b"9" * 3000 + b',"sha256":"00"}', "a number with 3000 digits"),
    (b'{"kind":"bundle","size":true,"sha256":"' + b"0" * 64 + b'"}', "size True is not a number of bytes"),
    (b'{"kind":"bundle","size":3,"sha256":"xyz"}', "sha256 'xyz' is not 64 hex digits"),
    (b'{"kind":"bundle","kind":"assignment"}', "key 'kind' appears twice"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_a_malformed_begin_is_refused_with_a_reason_and_journaled(camera, payload, shows):
    device, listener, host = camera
    nak = host.ask(Frame.BEGIN, 5, payload)
    assert nak is not None, "no answer"
    assert nak.type == Frame.NAK and nak.json()["code"] == "bad-frame" and shows in nak.json()["message"]
    [event] = device.events()
    assert event["event"] == "config refused"
    assert event["data"]["code"] == "bad-frame" and event["data"]["origin"] == "serial"
    assert host.ask(Frame.INFO, 6).type == Frame.INFO_REPLY  # still listening


def test_a_bundle_header_with_a_5000_digit_number_is_refused_and_journaled(camera):
    device, listener, host = camera
    header = b'{"format":1,"version":' + b"9" * 5000 + b"}"
    result = host.transfer("bundle", MAGIC + struct.pack(">I", len(header)) + header + bytes(64))
    assert result.type == Frame.RESULT and result.json()["code"] == "bad-format", result.json()
    assert "a number with 5000 digits" in result.json()["message"]
    [event] = device.events()
    assert event["event"] == "config refused" and event["data"]["code"] == "bad-format"


def test_a_deeply_nested_assignment_is_refused_and_journaled(camera):
    device, listener, host = camera
    result = host.transfer("assignment", b"[" * 2000)
    assert result.json()["code"] == "bad-format" and "nested deeper" in result.json()["message"]
    [event] = device.events()
    assert event["event"] == "assignment" and event["data"]["result"] == "refused"


def test_transfers_the_link_refuses_are_journaled_with_their_kind(camera):
    device, listener, host = camera
    other = hashlib.sha256(b"other").hexdigest()
    assert host.ask(Frame.BEGIN, 1, json.dumps({"kind": "firmware", "size": 3, "sha256": other}).encode()
                    ).json()["code"] == "unknown-kind"
    assert host.ask(Frame.BEGIN, 2, json.dumps({"kind": "bundle", "size": 10**9, "sha256": other}).encode()
                    ).json()["code"] == "oversize"
    assert host.ask(Frame.BEGIN, 3, json.dumps({"kind": "assignment", "size": 3, "sha256": other}).encode()
                    ).type == Frame.ACK
    assert host.ask(Frame.DATA, 4, struct.pack(">I", 0) + b"abc").type == Frame.ACK
    assert host.ask(Frame.END, 5).json()["code"] == "corrupted"
    assert host.ask(Frame.END, 5).json()["code"] == "corrupted"  # a resent END is answered, not redone
    events = [(e["event"], e["data"]["code"], e["data"]["transfer"]) for e in device.events()]
    assert events == [("config refused", "unknown-kind", "firmware"), ("config refused", "oversize", "bundle"),
                      ("assignment", "corrupted", "assignment")]
    # line-level trouble is not an attempt to change the camera: answered, not journaled
    assert host.ask(Frame.DATA, 6, b"\0\0\0\0x").json()["code"] == "no-transfer"
    assert host.ask(Frame.RESULT, 7, b"{}").json()["code"] == "bad-frame"
    assert len(device.events()) == 3
    assert listener.counts["refused"] == 3


def test_a_failing_info_or_handler_is_answered_internal_error(tmp_path):
    calls = []

    def info():
        calls.append("info")
        raise OSError("the state folder is gone")

    def handler(data):
        raise ValueError("x" * 5000)

    refused = []
    with PtyCable() as cable, SerialListener(cable.device_url, {"bundle": handler}, info,
                                             frame_timeout=FRAME_TIMEOUT_S, idle_timeout=IDLE_TIMEOUT_S,
                                             on_refused=lambda kind, answer: refused.append((kind, answer))
                                             ).start() as listener:
        host = Host(cable.host_url)
        nak = host.ask(Frame.INFO, 1)
        assert nak.type == Frame.NAK and nak.json()["code"] == "internal-error"
        assert "OSError: the state folder is gone" in nak.json()["message"]
        result = host.transfer("bundle", b"abc")
        assert result.json()["code"] == "internal-error" and len(result.json()["message"]) < 400
        assert host.ask(Frame.INFO, 2).type == Frame.NAK  # answered again: the listener lives
        assert listener.state == "listening" and listener.alive
        host.close()
    assert calls == ["info", "info"] and [(k, a.code) for k, a in refused] == [("bundle", "internal-error")]


# -- any frames at all ------------------------------------------------------------------------

_RIG: dict = {}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with listening_camera(tmp_path_factory.mktemp("listener-fuzz"), generate_identity()[1]) as camera:
        yield camera


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
begin_fields = {
    "kind": st.sampled_from(["bundle", "assignment", "firmware", "", "BUNDLE"]) | json_values,
    "size": st.integers(-2, 5000) | st.sampled_from([10**9, 2**63]) | json_values,
    "sha256": hex64 | json_values,
}
begins = (st.fixed_dictionaries(begin_fields) | st.fixed_dictionaries({}, optional=begin_fields)).map(
    lambda d: json.dumps(d).encode())
hostile = st.sampled_from([b"[" * 4000, b"{" * 2000, b'{"size":' + b"9" * 4000 + b"}", b'{"size":NaN}',
                           b'{"kind":"bundle","kind":"x"}'])
payloads = st.one_of(
    st.binary(max_size=80),
    begins,
    json_values.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.integers(0, 6000), st.binary(max_size=200)).map(lambda t: struct.pack(">I", t[0]) + t[1]),
    hostile,
)
frames = st.one_of(st.tuples(st.sampled_from(list(Frame)), st.integers(0, 0xFFFF), payloads),
                   st.tuples(st.just(Frame.BEGIN), st.integers(0, 0xFFFF), begins | hostile))
noise = st.binary(min_size=1, max_size=60).filter(lambda b: 0xA5 not in b)  # cannot start a frame
transfers = st.tuples(st.sampled_from(["bundle", "assignment"]), st.one_of(
    st.binary(max_size=3000),
    st.binary(max_size=200).map(lambda b: MAGIC + struct.pack(">I", len(b)) + b + bytes(64)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"[" * 2000, b'{"version":' + b"9" * 5000 + b"}"]).map(
        lambda h: MAGIC + struct.pack(">I", len(h)) + h + bytes(64)),
))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.one_of(frames, noise, transfers), min_size=1, max_size=6))
def test_every_frame_gets_an_answer_and_the_listener_lives(rig, steps):
    device, listener, host = rig
    for step in steps:
        if isinstance(step, bytes):  # noise: skipped, nothing answered
            host.port.write(step)
            assert host.reader.read(0.05) is None
        elif isinstance(step[0], str):  # a whole transfer of arbitrary bytes: refused with a code
            kind, data = step
            result = host.transfer(kind, data)
            assert result.type == Frame.RESULT and not result.json()["code"].startswith("internal")
        else:
            ftype, seq, payload = step
            reply = host.ask(ftype, seq, payload)
            assert isinstance(reply, Received), f"{Frame(ftype).name} {payload[:60]!r} got {reply}"
            assert reply.type in (ANSWERS.get(ftype), Frame.NAK), reply
            answer = reply.json()
            assert isinstance(answer, dict)
            if reply.type in (Frame.NAK, Frame.RESULT):
                assert isinstance(answer["code"], str) and answer["code"] != "internal-error", answer
    assert listener.state in ("listening", "receiving") and listener.alive
