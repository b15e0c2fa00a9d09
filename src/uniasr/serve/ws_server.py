"""Websocket server speaking FunASR's 2pass protocol (see `uniasr.serve.protocol`), plus the web page.

One asyncio event loop holds every connection; it only parses messages, queues audio for the
:class:`~uniasr.serve.engine.Engine` (whose worker thread runs the model) and sends the results back, so
the loop never waits on the model. Plain HTTP GETs on the same port get the static page in ``web/``.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any

import numpy as np

from uniasr.audio.errors import AudioError
from uniasr.audio.probe import audio_duration_seconds
from uniasr.serve.engine import Delivery, Engine, LimitError, StreamHandle, StreamRequest, decode_file
from uniasr.serve.protocol import (
    CloseCode,
    ProtocolError,
    StartMessage,
    check_control,
    end_message,
    error_message,
    event_message,
    is_end_of_speech,
    offline_message,
    parse_json,
    parse_start,
)

log = logging.getLogger(__name__)

STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/worklet.js": ("worklet.js", "text/javascript; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'"
    ),
}
_ERROR_CODES = {"input": CloseCode.INVALID_DATA, "limit": CloseCode.POLICY, "internal": CloseCode.INTERNAL}


@dataclass(frozen=True)
class ServerLimits:
    """max_message_bytes: one websocket message (the library closes with 1009 above it); max_file_bytes: a
    non-PCM upload; idle_timeout_s: no message while no result is owed; max_backlog_s: audio queued but not
    yet decoded per stream before the server stops reading that socket (backpressure)."""

    max_connections: int = 64
    max_message_bytes: int = 1 << 20
    max_file_bytes: int = 64 << 20
    idle_timeout_s: float = 60.0
    max_backlog_s: float = 30.0


@dataclass(frozen=True)
class WebSocketOptions:
    host: str = "127.0.0.1"
    port: int = 10095
    limits: ServerLimits = ServerLimits()
    token: str | None = None  # shared secret: ?token=..., "Authorization: Bearer ..." or "X-Uniasr-Token"
    certfile: str | None = None
    keyfile: str | None = None
    web: bool = True  # serve the page at /


def token_ok(expected: str | None, path: str, headers: Any) -> bool:
    """Constant-time comparison of the token in the query, `Authorization: Bearer` or `X-Uniasr-Token`."""
    if not expected:
        return True
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    given = (query.get("token") or [""])[0]
    auth = headers.get("Authorization", "") or ""
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    given = given or headers.get("X-Uniasr-Token", "") or ""
    return hmac.compare_digest(given.encode(), expected.encode())


def static_file(name: str) -> bytes:
    return resources.files("uniasr.serve").joinpath("web").joinpath(name).read_bytes()


class WebSocketServer:
    """Accepts connections, checks token and capacity, serves the page, runs one `_Connection` each."""

    def __init__(self, engine: Engine, options: WebSocketOptions = WebSocketOptions()) -> None:
        self.engine, self.options = engine, options
        self.active = 0
        self.total = 0
        self._ids = itertools.count(1)
        self.port: int | None = None

    def process_request(self, connection, request):
        path = urllib.parse.urlsplit(request.path).path
        upgrade = "websocket" in (request.headers.get("Upgrade", "") or "").lower()
        if not upgrade:
            if self.options.web and path in STATIC_FILES:
                return self._static(connection, *STATIC_FILES[path])
            return connection.respond(HTTPStatus.NOT_FOUND, f"not found: {path}\n")
        if not token_ok(self.options.token, request.path, request.headers):
            log.warning("rejected %s: missing or wrong token", _peer(connection))
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        if self.active >= self.options.limits.max_connections:
            log.warning("rejected %s: %d connections open (max)", _peer(connection), self.active)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections, try later\n")
        return None

    def _static(self, connection, name: str, content_type: str):
        body = static_file(name)
        response = connection.respond(HTTPStatus.OK, "")
        response.body = body
        headers = {"Content-Length": str(len(body)), "Content-Type": content_type, **SECURITY_HEADERS}
        for k, v in headers.items():
            if k in response.headers:
                del response.headers[k]  # websockets' Headers is a multi-dict: setting a key adds a value
            response.headers[k] = v
        return response

    async def handler(self, ws) -> None:
        cid = next(self._ids)
        self.active += 1
        self.total += 1
        try:
            await _Connection(self, ws, cid).run()
        finally:
            self.active -= 1

    def serve(self):
        """`async with server.serve() as ws_server:` — the websockets Server (port 0 picks a free one)."""
        from websockets.asyncio.server import serve

        opts = self.options
        ssl_context = None
        if opts.certfile:
            import ssl

            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(opts.certfile, opts.keyfile)
        return serve(
            self.handler,
            opts.host,
            opts.port,
            process_request=self.process_request,
            max_size=opts.limits.max_message_bytes,
            compression=None,  # PCM does not compress; deflate would only cost CPU
            ssl=ssl_context,
            logger=_library_logger(),
        )


def _library_logger() -> logging.Logger:
    """The websockets library's own log (it logs every connection at INFO, which ours already does)."""
    logger = logging.getLogger("uniasr.serve.websockets")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger


