"""Engine: model worker thread(s) that run the ready work of every open stream in shared model calls.

Transports (the websocket server, the gRPC service) open a :class:`StreamHandle` per stream and call its
``push`` / ``finish`` / ``close`` from any thread; these only queue commands. A worker thread owns its
streams' :class:`StreamingSession` objects: each round it takes the queued commands, feeds each session at
most ``max_push_s`` of audio (so one fast-forwarding client cannot starve the real-time ones), runs
``process_sessions`` once on all sessions that got input, and hands the events to each stream's ``sink``
(called on the worker thread; a sink must only queue, e.g. ``loop.call_soon_threadsafe``).

One worker (the default) batches every stream into one model call per round. ``workers=2`` splits the
streams between two threads (torch ops release the GIL), which uses two cores without intra-op threads.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from uniasr.audio.errors import AudioError
from uniasr.hotwords import HotwordLimits
from uniasr.pipeline import Recognizer
from uniasr.stream.endpoint import EndpointConfig
from uniasr.stream.session import StreamEvent, StreamingSession, process_sessions

log = logging.getLogger(__name__)

STATS_EVERY_S = 60.0
SERVER_HOTWORD_LIMITS = HotwordLimits(max_phrases=1000, max_chars=32)


@dataclass(frozen=True)
class EngineConfig:
    """threads: torch intra-op threads (process-wide); workers: model worker threads; max_push_s: audio fed
    to one session per round; max_utterance_s: without a VAD a longer utterance is an error (with one, it is
    cut there); min_round_interval_s: after a round with model work, gather input this long before the next
    one, so that more sessions share each model call (more throughput, up to this much more latency)."""

    threads: int = 1
    workers: int = 1
    max_push_s: float = 2.0
    max_utterance_s: float = 60.0
    beam_size: int | None = None
    trailing_silence_ms: int = 800
    min_round_interval_s: float = 0.0

    def __post_init__(self) -> None:
        if self.threads < 1 or self.workers < 1 or self.max_push_s <= 0 or self.max_utterance_s <= 0:
            raise ValueError(f"threads, workers, max_push_s and max_utterance_s must be positive: {self}")


@dataclass(frozen=True)
class StreamRequest:
    """mode: fast | normal | offline; itn: normalise final texts; key names the stream in logs."""

    mode: str = "normal"
    itn: bool = False
    key: str = "stream"
    hotwords: Any = None  # a ContextGraph from Engine.hotword_graph (None: no biasing)


@dataclass(frozen=True)
class Delivery:
    """What a worker hands a stream's sink after a round: new events, an error, or the end."""

    events: tuple[StreamEvent, ...] = ()
    error: str | None = None
    error_kind: str = "input"  # input (bad audio) | limit (a server limit) | internal
    ended: bool = False  # the last final of a finished stream has been delivered


Sink = Callable[[Delivery], object]


class LimitError(AudioError):
    """The stream went over a server limit (e.g. an utterance too long to decode without a VAD)."""


class StreamHandle:
    """A transport's side of one stream. Thread-safe; methods only queue work for its worker."""

    def __init__(self, worker: _Worker, stream_id: int, request: StreamRequest) -> None:
        self._worker, self.id, self.request = worker, stream_id, request
        self._lock = threading.Lock()
        self._backlog_samples = 0
        self._released = False
        self.closed = False

    def push(self, samples: np.ndarray, sample_rate: int) -> None:
        """Queue audio: int16 or float32 mono samples at `sample_rate` Hz."""
        if self.closed:
            return
        with self._lock:
            self._backlog_samples += len(samples)
        self._worker.put(("push", self.id, samples, sample_rate))

    def finish(self) -> None:
        """No more audio: the worker processes the rest, delivers the finals, then `Delivery(ended=True)`."""
        if not self.closed:
            self._worker.put(("finish", self.id))

    def close(self) -> None:
        """Drop the stream (client gone): no more deliveries."""
        if not self.closed:
            self.closed = True
            self._worker.put(("close", self.id))
        self._release()

    def _release(self) -> None:
        """The stream no longer counts towards its worker's load (closed, ended or failed)."""
        with self._lock:
            released, self._released = self._released, True
        if not released:
            self._worker.unassign()

    @property
    def backlog_samples(self) -> int:
        """Samples queued but not yet fed to the session (at their input rate)."""
        return self._backlog_samples

    def _consumed(self, n: int) -> None:
        with self._lock:
            self._backlog_samples -= n


