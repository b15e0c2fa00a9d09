"""Putting the server together: recogniser + VAD + engine, the websocket server and the gRPC service in one
event loop; `BackgroundServer` runs the same in a thread (tests, benchmarks, notebooks)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import dataclass

from uniasr.serve.engine import Engine, EngineConfig
from uniasr.serve.grpc_service import GrpcOptions, start_grpc_server
from uniasr.serve.ws_server import WebSocketOptions, WebSocketServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    """vad: "silero" (default), "energy", "fsmn:<dir>", or None (no endpointing: one utterance per stream)."""

    model: str | None = None
    device: str = "cpu"
    vad: str | None = "silero"
    engine: EngineConfig = EngineConfig()
    websocket: WebSocketOptions = WebSocketOptions()
    grpc: GrpcOptions | None = None


def build_engine(options: ServeOptions, recognizer=None) -> Engine:
    import uniasr
    from uniasr.vad import load_vad

    rec = recognizer if recognizer is not None else uniasr.load(options.model, device=options.device)
    vad = load_vad(options.vad) if options.vad else None
    return Engine(rec, options.engine, vad=vad)


async def serve(
    engine: Engine, options: ServeOptions, started=None, stop: asyncio.Event | None = None
) -> None:
    """Run until `stop` is set (or forever). `started(ws_port, grpc_port)` is called once listening."""
    ws = WebSocketServer(engine, options.websocket)
    stop = stop or asyncio.Event()
    grpc_server = None
    engine.start()
    try:
        async with ws.serve() as server:
            ws.port = port = next(iter(server.sockets)).getsockname()[1]
            scheme = "wss" if options.websocket.certfile else "ws"
            log.info("websocket server on %s://%s:%d (page at /)", scheme, options.websocket.host, port)
            grpc_port = None
            if options.grpc is not None:
                grpc_server, grpc_port = await start_grpc_server(engine, options.grpc)
            if started is not None:
                started(port, grpc_port)
            await stop.wait()
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        engine.stop()


def run_forever(options: ServeOptions) -> None:
    """`uniasr serve`: build everything, serve until SIGINT/SIGTERM."""
    engine = build_engine(options)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(engine, options, stop=stop)

    asyncio.run(main())


class BackgroundServer:
    """The server in a daemon thread with its own loop. `with BackgroundServer(engine, options) as s:`
    gives `s.port` / `s.grpc_port`; leaving the block stops it."""

    def __init__(self, engine: Engine, options: ServeOptions, start_timeout: float = 30.0) -> None:
        self.engine, self.options, self.start_timeout = engine, options, start_timeout
        self.port: int | None = None
        self.grpc_port: int | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="uniasr-serve", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.engine, self.options, self._started, self._stop)

        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self._error = e
            self._ready.set()

    def _started(self, port: int, grpc_port: int | None) -> None:
        self.port, self.grpc_port = port, grpc_port
        self._ready.set()

    def start(self) -> BackgroundServer:
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise TimeoutError(f"server did not start within {self.start_timeout} s")
        if self._error is not None:
            raise RuntimeError(f"server failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
