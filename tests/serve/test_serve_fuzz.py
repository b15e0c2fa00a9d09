"""Property-based tests (hypothesis) of what websocket clients send: start and control messages with any JSON
value in any field (NaN, inf, huge numbers, lone surrogates, nested objects). The invariant: a clear 1007
(1003 for a bad wav_format) naming the field, or a normal result; never a 1011, never a crash, never a
lost neighbour connection."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("websockets")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from conftest import INPUTS, wait_until  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.app import BackgroundServer, ServeOptions  # noqa: E402
from uniasr.serve.client import to_pcm16  # noqa: E402
from uniasr.serve.engine import Engine  # noqa: E402
from uniasr.serve.protocol import (  # noqa: E402
    ProtocolError,
    end_message,
    event_message,
    parse_json,
    parse_start,
)
from uniasr.serve.ws_server import ServerLimits, WebSocketOptions, _encode  # noqa: E402
from uniasr.stream.session import StreamEvent  # noqa: E402

FIELDS = (
    "mode", "wav_name", "wav_format", "audio_fs", "itn", "chunk_size", "chunk_interval", "hotwords",
    "is_speaking", "encoder_chunk_look_back", "decoder_chunk_look_back",
)  # fmt: skip
LABELS = {"2pass": {"2pass-online", "2pass-offline"}, "online": {"online"}, "offline": {"offline"}}
FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(any_text, kids, max_size=3),
    max_leaves=6,
)
good_values = {
    "mode": st.sampled_from(["2pass", "online", "offline"]),
    "wav_name": st.text(max_size=20),
    "wav_format": st.sampled_from(["pcm", "PCM", "", None]),
    "audio_fs": st.sampled_from([16000, 16000.0, 8000]),
    "itn": st.booleans(),
    "chunk_size": st.sampled_from([[5, 10, 5], "5,10,5", [0, 8, 4]]),
    "chunk_interval": st.integers(1, 20),
    "hotwords": st.sampled_from(["", '{"東京": 20}', {"大阪": 1.5}]),
    "is_speaking": st.just(True),
    "encoder_chunk_look_back": st.integers(0, 10),
    "decoder_chunk_look_back": st.integers(0, 10),
}
start_messages = st.fixed_dictionaries(
    {}, optional={k: good_values[k] | json_values for k in FIELDS} | {"extra": json_values}
)
control_messages = st.fixed_dictionaries(
    {},
    optional={
        "is_speaking": st.booleans() | json_values,
        "is_end": st.booleans() | json_values,
        "mode": json_values,
        "other": json_values,
    },
)


def to_json(msg: dict) -> str:
    """As a client would send it: NaN / Infinity literals, lone surrogates as \\ud800 escapes."""
    return json.dumps(msg, allow_nan=True)


@pytest.fixture(scope="module")
def server(tiny_recognizer):
    limits = ServerLimits(max_connections=16, idle_timeout_s=30.0)
    options = ServeOptions(websocket=WebSocketOptions(port=0, limits=limits))
    s = BackgroundServer(Engine(tiny_recognizer), options).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pcm() -> bytes:
    return to_pcm16(load_audio(INPUTS / "short_0_7s.wav")[:4800])  # 0.3 s


class Neighbour:
    """A connection streaming audio while the fuzzed ones come and go; it must finish normally."""

    def __init__(self, ws, pcm: bytes) -> None:
        self.ws = ws
        self.ws.send(json.dumps({"mode": "2pass", "wav_name": "neighbour"}))
        self.pcm, self.pos = pcm, 0

    def tick(self) -> None:
        piece = self.pcm[self.pos % len(self.pcm) : self.pos % len(self.pcm) + 960]
        self.ws.send(piece)
        self.pos += len(piece)

    def finish(self) -> list[dict]:
        self.ws.send(json.dumps({"is_speaking": False}))
        return recv_until_end(self.ws)


def send_all(ws, *messages) -> None:
    """Send until the server closes (it may, after an error reply to an earlier message)."""
    try:
        for m in messages:
            ws.send(m)
    except ConnectionClosed:
        pass


def recv_until_end(ws, timeout_s: float = 30.0) -> list[dict]:
    """Replies up to the end acknowledgement, an error, or the close."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not (out and (out[-1].get("is_end") or "error" in out[-1])):
            out.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    except ConnectionClosed:
        pass
    return out


def close_code(ws) -> int | None:
    """The server's close code once the connection is closed (waits up to 10 s)."""
    try:
        while True:
            ws.recv(timeout=10)
    except (ConnectionClosed, TimeoutError):
        pass
    return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd is not None else None


def check_outcome(replies: list[dict], code: int | None, mode: str, names: tuple[str, ...]) -> None:
    assert code != 1011, replies
    assert replies, f"no reply, close code {code}"
    if "error" in replies[-1]:
        error = replies[-1]["error"]
        if error.startswith(("wav_format", "binary audio")):  # binary: the start message also ended it
            assert code == 1003, (code, error)
            return
        named = any(error.startswith(n) for n in names)
        assert named or "still open" in error or "uploaded audio" in error, error  # undecodable upload
        assert code == 1007, (code, error)
    else:
        assert replies[-1].get("is_end") and code is None, (replies, code)
        assert {r["mode"] for r in replies} <= LABELS[mode], replies


