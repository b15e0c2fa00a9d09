"""`uniasr stream`: watch the two passes at work on a file (simulated real time) or a live microphone."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

import numpy as np

from uniasr.cli import add_context_args, add_text_arg, apply_context_args

COLOURS = {"partial": "\033[90m", "refresh": "\033[0m", "final": "\033[1m"}


def add_stream_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", help="audio file (omit with --mic)")
    p.add_argument("--model", default=None, help="model directory")
    p.add_argument("--mode", choices=["fast", "normal", "offline"], default="normal")
    p.add_argument("--beam", type=int, default=None, help="beam width (default 5)")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio piece size fed to the session")
    p.add_argument("--fast-forward", action="store_true", help="do not wait for real time")
    p.add_argument("--no-endpoint", action="store_true", help="treat the whole input as one utterance")
    p.add_argument("--trailing-silence-ms", type=int, default=800, help="silence that ends an utterance")
    p.add_argument("--max-utterance-s", type=float, default=30.0, help="forced end of an utterance")
    p.add_argument("--vad", default="silero", help="VAD for endpointing: silero, energy or fsmn:<dir>")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--mic", action="store_true", help="read the default microphone (needs `sounddevice`)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    add_text_arg(p)
    add_context_args(p)


def _print_event(e, fmt: str, wall_s: float, colour: bool) -> None:
    if fmt == "json":
        d = e.to_dict()
        d["wall_s"] = round(wall_s, 3)
        print(json.dumps(d, ensure_ascii=False), flush=True)
        return
    span = f"{e.start_ms / 1000:7.2f}-{e.end_ms / 1000:7.2f}s"
    text = e.text
    if colour:
        text = f"{COLOURS[e.kind]}{text}\033[0m"
    print(f"[{wall_s:7.2f}s] {e.kind:<8} utt {e.utterance:<3} {span}  {text}", flush=True)


def _pieces_from_file(path: str, rate: int, chunk: int):
    from uniasr.audio.decoding import load_audio

    audio = load_audio(path, rate)
    for pos in range(0, len(audio), chunk):
        yield audio[pos : pos + chunk]


def _pieces_from_mic(rate: int, chunk: int):
    try:
        import sounddevice as sd
    except ImportError as e:
        raise SystemExit("--mic needs the `sounddevice` package: pip install sounddevice") from e
    q: queue.Queue[np.ndarray] = queue.Queue()
    with sd.InputStream(
        samplerate=rate,
        channels=1,
        dtype="float32",
        blocksize=chunk,
        callback=lambda data, *_: q.put(data[:, 0].copy()),
    ):
        print("listening; Ctrl-C to stop", file=sys.stderr)
        try:
            while True:
                yield q.get()
        except KeyboardInterrupt:
            return


def run_stream(args: argparse.Namespace) -> int:
    import uniasr
    from uniasr.stream.endpoint import EndpointConfig
    from uniasr.stream.session import StreamingSession
    from uniasr.vad import load_vad

    if not args.mic and not args.input:
        raise ValueError("give an audio file, or --mic for the microphone")
    rec = uniasr.load(args.model, threads=args.threads, text_form=args.text)
    endpoint = None
    vad = None
    if not args.no_endpoint:
        endpoint = EndpointConfig(args.trailing_silence_ms, int(args.max_utterance_s * 1000))
        vad = load_vad(args.vad)
    hotwords = apply_context_args(rec, args)
    session = StreamingSession(
        rec, mode=args.mode, beam_size=args.beam, endpoint=endpoint, vad=vad, hotwords=hotwords
    )
    chunk = rec.sample_rate * args.chunk_ms // 1000
    pieces = (
        _pieces_from_mic(rec.sample_rate, chunk)
        if args.mic
        else _pieces_from_file(args.input, rec.sample_rate, chunk)
    )
    colour = args.format == "text" and sys.stdout.isatty()
    t0 = time.perf_counter()
    fed_s = 0.0
    for piece in pieces:
        if not args.fast_forward and not args.mic:
            time.sleep(max(0.0, fed_s - (time.perf_counter() - t0)))
        fed_s += len(piece) / rec.sample_rate
        for e in session.accept_waveform(piece):
            _print_event(e, args.format, time.perf_counter() - t0, colour)
    for e in session.finish():
        _print_event(e, args.format, time.perf_counter() - t0, colour)
    return 0