class Engine:
    """The shared recogniser plus its worker thread(s). Use as a context manager or call start()/stop()."""

    def __init__(
        self, recognizer: Recognizer, config: EngineConfig = EngineConfig(), vad=None, endpoint=None
    ) -> None:
        self.rec, self.config = recognizer, config
        self.vad = vad
        self.endpoint = endpoint
        if vad is not None and endpoint is None:
            self.endpoint = EndpointConfig(
                trailing_silence_ms=config.trailing_silence_ms,
                max_utterance_ms=int(config.max_utterance_s * 1000),
            )
        self._workers = [_Worker(self, i) for i in range(config.workers)]
        self._ids = itertools.count(1)
        self._hotword_cache: dict[str, Any] = {}
        self._hotword_lock = threading.Lock()

    def start(self) -> Engine:
        if getattr(self.rec.backend, "name", "torch") == "torch":
            import torch

            torch.set_num_threads(self.config.threads)  # process-wide; the event loop never calls torch
        for w in self._workers:
            w.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for w in self._workers:
            w.stop(timeout)

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def open_streams(self) -> int:
        return sum(len(w.works) for w in self._workers)

    @property
    def rounds(self) -> int:
        return sum(w.rounds for w in self._workers)

    @property
    def max_batch(self) -> int:
        return max(w.max_batch for w in self._workers)

    def check_duration(self, seconds: float | None, what: str) -> None:
        """Refuse, before it is decoded, audio known to be longer than one utterance may be without a VAD
        (`LimitError`); None (length unknown) passes: the worker's own limit still applies."""
        limit = self.config.max_utterance_s
        if self.vad is None and seconds is not None and seconds > limit:
            raise LimitError(
                f"{what}: {seconds:.1f} s of audio is longer than max_utterance_s={limit:g} s; without a VAD "
                "the server cannot cut it: send shorter audio or start the server with a VAD"
            )

    def hotword_graph(self, value: Any) -> Any:
        """A client's hotwords (FunASR's JSON text `{"phrase": weight}`, an object, or lines `phrase weight`)
        -> the ContextGraph its session searches with (None for none). Lists are cached by their text, so
        clients that send the same list share one graph and batch together. At most
        `SERVER_HOTWORD_LIMITS` phrases and characters a phrase; `HotwordError` (a ValueError) names a
        bad phrase."""
        from uniasr.hotwords import parse_hotwords

        if not value:
            return None
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        with self._hotword_lock:
            graph = self._hotword_cache.get(text)
            if graph is None:
                parsed = value
                if isinstance(value, str) and value.lstrip().startswith("{"):
                    try:
                        parsed = json.loads(value)
                    except json.JSONDecodeError:
                        parsed = value
                graph = self.rec.hotword_graph(parse_hotwords(parsed), limits=SERVER_HOTWORD_LIMITS)
                if len(self._hotword_cache) >= 64:
                    self._hotword_cache.clear()
                self._hotword_cache[text] = graph
        return graph

    def open_stream(self, request: StreamRequest, sink: Sink) -> StreamHandle:
        """A new stream on the least busy worker; `sink(delivery)` is called on that worker's thread."""
        from uniasr.model.modes import mode_settings

        mode_settings(request.mode)  # names a bad mode here, in the caller's thread
        worker = min(self._workers, key=lambda w: w.assigned)
        handle = StreamHandle(worker, next(self._ids), request)
        worker.put(("open", handle.id, handle, sink))
        return handle


@dataclass
class _Work:
    handle: StreamHandle
    session: StreamingSession
    sink: Sink
    pending: deque = field(default_factory=deque)  # (samples, rate)
    finishing: bool = False
    finished: bool = False
    dirty: bool = False