# --- the parser alone: many examples, no sockets ------------------------------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(start_messages)
@example({"audio_fs": float("nan")})
@example({"audio_fs": float("inf")})
@example({"chunk_size": [5, float("inf"), 5]})
@example({"wav_name": "\ud800"})
@example({"mode": ["2pass"]})
@example({"hotwords": {"\udfff": 1}})
def test_parse_start_is_total(msg):
    """Any start message gives a StartMessage whose replies encode as UTF-8, or a ProtocolError naming
    one of its fields; nothing else is raised."""
    parsed = parse_json(to_json(msg))
    try:
        start = parse_start(parsed)
    except ProtocolError as e:
        assert any(str(e).startswith(k) for k in parsed), str(e)
        assert e.code in (1003, 1007)
        return
    event = StreamEvent("final", "テスト", ("テ",), ((0, 60),), 0, 100, 0)
    for reply in (event_message(start, event), end_message(start)):
        _encode(reply).encode("utf-8")
    assert start.session_mode in ("fast", "normal", "offline")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"audio_fs": 1e400}', "audio_fs=inf"),
        ('{"chunk_size": [5, 1e400, 5]}', "chunk_size=[5, inf, 5]"),
        ('{"audio_fs": NaN}', "audio_fs=nan"),
        ('{"audio_fs": -Infinity}', "audio_fs=-inf"),
        ('{"a": ' + "1" * 5000 + "}", "more than 4300 digits"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_parse_json_and_start_name_the_problem(text, fragment):
    with pytest.raises(ProtocolError, match=fragment.replace("[", r"\[")):
        parse_start(parse_json(text))


# --- over the socket: one server for the module, a neighbour stream throughout ------------------------------


def test_start_messages_over_the_socket(server, pcm):
    with connect(f"ws://127.0.0.1:{server.port}/") as nws:
        _fuzz_start_messages(server, pcm, Neighbour(nws, pcm))
    assert_released(server)


def _fuzz_start_messages(server, pcm, neighbour):

    @FUZZ
    @given(start_messages)
    @example({"mode": "2pass", "audio_fs": float("nan")})
    @example({"mode": "online", "audio_fs": float("inf")})
    @example({"mode": "2pass", "chunk_size": [5, float("inf"), 5]})
    @example({"mode": "offline", "wav_name": "\ud800"})
    @example({"mode": "2pass", "wav_name": "ok", "hotwords": {"a": [1]}})
    def run(msg):
        neighbour.tick()
        exchange(
            server,
            msg.get("mode", "2pass"),
            tuple(msg),
            to_json(msg),
            pcm,
            json.dumps({"is_speaking": False}),
        )

    run()
    finals = [r for r in neighbour.finish() if r.get("event") == "final"]
    assert finals and finals[-1]["wav_name"] == "neighbour"


def test_control_messages_over_the_socket(server, pcm):
    with connect(f"ws://127.0.0.1:{server.port}/") as nws:
        _fuzz_control_messages(server, pcm, Neighbour(nws, pcm))
    assert_released(server)


def _fuzz_control_messages(server, pcm, neighbour):

    @FUZZ
    @given(st.sampled_from(["2pass", "online", "offline"]), control_messages)
    @example("2pass", {"is_speaking": float("nan")})
    @example("online", {"is_end": "\ud800"})
    @example("offline", {"mode": {"nested": [1e300]}})
    @example("2pass", {"is_speaking": False, "mode": float("inf")})
    def run(mode, control):
        neighbour.tick()
        start = json.dumps({"mode": mode, "wav_name": "fuzz"})
        exchange(
            server, mode, tuple(control), start, pcm, to_json(control), json.dumps({"is_speaking": False})
        )

    run()
    assert neighbour.finish()[-1].get("is_end")


def exchange(server: BackgroundServer, mode: str, fields: tuple[str, ...], *frames: str | bytes) -> None:
    """One fuzz connection: send `frames`, read to the end, and check the outcome (see check_outcome)."""
    with connect(f"ws://127.0.0.1:{server.port}/") as ws:
        send_all(ws, *frames)
        replies = recv_until_end(ws)
        code = close_code(ws) if replies and "error" in replies[-1] else None
    check_outcome(replies, code, mode, fields)


def assert_released(s: BackgroundServer) -> None:
    wait_until(lambda: s.engine.open_streams == 0, 10, "the server to release every stream")
    assert s._thread.is_alive()


def test_surrogate_in_an_error_reason_is_sent():
    """A close reason built from client text that is not valid Unicode still goes out (no 1006)."""
    from uniasr.serve.ws_server import _close_reason

    assert _close_reason("bad \ud800 name").encode("utf-8")
    assert json.loads(_encode({"wav_name": "\ud800"})) == {"wav_name": "\ud800"}
