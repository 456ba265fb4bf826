"""The technician's end of the serial link against a camera that answers anything: every
reply ends in success or a clear LinkError, within bounded time, never another exception,
never a loop on the camera's word."""

from __future__ import annotations

import json
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.simcable import PtyCable
from recorder.bundle import public_hex
from recorder.errors import LinkError
from recorder.link.protocol import Frame, Received, encode_frame
from tests.tech_device import FakeCamera, HonestCamera, make_config, reply, sign, technician
from tools.cli import main
from tools.link_client import CameraReplyError, FlashClient

PAYLOAD = bytes(range(256)) * 12  # three chunks of 1024 and a bit


def quick_client(url: str) -> FlashClient:
    return FlashClient(url, reply_timeout=0.05, result_timeout=0.1, retries=1, time_limit=1.0)


def test_an_honest_camera_takes_the_whole_transfer():
    honest = HonestCamera()
    with PtyCable() as cable, FakeCamera(cable.device_url, honest), quick_client(cable.host_url) as client:
        assert client.info()["camera_id"] == "CAM-SIM-001"
        assert client.send("bundle", PAYLOAD).code == "applied"
    assert honest.received == PAYLOAD


def test_a_camera_that_keeps_acknowledging_offset_0_is_given_up_on():
    honest = HonestCamera()

    def stuck(frame: Received) -> bytes:
        if frame.type == Frame.DATA:
            return reply(Frame.ACK, frame.seq, {"code": "ok", "offset": 0})
        return honest(frame)

    with PtyCable() as cable, FakeCamera(cable.device_url, stuck) as camera:
        client = FlashClient(cable.host_url, reply_timeout=0.5, retries=3)
        with pytest.raises(CameraReplyError, match=r"acknowledged offset 0 4 times .* b'\{\"code\": \"ok\""):
            client.send("bundle", PAYLOAD)
        client.close()
    assert sum(f.type == Frame.DATA for f in camera.frames) == 4


def test_a_transfer_has_a_time_limit_even_when_each_answer_comes_in_time():
    honest = HonestCamera()

    def crawling(frame: Received) -> bytes:
        if frame.type == Frame.DATA:  # one byte at a time, slowly: always progress, never done
            time.sleep(0.05)
            return reply(Frame.ACK, frame.seq, {"code": "ok", "offset": struct_offset(frame) + 1})
        return honest(frame)

    with PtyCable() as cable, FakeCamera(cable.device_url, crawling), \
            FlashClient(cable.host_url, reply_timeout=1.0, time_limit=1.0) as client:
        start = time.monotonic()
        with pytest.raises(LinkError, match="did not end within its time limit of 1 s"):
            client.send("bundle", PAYLOAD)
    assert time.monotonic() - start < 5  # ended by the limit, with margin for a busy machine


def struct_offset(frame: Received) -> int:
    return int.from_bytes(frame.payload[:4], "big")


BAD_REPLIES = {
    # name: (frame it answers, reply builder, what the message must show)
    "info not JSON": (Frame.INFO, lambda s: encode_frame(Frame.INFO_REPLY, s, b"\xff\xfe{"), "not UTF-8"),
    "info a list": (Frame.INFO, lambda s: reply(Frame.INFO_REPLY, s, [1, 2]), "expected a JSON object"),
    "info files not a list": (Frame.INFO, lambda s: reply(Frame.INFO_REPLY, s, {"files": "abc"}), "files 'abc'"),
    "info nested": (Frame.INFO, lambda s: encode_frame(Frame.INFO_REPLY, s, b"[" * 3000), "nested deeper"),
    "nak without code": (Frame.BEGIN, lambda s: reply(Frame.NAK, s, {"message": "no"}), "no reason code"),
    "nak with extra fields": (Frame.BEGIN, lambda s: reply(Frame.NAK, s, {"code": 7, "x": 1}), "no reason code"),
    "nak claiming success": (Frame.BEGIN, lambda s: reply(Frame.NAK, s, {"code": "applied"}), "code of a success"),
    "ack without offset": (Frame.DATA, lambda s: reply(Frame.ACK, s, {"code": "ok"}), "offset None"),
    "ack offset text": (Frame.DATA, lambda s: reply(Frame.ACK, s, {"offset": "1024"}), "offset '1024'"),
    "ack offset beyond": (Frame.DATA, lambda s: reply(Frame.ACK, s, {"offset": 10**9}), "offset 1000000000"),
    "ack offset huge": (Frame.DATA, lambda s: encode_frame(Frame.ACK, s, b'{"offset":' + b"9" * 4000 + b"}"),
                        "4000 digits"),
    "result a string": (Frame.END, lambda s: reply(Frame.RESULT, s, "applied"), "expected a JSON object"),
    "result message not text": (Frame.END, lambda s: reply(Frame.RESULT, s, {"code": "applied", "message": [1]}),
                                "message that is not text"),
    "info answered by result": (Frame.INFO, lambda s: reply(Frame.RESULT, s, {"code": "applied"}),
                                "answered INFO with RESULT"),
}