class _Worker:
    """One model thread and the sessions it owns."""

    def __init__(self, engine: Engine, index: int) -> None:
        self.engine, self.index = engine, index
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self.works: dict[int, _Work] = {}
        self.assigned = 0  # streams open on this worker (for choosing the least busy one)
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.rounds = 0  # rounds with model work
        self.max_batch = 0  # most sessions in one round
        self.batched = 0  # sessions processed, summed over rounds
        self.busy_s = 0.0
        self._logged = (0, 0, 0.0)

    def put(self, command: tuple) -> None:
        if command[0] == "open":
            with self._lock:
                self.assigned += 1
        self.commands.put(command)

    def unassign(self) -> None:
        with self._lock:
            self.assigned -= 1

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"uniasr-model-{self.index}", daemon=True)
            self.thread.start()

    def stop(self, timeout: float) -> None:
        if self.thread is not None:
            self.commands.put(("stop",))
            self.thread.join(timeout)
            self.thread = None

    def _run(self) -> None:
        cfg = self.engine.config
        log.info("model worker %d started (%d torch thread(s))", self.index, cfg.threads)
        next_round = 0.0
        last_log = time.perf_counter()
        while True:
            backlog = any(w.pending or (w.finishing and not w.finished) for w in self.works.values())
            wait = None if not backlog else max(0.0, next_round - time.perf_counter())
            commands = self._take_commands(wait)
            if any(c[0] == "stop" for c in commands):
                break
            for c in commands:
                self._apply(c)
            if time.perf_counter() < next_round:
                continue  # gather more input: a round batches what arrives within min_round_interval_s
            t0 = time.perf_counter()
            if self._round():
                next_round = t0 + cfg.min_round_interval_s
            self.busy_s += time.perf_counter() - t0
            if t0 - last_log >= STATS_EVERY_S:
                self._log_stats(t0 - last_log)
                last_log = t0
        log.info("model worker %d stopped", self.index)

    def _take_commands(self, wait: float | None) -> list[tuple]:
        """Everything queued; the first blocks up to `wait` seconds (None: until a command comes)."""
        commands = []
        if wait is None or wait > 0:
            try:
                commands.append(self.commands.get(timeout=wait))
            except queue.Empty:
                return commands
        while True:
            try:
                commands.append(self.commands.get_nowait())
            except queue.Empty:
                return commands

    def _log_stats(self, seconds: float) -> None:
        rounds = self.rounds - self._logged[0]
        if rounds:
            batch = (self.batched - self._logged[1]) / rounds
            busy = 100 * (self.busy_s - self._logged[2]) / seconds
            log.info("model worker %d: %d streams, %d rounds, %.1f sessions/round, busy %.0f%%",
                     self.index, len(self.works), rounds, batch, busy)  # fmt: skip
        self._logged = (self.rounds, self.batched, self.busy_s)

    def _apply(self, c: tuple) -> None:
        kind, sid = c[0], c[1]
        if kind == "open":
            handle, sink = c[2], c[3]
            eng = self.engine
            try:
                session = StreamingSession(
                    eng.rec,
                    handle.request.mode,
                    eng.config.beam_size,
                    eng.endpoint,
                    eng.vad,
                    handle.request.key,
                    hotwords=handle.request.hotwords,
                )
            except Exception as e:  # noqa: BLE001 - reported to that stream only
                log.exception("%s: cannot open a session", handle.request.key)
                sink(Delivery(error=f"cannot open a session: {e}", error_kind="internal"))
                return
            self.works[sid] = _Work(handle, session, sink)
            return
        work = self.works.get(sid)
        if work is None:
            return
        if kind == "push":
            work.pending.append((c[2], c[3]))
        elif kind == "finish":
            work.finishing = True
        elif kind == "close":
            del self.works[sid]

    def _feed(self, work: _Work) -> None:
        """Move at most max_push_s of queued audio into the session (no model work, but the VAD runs)."""
        cfg = self.engine.config
        budget = None
        while work.pending:
            samples, rate = work.pending[0]
            budget = int(cfg.max_push_s * rate) if budget is None else budget
            if budget <= 0:
                break
            piece, rest = samples[:budget], samples[budget:]
            if len(rest):
                work.pending[0] = (rest, rate)
            else:
                work.pending.popleft()
            budget -= len(piece)
            work.handle._consumed(len(piece))
            work.session.push(piece, rate)
            work.dirty = True
        if not work.pending and work.finishing and not work.finished:
            work.session.input_finished()
            work.finished = work.dirty = True
        too_long = work.session.utterances[-1].num_samples > cfg.max_utterance_s * self.engine.rec.sample_rate
        if self.engine.vad is None and not work.finished and too_long:
            raise LimitError(
                f"utterance longer than max_utterance_s={cfg.max_utterance_s:g} s; without a VAD the server "
                "cannot cut it: send shorter audio or start the server with a VAD"
            )

    def _round(self) -> bool:
        """Feed every stream, run the model on those that got input; False when there was nothing to do."""
        for sid, work in list(self.works.items()):
            try:
                self._feed(work)
            except (AudioError, ValueError) as e:
                self._fail(sid, work, str(e), "limit" if isinstance(e, LimitError) else "input")
        ready = [w for w in self.works.values() if w.dirty]
        if not ready:
            return False
        self.rounds += 1
        self.max_batch = max(self.max_batch, len(ready))
        self.batched += len(ready)
        for work, events in zip(ready, self._process(ready)):
            work.dirty = False
            if events is None:
                continue
            if work.handle.request.itn:
                events = [_itn(e) for e in events]
            if events or work.finished:
                work.sink(Delivery(tuple(events), ended=work.finished))
            if work.finished:
                self.works.pop(work.handle.id, None)
                work.handle._release()
        return True

    def _process(self, ready: list[_Work]) -> list[list[StreamEvent] | None]:
        try:
            return list(process_sessions([w.session for w in ready]))
        except Exception:  # noqa: BLE001 - find the stream that fails, keep serving the rest
            log.exception("batched model call over %d streams failed; retrying one by one", len(ready))
        out: list[list[StreamEvent] | None] = []
        for w in ready:
            try:
                out.append(process_sessions([w.session])[0])
            except Exception as e:  # noqa: BLE001
                log.exception("%s: model call failed", w.handle.request.key)
                self._fail(w.handle.id, w, f"internal error while decoding: {type(e).__name__}", "internal")
                out.append(None)
        return out

    def _fail(self, sid: int, work: _Work, message: str, kind: str) -> None:
        log.warning("%s: %s", work.handle.request.key, message)
        self.works.pop(sid, None)
        work.handle._release()
        work.sink(Delivery(error=message, error_kind=kind))


def _itn(event: StreamEvent) -> StreamEvent:
    if event.kind != "final":
        return event
    from uniasr.itn import normalize

    return replace(event, text=normalize(event.text))


def decode_file(data: bytes, sample_rate: int = 16000) -> np.ndarray:
    """The bytes of any audio container -> float32 mono samples at `sample_rate` (AudioError if not audio)."""
    from uniasr.audio.decoding import load_audio

    return load_audio(bytes(data), sample_rate, name="uploaded audio")
