"""gRPC service (`asr.proto`): bidirectional streaming `Recognize` and unary `RecognizeFile`, on the same
:class:`~uniasr.serve.engine.Engine` (model worker, sessions) as the websocket server, in the same event
loop (``grpc.aio``). Stubs are built from the .proto at run time (``grpc.protos_and_services``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from functools import cache

import numpy as np

from uniasr.audio.errors import AudioError
from uniasr.audio.probe import audio_duration_seconds
from uniasr.serve.engine import Delivery, Engine, LimitError, StreamRequest, decode_file
from uniasr.serve.protocol import FUNASR_MODES, MAX_AUDIO_FS, MIN_AUDIO_FS
from uniasr.stream.session import StreamEvent

log = logging.getLogger(__name__)

PROTO = "uniasr/serve/asr.proto"
MODES = {"": "normal", "fast": "fast", "normal": "normal", "offline": "offline", **FUNASR_MODES}


@cache
def load_proto():
    """(messages module, services module) built from `asr.proto`."""
    try:
        import grpc
    except ImportError as e:
        raise ImportError(
            "the gRPC service needs grpcio and grpcio-tools: pip install 'uniasr[serve]'"
        ) from e
    return grpc.protos_and_services(PROTO)


@dataclass(frozen=True)
class GrpcOptions:
    host: str = "127.0.0.1"
    port: int = 10096
    token: str | None = None  # metadata "authorization: Bearer <token>" or "x-uniasr-token: <token>"
    certfile: str | None = None
    keyfile: str | None = None
    max_streams: int = 64
    max_file_bytes: int = 64 << 20
    idle_timeout_s: float = 60.0
    max_backlog_s: float = 30.0  # audio queued but not yet decoded before the stream stops being read


class _Abort(Exception):
    def __init__(self, code, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _mode(name: str, default: str):
    import grpc

    key = name or default
    if key not in MODES:
        raise _Abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"mode={name!r}; valid: fast, normal, offline, online, 2pass"
        )
    return MODES[key]


def _rate(rate: int, default: int = 16000) -> int:
    import grpc

    rate = rate or default
    if not MIN_AUDIO_FS <= rate <= MAX_AUDIO_FS:
        raise _Abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"sample_rate={rate}; valid: {MIN_AUDIO_FS}..{MAX_AUDIO_FS} Hz"
        )
    return rate


def _status(error_kind: str):
    """A `Delivery.error_kind` -> the gRPC status code."""
    import grpc

    codes = {"limit": grpc.StatusCode.RESOURCE_EXHAUSTED, "internal": grpc.StatusCode.INTERNAL}
    return codes.get(error_kind, grpc.StatusCode.INVALID_ARGUMENT)


class RecognizerService:
    """The servicer: methods named as in `asr.proto`."""

    def __init__(self, engine: Engine, options: GrpcOptions = GrpcOptions()) -> None:
        self.engine, self.options = engine, options
        self.pb, _ = load_proto()

    async def _authorize(self, context) -> None:
        import grpc

        expected = self.options.token
        if not expected:
            return
        meta = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        given = meta.get("x-uniasr-token", "")
        auth = meta.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(str(given).encode(), expected.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

    def _open(self, request: StreamRequest):
        loop = asyncio.get_running_loop()
        deliveries: asyncio.Queue = asyncio.Queue()
        handle = self.engine.open_stream(
            request, lambda d: loop.call_soon_threadsafe(deliveries.put_nowait, d)
        )
        return handle, deliveries

    def _event(self, e: StreamEvent):
        pb = self.pb
        return pb.RecognizeEvent(
            kind=e.kind,
            text=e.text,
            tokens=list(e.tokens),
            timestamps=[pb.TimeSpan(start_ms=a, end_ms=b) for a, b in e.timestamps],
            start_ms=e.start_ms,
            end_ms=e.end_ms,
            utterance=e.utterance,
            is_final=e.kind == "final",
            score=e.result.score if e.result is not None else 0.0,
        )

    def _hotwords(self, text: str):
        """A request's hotwords -> its ContextGraph; a bad list is INVALID_ARGUMENT naming the phrase."""
        import grpc

        try:
            return self.engine.hotword_graph(text)
        except ValueError as e:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"hotwords: {e}") from None

    async def Recognize(self, request_iterator, context):  # noqa: N802 - the proto's name
        import grpc

        await self._authorize(context)
        requests = request_iterator.__aiter__()
        try:
            first = await asyncio.wait_for(requests.__anext__(), self.options.idle_timeout_s)
            if first.WhichOneof("request") != "config":
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a StreamConfig")
            cfg = first.config
            key = f"grpc/{cfg.key or 'stream'}"
            request = StreamRequest(_mode(cfg.mode, "normal"), cfg.itn, key, self._hotwords(cfg.hotwords))
            rate = _rate(cfg.sample_rate)
        except _Abort as e:
            await context.abort(e.code, e.message)
        except (StopAsyncIteration, asyncio.TimeoutError):
            return
        log.info("grpc stream %s: mode=%s sample_rate=%d", request.key, request.mode, rate)
        handle, deliveries = self._open(request)
        reader = asyncio.create_task(self._read(requests, handle, rate, deliveries))
        try:
            while True:
                d: Delivery = await deliveries.get()
                if d.error is not None:
                    await context.abort(_status(d.error_kind), d.error)
                for event in d.events:
                    yield self._event(event)
                if d.ended:
                    yield self.pb.RecognizeEvent(kind="end", is_final=True)
                    return
        finally:
            reader.cancel()
            handle.close()

    async def _read(self, requests, handle, rate: int, deliveries: asyncio.Queue) -> None:
        carry = b""
        received = 0  # samples
        backlog_limit = self.options.max_backlog_s * rate
        try:
            while True:
                try:
                    req = await asyncio.wait_for(requests.__anext__(), self.options.idle_timeout_s)
                except StopAsyncIteration:
                    break
                kind = req.WhichOneof("request")
                if kind == "end":
                    break
                if kind != "audio":
                    raise ValueError("a StreamConfig after the first message; send audio or end")
                received += len(req.audio) // 2
                self.engine.check_duration(received / rate, handle.request.key)  # before any conversion
                data = carry + req.audio
                usable = len(data) - len(data) % 2
                carry = data[usable:]
                if usable:
                    handle.push(np.frombuffer(data[:usable], dtype="<i2").astype(np.int16), rate)
                while handle.backlog_samples > backlog_limit and not handle.closed:
                    await asyncio.sleep(0.02)  # backpressure: stop reading until the model catches up
            handle.finish()
        except asyncio.TimeoutError:
            deliveries.put_nowait(
                Delivery(error=f"idle for {self.options.idle_timeout_s:g} s", error_kind="limit")
            )
        except LimitError as e:
            deliveries.put_nowait(Delivery(error=str(e), error_kind="limit"))
        except ValueError as e:
            deliveries.put_nowait(Delivery(error=str(e)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the client went away mid-stream
            log.info("grpc stream %s: request stream ended: %s", handle.request.key, type(e).__name__)
            handle.close()

    async def RecognizeFile(self, request, context):  # noqa: N802 - the proto's name
        import grpc

        await self._authorize(context)
        key = request.key or "file"
        try:
            mode = _mode(request.mode, "offline")
            if request.sample_rate:
                rate = _rate(request.sample_rate)
                if len(request.audio) % 2:
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT, f"raw PCM16 of odd length {len(request.audio)}"
                    )
                self.engine.check_duration(len(request.audio) / 2 / rate, key)  # before any conversion
                samples = np.frombuffer(request.audio, dtype="<i2").astype(np.int16)
            else:
                rate = 16000
                seconds = await asyncio.to_thread(audio_duration_seconds, request.audio)  # the header only
                self.engine.check_duration(seconds, key)
                samples = await asyncio.to_thread(decode_file, request.audio)
                self.engine.check_duration(len(samples) / rate, key)  # a header without a length
        except _Abort as e:
            await context.abort(e.code, e.message)
        except LimitError as e:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        except AudioError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        try:
            hotwords = self._hotwords(request.hotwords)
        except _Abort as e:
            await context.abort(e.code, e.message)
        handle, deliveries = self._open(StreamRequest(mode, request.itn, f"grpc/{key}", hotwords))
        handle.push(samples, rate)
        handle.finish()
        finals: list[StreamEvent] = []
        try:
            while True:
                d = await deliveries.get()
                if d.error is not None:
                    await context.abort(_status(d.error_kind), d.error)
                finals += [e for e in d.events if e.kind == "final"]
                if d.ended:
                    break
        finally:
            handle.close()
        pb = self.pb
        segments = [
            pb.Segment(
                start_ms=e.start_ms,
                end_ms=e.end_ms,
                text=e.text,
                timestamps=[pb.TimeSpan(start_ms=a, end_ms=b) for a, b in e.timestamps],
                score=e.result.score if e.result is not None else 0.0,
            )
            for e in finals
        ]
        text = "".join(e.text for e in finals)
        return pb.RecognizeFileResponse(key=key, text=text, segments=segments, duration_s=len(samples) / rate)


async def start_grpc_server(engine: Engine, options: GrpcOptions):
    """Start a `grpc.aio` server in the running loop; returns (server, bound port)."""
    import grpc

    _, services = load_proto()
    server = grpc.aio.server(
        maximum_concurrent_rpcs=options.max_streams,
        options=[
            ("grpc.max_receive_message_length", options.max_file_bytes),
            ("grpc.max_send_message_length", 16 << 20),
        ],
    )
    services.add_RecognizerServicer_to_server(RecognizerService(engine, options), server)
    address = f"{options.host}:{options.port}"
    if options.certfile:
        with open(options.keyfile or options.certfile, "rb") as k, open(options.certfile, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"gRPC: cannot bind {address}")
    await server.start()
    log.info("gRPC service on %s:%d%s", options.host, port, " (TLS)" if options.certfile else "")
    return server, port