def _peer(ws) -> str:
    addr = getattr(ws, "remote_address", None)
    return f"{addr[0]}:{addr[1]}" if addr else "?"


@dataclass
class _Stream:
    start: StartMessage
    handle: StreamHandle
    carry: bytes = b""  # an odd trailing byte of PCM16
    file_bytes: bytearray | None = None  # a container file being uploaded
    finals: list = field(default_factory=list)  # offline replies are sent once, at the end
    samples: int = 0
    rate: int = 16000
    t0: float = field(default_factory=time.monotonic)

    @property
    def aggregated(self) -> bool:
        return self.start.mode == "offline"


class _Connection:
    """One websocket: a receive loop (messages -> engine) and a send loop (outbox -> socket)."""

    def __init__(self, server: WebSocketServer, ws, cid: int) -> None:
        self.server, self.ws, self.cid = server, ws, cid
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.stream: _Stream | None = None  # the stream receiving audio
        self.in_flight: set[int] = set()  # streams finished by the client, results still owed
        self.handles: list[StreamHandle] = []
        self.last_activity = time.monotonic()
        self.closing = False
        self.name = f"conn {cid} ({_peer(ws)})"

    async def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        log.info("%s: open", self.name)
        sender = asyncio.create_task(self._send_loop())
        try:
            await self._receive_loop()
        except ProtocolError as e:
            log.warning("%s: %s", self.name, e)
            self._fail(str(e), e.code)
        except ConnectionClosed as e:
            rcvd = e.rcvd
            log.info("%s: closed by peer (%s)", self.name, f"code {rcvd.code}" if rcvd else "no close frame")
        except Exception:  # noqa: BLE001 - one connection's bug must not stop the server
            log.exception("%s: internal error", self.name)
            self._fail("internal server error", CloseCode.INTERNAL)
        finally:
            for h in self.handles:
                h.close()
            self.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sender, timeout=5.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                sender.cancel()
            log.info("%s: done (close code %s)", self.name, self.ws.close_code)

    # --- receiving ---------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        limits = self.server.options.limits
        while not self.closing:
            remaining = limits.idle_timeout_s - (time.monotonic() - self.last_activity)
            if self.in_flight:
                remaining = max(remaining, 1.0)  # results are owed: the client may just be waiting
            try:
                msg = await asyncio.wait_for(self.ws.recv(), timeout=max(remaining, 0.01))
            except asyncio.TimeoutError:
                if self.in_flight or time.monotonic() - self.last_activity < limits.idle_timeout_s:
                    continue
                raise ProtocolError(
                    f"idle for {limits.idle_timeout_s:g} s (no message); closing", CloseCode.POLICY
                ) from None
            self.last_activity = time.monotonic()
            if isinstance(msg, str):
                await self._on_text(msg)
            else:
                await self._on_binary(msg)

    async def _on_text(self, text: str) -> None:
        msg = parse_json(text)
        check_control(msg)
        if self.stream is None:
            if is_end_of_speech(msg) and "mode" not in msg:
                log.debug("%s: end of speech without an open stream; ignored", self.name)
                return
            self._open(parse_start(msg))
            if msg.get("is_speaking") is False:
                await self._finish()
        elif is_end_of_speech(msg):
            await self._finish()
        elif "mode" in msg:
            raise ProtocolError(
                f'stream {self.stream.start.wav_name!r} is still open; send {{"is_speaking": false}} first'
            )

    def _open(self, start: StartMessage) -> None:
        mode = start.session_mode  # a file is decoded at the end, then run in the mode asked for
        try:
            hotwords = self.server.engine.hotword_graph(start.hotwords)
        except ValueError as e:  # uniasr.hotwords.HotwordError: names the phrase
            raise ProtocolError(f"hotwords: {e}") from None
        key = f"{self.name}/{start.wav_name}"
        request = StreamRequest(mode=mode, itn=start.itn, key=key, hotwords=hotwords)
        stream_box: list[_Stream] = []
        handle = self.server.engine.open_stream(
            request, lambda d: self.loop.call_soon_threadsafe(self._on_delivery, stream_box[0], d)
        )
        stream = _Stream(start, handle, file_bytes=None if start.is_pcm else bytearray())
        stream.rate = start.audio_fs if start.is_pcm else 16000
        stream_box.append(stream)
        self.stream = stream
        self.handles.append(handle)
        log.info(
            "%s: stream %r mode=%s (ours: %s) format=%s audio_fs=%d itn=%s",
            self.name, start.wav_name, start.mode, mode, start.wav_format, start.audio_fs, start.itn,
        )  # fmt: skip

    async def _on_binary(self, data: bytes) -> None:
        stream = self.stream
        if stream is None:
            raise ProtocolError(
                f"binary audio ({len(data)} bytes) before the start message; send the JSON start message "
                '(e.g. {"mode": "2pass", "audio_fs": 16000, "wav_format": "pcm"}) first',
                CloseCode.UNSUPPORTED_DATA,
            )
        if stream.file_bytes is not None:
            if len(stream.file_bytes) + len(data) > self.server.options.limits.max_file_bytes:
                raise ProtocolError(
                    f"uploaded file exceeds max_file_bytes={self.server.options.limits.max_file_bytes}",
                    CloseCode.POLICY,
                )
            stream.file_bytes += data
            return
        data = stream.carry + data
        usable = len(data) - len(data) % 2
        stream.carry = data[usable:]
        if usable == 0:
            return
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        stream.samples += len(samples)
        stream.handle.push(samples, stream.start.audio_fs)
        limit = self.server.options.limits.max_backlog_s * stream.start.audio_fs
        while stream.handle.backlog_samples > limit and not self.closing:
            await asyncio.sleep(0.02)  # backpressure: stop reading until the model catches up

    async def _finish(self) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        self.in_flight.add(stream.handle.id)
        if stream.file_bytes is not None:
            data, stream.file_bytes = bytes(stream.file_bytes), None
            try:
                seconds = await asyncio.to_thread(audio_duration_seconds, data)
                self.server.engine.check_duration(seconds, stream.start.wav_name)
                samples = await asyncio.to_thread(decode_file, data)
            except LimitError as e:
                raise ProtocolError(str(e), CloseCode.POLICY) from None
            except AudioError as e:
                raise ProtocolError(f"{stream.start.wav_name}: {e}") from None
            stream.samples = len(samples)
            stream.handle.push(samples, 16000)
        stream.handle.finish()

    # --- sending -----------------------------------------------------------------------------------------

    def _on_delivery(self, stream: _Stream, d: Delivery) -> None:
        """Worker results (on the loop thread now) -> replies in the outbox."""
        if self.closing:
            return
        if d.error is not None:
            self._fail(
                f"{stream.start.wav_name}: {d.error}", _ERROR_CODES.get(d.error_kind, CloseCode.INTERNAL)
            )
            return
        self.last_activity = time.monotonic()
        if stream.aggregated:
            stream.finals += [e for e in d.events if e.kind == "final"]
        else:
            for e in d.events:
                self.outbox.put_nowait(event_message(stream.start, e))
        if d.ended:
            if stream.aggregated:
                self.outbox.put_nowait(offline_message(stream.start, stream.finals))
            self.outbox.put_nowait(end_message(stream.start))
            self.in_flight.discard(stream.handle.id)
            seconds = stream.samples / stream.rate
            log.info(
                "%s: stream %r done: %.1f s audio in %.1f s",
                self.name, stream.start.wav_name, seconds, time.monotonic() - stream.t0,
            )  # fmt: skip

    def _fail(self, message: str, code: int) -> None:
        """Queue `{"error": message}` and a close frame; the connection stops reading."""
        if self.closing:
            return
        self.closing = True
        wav_name = self.stream.start.wav_name if self.stream else None
        self.outbox.put_nowait(error_message(message, wav_name))
        self.outbox.put_nowait(("close", code, message))

    async def _send_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                item = await self.outbox.get()
                if item is None:
                    return
                if isinstance(item, tuple):
                    _, code, reason = item
                    await self.ws.close(code, _close_reason(reason))
                    return
                await self.ws.send(_encode(item))
        except ConnectionClosed:
            return


def _encode(msg: dict) -> str:
    """A reply as JSON text; one holding a string that is not valid Unicode is sent ASCII-escaped instead."""
    text = json.dumps(msg, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(msg)
    return text


def _close_reason(text: str) -> str:
    """Close reasons are limited to 123 bytes of UTF-8 (lone surrogates become "?")."""
    raw = text.encode("utf-8", errors="replace")[:120]
    return raw.decode(errors="ignore")
