"""`uniasr serve` and `uniasr client`: argument parsers and run functions (registered in `uniasr.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model directory (FunASR 1.x or ModelScope 0.x)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=10095, help="websocket + web page port (0: any free port)")
    p.add_argument("--grpc-port", type=int, default=None, help="also serve gRPC (asr.proto) on this port")
    p.add_argument(
        "--vad", default="silero", help="endpointing VAD: silero (default), energy, fsmn:<dir>, none"
    )
    p.add_argument("--trailing-silence-ms", type=int, default=800, help="silence that ends an utterance")
    p.add_argument(
        "--max-utterance-s", type=float, default=60.0, help="longest utterance (cut there by the VAD)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument(
        "--workers", type=int, default=1, help="model worker threads sharing the streams (default 1)"
    )
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the model's, 5)")
    p.add_argument(
        "--batch-window-ms", type=float, default=0.0,
        help="after a model round, gather input this long so more streams share the next one",
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--max-connections", type=int, default=64)
    p.add_argument("--max-message-bytes", type=int, default=1 << 20, help="largest websocket message")
    p.add_argument("--max-file-mb", type=float, default=64.0, help="largest uploaded (non-PCM) file")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="close a connection silent this long (s)")
    p.add_argument(
        "--token-file",
        default=None,
        help="require this shared secret (file's first line); or set UNIASR_TOKEN. Clients send ?token=, "
        "'Authorization: Bearer' or X-Uniasr-Token (gRPC: authorization / x-uniasr-token metadata)",
    )
    p.add_argument("--certfile", default=None, help="TLS certificate (PEM): serve wss:// and TLS gRPC")
    p.add_argument("--keyfile", default=None, help="TLS private key (PEM)")
    p.add_argument("--no-web", dest="web", action="store_false", help="do not serve the page at /")


def _token(token_file: str | None) -> str | None:
    if token_file:
        lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise ValueError(f"--token-file {token_file}: the first line is empty")
        return token
    return os.environ.get("UNIASR_TOKEN") or None


def cmd_serve(args: argparse.Namespace) -> int:
    from uniasr.serve.app import ServeOptions, run_forever
    from uniasr.serve.engine import EngineConfig
    from uniasr.serve.grpc_service import GrpcOptions
    from uniasr.serve.ws_server import ServerLimits, WebSocketOptions

    if bool(args.certfile) != bool(args.keyfile):
        raise ValueError("TLS needs both --certfile and --keyfile")
    if args.grpc_port is not None:  # before the model loads: the websocket server needs no extra
        from uniasr.extras import require_extra

        require_extra("serve", "uniasr serve --grpc-port")
    token = _token(args.token_file)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        log.warning("serving on %s without a token: anyone who can reach it can use it", args.host)
    file_bytes = int(args.max_file_mb * (1 << 20))
    limits = ServerLimits(
        max_connections=args.max_connections,
        max_message_bytes=args.max_message_bytes,
        max_file_bytes=file_bytes,
        idle_timeout_s=args.idle_timeout,
    )
    tls = {"certfile": args.certfile, "keyfile": args.keyfile}
    grpc = None
    if args.grpc_port is not None:
        grpc = GrpcOptions(
            args.host, args.grpc_port, token, **tls, max_streams=args.max_connections,
            max_file_bytes=file_bytes, idle_timeout_s=args.idle_timeout,
        )  # fmt: skip
    options = ServeOptions(
        model=args.model,
        device=args.device,
        vad=None if args.vad.lower() == "none" else args.vad,
        engine=EngineConfig(
            threads=args.threads,
            workers=args.workers,
            max_utterance_s=args.max_utterance_s,
            beam_size=args.beam,
            trailing_silence_ms=args.trailing_silence_ms,
            min_round_interval_s=args.batch_window_ms / 1000,
        ),  # fmt: skip
        websocket=WebSocketOptions(args.host, args.port, limits, token, **tls, web=args.web),
        grpc=grpc,
    )
    run_forever(options)
    return 0


def client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", help="audio files to send, one stream each (none: --mic)")
    p.add_argument("--url", default="ws://127.0.0.1:10095", help="server address (ws:// or wss://)")
    p.add_argument("--mode", choices=["2pass", "online", "offline"], default="2pass")
    p.add_argument("--fast-forward", action="store_true", help="send as fast as possible, not in real time")
    p.add_argument(
        "--chunk-size", default="5,10,5", help="FunASR chunk_size (pieces of 60*chunk/interval ms)"
    )
    p.add_argument("--chunk-interval", type=int, default=10)
    p.add_argument("--itn", action="store_true", help="ask for inverse text normalisation of finals")
    p.add_argument("--send-file", action="store_true", help="send the file's bytes (wav_format = its suffix)")
    p.add_argument(
        "--mic", action="store_true", help="stream the microphone (needs sounddevice); Ctrl-C ends"
    )
    p.add_argument("--json", action="store_true", help="print every reply as a JSON line")
    p.add_argument("--token", default=None, help="shared secret (or UNIASR_TOKEN)")


def _printer(as_json: bool):
    def show(msg: dict, _t: float) -> None:
        if as_json:
            print(json.dumps(msg, ensure_ascii=False), flush=True)
        elif "error" in msg:
            print(f"ERROR: {msg['error']}", file=sys.stderr, flush=True)
        elif not msg.get("is_end"):
            span = msg.get("span", [0, 0])
            print(
                f"{msg['mode']:<14} {msg.get('event', ''):<8} {span[0]:>7}-{span[1]:<7} {msg['text']}",
                flush=True,
            )

    return show


def cmd_client(args: argparse.Namespace) -> int:
    from uniasr.serve.client import ClientOptions, read_for_streaming, stream_audio, stream_microphone

    sizes = tuple(int(x) for x in args.chunk_size.split(","))
    if len(sizes) != 3:
        raise ValueError(f"--chunk-size {args.chunk_size!r}: expected three numbers, e.g. 5,10,5")
    base = dict(
        mode=args.mode, chunk_size=sizes, chunk_interval=args.chunk_interval, itn=args.itn,
        realtime=not args.fast_forward, token=args.token or os.environ.get("UNIASR_TOKEN"),
    )  # fmt: skip
    show = _printer(args.json)
    if args.mic or not args.inputs:
        stop = asyncio.Event()

        async def run_mic() -> None:
            loop = asyncio.get_running_loop()
            import signal

            loop.add_signal_handler(signal.SIGINT, stop.set)
            await stream_microphone(args.url, ClientOptions(wav_name="microphone", **base), show, stop)

        try:
            asyncio.run(run_mic())
        except ImportError as e:
            log.error("%s", e)
            return 2
        return 0
    failed = 0
    for path in args.inputs:
        audio: bytes | np.ndarray
        if args.send_file:
            opts = ClientOptions(
                wav_name=Path(path).name, wav_format=Path(path).suffix.lstrip(".") or "wav", **base
            )
            audio = Path(path).read_bytes()
        else:
            opts = ClientOptions(wav_name=Path(path).name, **base)
            audio = read_for_streaming(path)
        replies = asyncio.run(stream_audio(args.url, audio, opts, on_message=show))
        failed += any("error" in r for r in replies)
    return 1 if failed else 0