@pytest.mark.parametrize("case", sorted(BAD_REPLIES))
def test_pieton_config_flash_names_each_malformed_reply_and_exits_2(case, tmp_path, chief, capsys):
    _, tech = technician(tmp_path)
    _, recipient = chief
    bundle = tmp_path / "v1.pbn"
    bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient), tech, 1))
    answers, build, shows = BAD_REPLIES[case]
    honest = HonestCamera()

    def camera(frame: Received) -> bytes:
        return build(frame.seq) if frame.type == answers else honest(frame)

    with PtyCable() as cable, FakeCamera(cable.device_url, camera):
        code = main(["config", "flash", str(bundle), "--port", cable.host_url])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the camera does not follow the protocol" in err and shows in err
    assert "Traceback" not in err


def test_a_camera_that_cannot_answer_info_is_a_link_failure(tmp_path, chief, capsys):
    _, tech = technician(tmp_path)
    _, recipient = chief
    bundle = tmp_path / "v1.pbn"
    bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient), tech, 1))

    def camera(frame: Received) -> bytes:
        return reply(Frame.NAK, frame.seq, {"code": "internal-error", "message": "OSError: \x1b[2Jgone"})

    with PtyCable() as cable, FakeCamera(cable.device_url, camera):
        assert main(["config", "flash", str(bundle), "--port", cable.host_url]) == 1
    err = capsys.readouterr().err
    assert "the camera could not say what it holds: [internal-error] OSError: ?[2Jgone" in err  # no escape codes


# -- any reply at all --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
near_valid = st.fixed_dictionaries({}, optional={
    "code": st.sampled_from(["ok", "applied", "queued", "bad-checksum", "truncated-frame", "oversize",
                             "unknown-kind", "Bad Code", ""]) | json_values,
    "message": st.text(max_size=20) | json_values,
    "offset": st.integers(-3, 4000) | st.sampled_from([0, 1024, 2048, 3072, len(PAYLOAD)]) | json_values,
    "files": st.lists(st.text(max_size=8), max_size=2) | json_values,
    "camera_id": st.text(max_size=10) | json_values,
    "assignment_counter": st.integers(-3, 10**12) | json_values,
})
payloads = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"[" * 4000, b'{"offset":' + b"9" * 4000 + b"}", b'{"code":NaN}', b'{"a":1,"a":2}']),
)
# each answer: silence, honest, raw bytes, or a frame of any type for this seq or another
answers = st.one_of(
    st.just("silent"),
    st.just("honest"),
    st.binary(min_size=1, max_size=80),
    st.tuples(st.sampled_from(list(Frame)), st.sampled_from(["same", "next", "zero"]), payloads),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(answers, max_size=6), then=st.sampled_from(["honest", "silent", "repeat"]))
def test_any_reply_ends_in_success_or_a_link_error(script, then):
    honest = HonestCamera()
    queue = list(script)
    last = ["honest"]

    def camera(frame: Received) -> bytes | None:
        step = queue.pop(0) if queue else (last[0] if then == "repeat" else then)
        last[0] = step
        if step == "silent":
            return None
        if step == "honest":
            return honest(frame)
        if isinstance(step, bytes):
            return step
        ftype, which, payload = step
        seq = {"same": frame.seq, "next": frame.seq + 1, "zero": 0}[which]
        return encode_frame(ftype, seq, payload)

    outcome: list = []

    def technician_side(client: FlashClient) -> None:
        try:
            client.info()
            outcome.append(client.send("bundle", PAYLOAD))
        except LinkError as exc:
            outcome.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome.append(("unexpected", exc))

    with PtyCable() as cable, FakeCamera(cable.device_url, camera), quick_client(cable.host_url) as client:
        worker = threading.Thread(target=technician_side, args=(client,), daemon=True)
        worker.start()
        worker.join(timeout=30)  # info: 2 tries of 0.05 s; the transfer: its 1 s limit; and margin
        assert not worker.is_alive(), "the client did not end"
    [result] = outcome
    assert not isinstance(result, tuple), f"{type(result[1]).__name__}: {result[1]}"
    if isinstance(result, LinkError):
        assert str(result)
    else:
        assert isinstance(result.code, str) and isinstance(result.message, str)
        assert result.message == "" or result.message.isprintable()
