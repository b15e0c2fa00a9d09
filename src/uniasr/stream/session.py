"""StreamingSession: audio in pieces of any size -> partial, refresh and final events.

- `partial` (modes fast, normal): pass-1 text, after every encoder-1 chunk (600 ms + 300 ms look-ahead
  with the template); it covers the span not yet refreshed by pass 2.
- `refresh` (mode normal): pass-2 text from the utterance start, after every encoder-2 chunk; it replaces the
  pass-1 text of [start_ms, end_ms). Where pass 2 depends on pass 1's result (hotword evidence, agreement:
  `uniasr.decode.context.pass2_options`), refreshes are searched without that, and the final search of
  pass 2 is redone once pass 1's is final.
- `final`: the utterance's final result (pass 2 in normal/offline, pass 1 in fast), equal to
  `Recognizer.transcribe()` on the utterance's audio in the same mode.

The model is shared and stateless; everything per stream is explicit data here, and the code is
backend-neutral (the recogniser's `AcousticBackend`: torch modules or onnxruntime graphs).
`process_sessions` runs the ready work of many sessions through one batch of model calls. With an
`EndpointConfig`, a VAD splits a live stream into utterances; each starts with fresh model state, so an
endless stream runs in constant memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from uniasr.acoustic import Encoded, PassResult
from uniasr.audio.errors import AudioError
from uniasr.audio.features import FeatureState, accept_samples, finish_state, init_feature_state
from uniasr.bundle import ModelBundle
from uniasr.decode.context import needs_pass1, pass2_options
from uniasr.decode.search import SearchOptions
from uniasr.model.layout import stride_window
from uniasr.model.modes import Mode, mode_settings
from uniasr.rescore import candidate_options, joint_nbest, retimed
from uniasr.result import Result, best_tokens
from uniasr.stream.encoder_stream import GrowingRows, push_frames
from uniasr.stream.endpoint import EndpointConfig, EndpointState, check_endpoint
from uniasr.stream.pass_stream import (
    PassStream,
    finalize_pass,
    merged_centres,
    new_pass_stream,
    run_encoders,
    run_searches,
)

log = logging.getLogger(__name__)

EventKind = Literal["partial", "refresh", "final"]
VAD_STEP_MS = 100


@dataclass(frozen=True)
class StreamEvent:
    """One streaming output. Times are ms from the start of the stream."""

    kind: EventKind
    text: str
    tokens: tuple[str, ...]
    timestamps: tuple[tuple[int, int], ...]
    start_ms: int
    end_ms: int
    utterance: int
    result: Result | None = None

    def to_dict(self) -> dict:
        d = {
            "event": self.kind,
            "text": self.text,
            "tokens": list(self.tokens),
            "timestamps": [list(t) for t in self.timestamps],
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "utterance": self.utterance,
        }
        if self.result is not None:
            d["score"] = self.result.score
        return d


@dataclass
class Utterance:
    """Per-utterance state: feature remainder, pass streams, pass-2 input bookkeeping."""

    index: int
    start_sample: int
    features: FeatureState
    pass1: PassStream
    pass2: PassStream | None
    feats: GrowingRows = field(default_factory=GrowingRows)  # CMVN'd features (pass-2 input)
    num_samples: int = 0
    stride_rows: int = 0  # pass-2 input rows produced
    finished: bool = False
    done: bool = False
    refresh_end_ms: int = 0
    last_partial: int | None = None
    last_refresh: tuple | None = None


class StreamingSession:
    """One live stream (or one utterance) against a shared `Recognizer`."""

    def __init__(
        self,
        recognizer: ModelBundle,
        mode: Mode = "normal",
        beam_size: int | None = None,
        endpoint: EndpointConfig | None = None,
        vad=None,
        key: str = "stream",
        hotwords=None,
        hotword_weight: float | None = None,
    ) -> None:
        """hotwords: phrases to favour (see `Recognizer.hotword_graph`; a ContextGraph built once can be
        shared by many sessions, which then batch together): in pass 1, and in pass 2 those pass 1 wrote."""
        mode_settings(mode)
        self.rec, self.mode, self.key = recognizer, mode, key
        context = recognizer.hotword_graph(hotwords, hotword_weight)
        self.opts: SearchOptions = recognizer.search_options(beam_size, 1, context)
        if vad is not None and endpoint is None:
            endpoint = EndpointConfig()  # a VAD is only consulted to find the endpoints
        self.endpoint = endpoint
        if endpoint is not None and vad is None:
            from uniasr.vad import load_vad

            vad = load_vad("silero")
        self.vad = vad
        self.vad_state = vad.new_stream() if vad is not None else None
        self.vad_pending = np.zeros(0, dtype=np.float32)
        self.endpoint_state = EndpointState()
        self.samples_seen = 0
        self.utterances: list[Utterance] = [self._new_utterance(0, 0)]
        self.closed = False
        self.error: str | None = None  # set when its model work failed (process_sessions errors="report")
        self._resampler: Any = None  # soxr.ResampleStream, made on the first resampled chunk
        self._input_rate: int | None = None

    @property
    def sample_rate(self) -> int:
        return self.rec.sample_rate

    def _new_utterance(self, index: int, start_sample: int) -> Utterance:
        ind, pass_index = mode_settings(self.mode)
        backend = self.rec.backend
        return Utterance(
            index,
            start_sample,
            init_feature_state(self.rec.frontend),
            new_pass_stream(backend, 1, ind),
            new_pass_stream(backend, 2, ind) if pass_index == 2 else None,
        )

    # --- input -------------------------------------------------------------------------------------------

    def push(self, samples: np.ndarray, sample_rate: int | None = None) -> None:
        """Take audio (float32 mono in [-1, 1]; int16 is scaled) without running the model."""
        if self.error is not None:
            raise ValueError(f"{self.key}: this session failed ({self.error}); start a new session")
        if self.closed:
            raise ValueError(f"{self.key}: input_finished() was called; start a new session")
        samples = self._to_model_rate(np.asarray(samples), sample_rate)
        if self.vad is None:
            self._feed(self.utterances[-1], samples)
            return
        self.vad_pending = np.concatenate([self.vad_pending, samples])
        step = self.sample_rate * VAD_STEP_MS // 1000
        while len(self.vad_pending) >= step:
            piece, self.vad_pending = self.vad_pending[:step], self.vad_pending[step:]
            self._vad_step(piece)

    def _to_model_rate(self, samples: np.ndarray, sample_rate: int | None) -> np.ndarray:
        if samples.ndim != 1:
            raise AudioError(f"{self.key}: expected mono samples [n], got shape {samples.shape}")
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        elif not np.issubdtype(samples.dtype, np.floating):
            raise AudioError(f"{self.key}: samples must be float or int16, got {samples.dtype}")
        samples = samples.astype(np.float32, copy=False)
        if not np.all(np.isfinite(samples)):
            raise AudioError(f"{self.key}: {int(np.sum(~np.isfinite(samples)))} samples are NaN or Inf")
        rate = sample_rate or self.sample_rate
        if self._input_rate is None:
            self._input_rate = rate
        elif rate != self._input_rate:
            raise AudioError(f"{self.key}: sample rate changed from {self._input_rate} to {rate} mid-stream")
        if rate == self.sample_rate:
            return samples
        if rate <= 0 or rate > 384_000:
            raise AudioError(f"{self.key}: sample_rate={rate} is not valid")
        import soxr

        if self._resampler is None:
            self._resampler = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32")
        return self._resampler.resample_chunk(samples)

    def _vad_step(self, piece: np.ndarray) -> None:
        assert self.endpoint is not None  # set with the VAD in __init__
        utt = self.utterances[-1]
        self.vad_state, events = self.vad.accept(self.vad_state, piece)
        self._feed(utt, piece)
        offset_ms = utt.start_sample * 1000 // self.sample_rate
        started = any(e.kind == "start" for e in events)
        ends = [e.end_ms for e in events if e.kind == "end"]
        now_ms = (utt.start_sample + utt.num_samples) * 1000 // self.sample_rate - offset_ms
        self.endpoint_state, decision = check_endpoint(
            self.endpoint, self.endpoint_state, started, (ends[-1] - offset_ms) if ends else None, now_ms
        )
        if decision is None:
            return
        end_sample = utt.start_sample + utt.num_samples
        if decision == "drop":
            self.utterances[-1] = self._new_utterance(utt.index, end_sample)
        else:
            self._finish_utterance(utt)
            self.utterances.append(self._new_utterance(utt.index + 1, end_sample))
        self.endpoint_state = EndpointState(
            in_speech=self.endpoint_state.in_speech, speech_seen=self.endpoint_state.in_speech
        )

    def _feed(self, utt: Utterance, samples: np.ndarray) -> None:
        utt.features, feats = accept_samples(self.rec.frontend, utt.features, samples)
        utt.num_samples += len(samples)
        self._add_features(utt, feats)

    def _add_features(self, utt: Utterance, feats: np.ndarray) -> None:
        if len(feats) == 0:
            return
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        push_frames(self.rec.backend, 1, utt.pass1.encoder, feats)
        if utt.pass2 is not None:
            utt.feats.append(feats)

    def _finish_utterance(self, utt: Utterance) -> None:
        utt.features, feats = finish_state(self.rec.frontend, utt.features)
        self._add_features(utt, feats)
        utt.finished = True
        utt.pass1.encoder.finished = utt.pass1.encoder.num_frames > 0

    def input_finished(self) -> None:
        """No more audio: the current utterance ends (events come from the next `process`)."""
        if self.closed:
            return
        if self.vad is not None and len(self.vad_pending):
            piece, self.vad_pending = self.vad_pending, np.zeros(0, dtype=np.float32)
            self._feed(self.utterances[-1], piece)
        last = self.utterances[-1]
        if self.endpoint is not None and not self.endpoint_state.speech_seen:
            last.finished = last.done = True  # trailing audio without speech: nothing to recognise
        else:
            self._finish_utterance(last)
        self.closed = True

    # --- the convenient single-session API ---------------------------------------------------------------

    def accept_waveform(self, samples: np.ndarray, sample_rate: int | None = None) -> list[StreamEvent]:
        """Feed audio and run the model on what is ready; returns the events it produced."""
        self.push(samples, sample_rate)
        return process_sessions([self])[0]

    def finish(self) -> list[StreamEvent]:
        """`input_finished()` and process the rest; the last event is the final result."""
        self.input_finished()
        return process_sessions([self])[0]


# --- model work, batched across sessions ------------------------------------------------------------------


class SessionError(RuntimeError):
    """The model work of a stream failed; the message names the stream (its key)."""


def process_sessions(sessions: list[StreamingSession], errors: str = "raise") -> list[list[StreamEvent]]:
    """Run every session's ready work in shared model calls; returns each session's new events.

    errors="raise": a failure raises SessionError naming the sessions of the call (their state stays
    consistent, so a caller may retry each alone). "report": a failed batch is run session by session; a
    session that fails alone gets `error` set, is closed and returns no events; the others go on.
    """
    if errors not in ("raise", "report"):
        raise ValueError(f"errors={errors!r}; valid: 'raise', 'report'")
    try:
        return _process(sessions)
    except Exception as e:  # noqa: BLE001 - named (raise) or isolated (report) below
        keys = ", ".join(s.key for s in sessions)
        message = f"{type(e).__name__}: {e}"
        if errors == "raise":
            raise SessionError(f"model work of stream(s) {keys} failed: {message}") from e
        if len(sessions) == 1:
            log.warning("stream %s failed: %s", keys, message, exc_info=True)
            _fail(sessions[0], message)
            return [[]]
        log.warning("model work of %d streams failed (%s); running each alone", len(sessions), message)
    return [process_sessions([s], errors="report")[0] for s in sessions]


def _fail(s: StreamingSession, message: str) -> None:
    s.error, s.closed = message, True
    for u in s.utterances:
        u.finished = u.done = True


def _process(sessions: list[StreamingSession]) -> list[list[StreamEvent]]:
    if not sessions:
        return []
    backend = sessions[0].rec.backend
    events: dict[int, list[StreamEvent]] = {id(s): [] for s in sessions}
    live = [(s, u) for s in sessions for u in s.utterances if not u.done and u.pass1.encoder.num_frames > 0]
    with backend.inference():
        run_encoders(backend, [u.pass1 for _, u in live])
        for s, u in live:
            if u.pass2 is not None:
                _feed_pass2(s, u)
        run_encoders(backend, [u.pass2 for _, u in live if u.pass2 is not None])
        for _, u in live:
            if u.finished:
                for ps in (u.pass1, u.pass2):
                    if ps is not None and ps.final_memory is None:
                        finalize_pass(backend, ps)
        _search(backend, live, events)
    for s in sessions:
        for u in s.utterances:
            if u.finished and u.pass1.encoder.num_frames == 0:
                u.done = True  # too short for a single feature frame: nothing to recognise
        if all(u.done for u in s.utterances):
            last = s.utterances[-1]
            s.utterances = [s._new_utterance(last.index + 1, last.start_sample + last.num_samples)]
        else:
            s.utterances = [u for u in s.utterances if not u.done]
    return [events[id(s)] for s in sessions]


def _feed_pass2(s: StreamingSession, u: Utterance) -> None:
    """Stride-conv rows whose inputs (features + encoder-1 centre outputs) are complete -> encoder 2."""
    pass2 = u.pass2
    if pass2 is None:
        return
    backend = s.rec.backend
    sc = backend.config.stride_conv
    enc1 = merged_centres(u.pass1)
    total = u.pass1.encoder.num_frames
    available = enc1.shape[0]
    if u.pass1.encoder.finished and available >= total:
        rows_total = (total - 1) // sc.stride + 1
    else:  # row t reads padded inputs t*s .. t*s+k-1, i.e. frames up to t*s + k - 1 - pad_left
        rows_total = max(0, (available - sc.kernel_size + sc.pad_left) // sc.stride + 1)
    if rows_total <= u.stride_rows:
        if u.pass1.encoder.finished and available >= total:
            pass2.encoder.finished = True
        return
    feats = u.feats.view()
    z = np.concatenate([feats[: enc1.shape[0]], enc1], axis=-1)
    first = u.stride_rows * sc.stride - sc.pad_left
    last = (rows_total - 1) * sc.stride - sc.pad_left + sc.kernel_size  # exclusive
    out = backend.stride_conv(stride_window(z, first, last, total))
    push_frames(backend, 2, pass2.encoder, out)
    u.stride_rows = rows_total
    if u.pass1.encoder.finished and available >= total:
        pass2.encoder.finished = True


def _run_grouped(backend, items: list[tuple[SearchOptions, PassStream]], final: bool) -> None:
    by_opts: dict[SearchOptions, list[PassStream]] = {}
    for opts, ps in items:
        by_opts.setdefault(opts, []).append(ps)
    for opts, streams in by_opts.items():
        run_searches(backend, streams, opts, final)


def _search(backend, live, events) -> None:
    if not live:
        return
    partial_passes = [(s, u, u.pass1) for s, u in live if s.mode != "offline" and not u.finished]
    refresh_passes = [(s, u, u.pass2) for s, u in live if s.mode == "normal" and not u.finished]
    final_passes = [(s, u, u.pass2 if u.pass2 is not None else u.pass1) for s, u in live if u.finished]
    _run_grouped(backend, [(s.opts, ps) for s, _, ps in partial_passes], False)
    _run_grouped(backend, [(pass2_options(s.opts), ps) for s, _, ps in refresh_passes], False)
    _run_grouped(backend, _final_searches(backend, final_passes), True)
    for s, u, ps in partial_passes:
        _emit_partial(s, u, ps, events[id(s)])
    for s, u, ps in refresh_passes:
        _emit_refresh(s, u, ps, events[id(s)])
    for s, u, ps in final_passes:
        events[id(s)].append(_final_event(s, u, ps))
        u.done = True


def _final_searches(backend, final_passes: list) -> list[tuple[SearchOptions, PassStream]]:
    """The options of each utterance's final search. Where pass 2 depends on pass 1 (`pass2_options`),
    pass 1's searches are finished first, and a pass-2 search is redone from the start when its options
    change with pass 1's best hypothesis (so the final equals whole-utterance decoding)."""
    evidence = [(s, u) for s, u, _ in final_passes if u.pass2 is not None and needs_pass1(s.opts)]
    _run_grouped(backend, [(s.opts, u.pass1) for s, u in evidence], True)
    chosen: dict[int, SearchOptions] = {}
    for s, u in evidence:
        opts = pass2_options(s.opts, u.pass1.search.best())
        if opts != pass2_options(s.opts):
            u.pass2.search = None
        chosen[id(u)] = opts
    return [(chosen.get(id(u), s.opts), ps) for s, u, ps in final_passes]


def _tokens_and_times(s: StreamingSession, u: Utterance, ps: PassStream, hyp) -> tuple[list, list, list]:
    fires = np.asarray(ps.floor_fires, dtype=np.int64)
    alphas = ps.alphas.view() if len(ps.alphas) else np.zeros(1)
    offset = u.start_sample * 1000 // s.sample_rate
    return best_tokens(hyp, fires, alphas, ps.config.frame_ms, s.rec.tokens, offset)


def _text(s: StreamingSession, toks: list[str]) -> str:
    """Tokens -> the event text in the recogniser's text form (kanji-kana text for the default model)."""
    return s.rec.render_text(s.rec.tokens.detokenize(toks), s.opts.hotwords)


def _emit_partial(s: StreamingSession, u: Utterance, ps: PassStream, out: list[StreamEvent]) -> None:
    if ps.search is None or ps.encoder.next_block == 0 or u.last_partial == ps.encoder.next_block:
        return
    u.last_partial = ps.encoder.next_block
    _, toks, times = _tokens_and_times(s, u, ps, ps.search.best())
    keep = [i for i, (_, end) in enumerate(times) if end > u.refresh_end_ms]
    toks, times = [toks[i] for i in keep], [times[i] for i in keep]
    start = max(u.refresh_end_ms, u.start_sample * 1000 // s.sample_rate)
    end = (u.start_sample * 1000 // s.sample_rate) + int(
        ps.encoder.next_block * ps.encoder.chunk.stride * ps.config.frame_ms
    )
    out.append(StreamEvent("partial", _text(s, toks), tuple(toks), tuple(times), start, end, u.index))


def _emit_refresh(s: StreamingSession, u: Utterance, ps: PassStream, out: list[StreamEvent]) -> None:
    if ps.search is None or ps.search.step == 0:
        return
    key = (ps.encoder.next_block, ps.search.step)
    if key == u.last_refresh:
        return
    u.last_refresh = key
    _, toks, times = _tokens_and_times(s, u, ps, ps.search.best())
    start = u.start_sample * 1000 // s.sample_rate
    u.refresh_end_ms = max(u.refresh_end_ms, times[-1][1] if times else start)
    out.append(
        StreamEvent(
            "refresh",
            _text(s, toks),
            tuple(toks),
            tuple(times),
            start,
            u.refresh_end_ms,
            u.index,
        )
    )


def _pass_result(ps: PassStream) -> PassResult:
    """A finished pass stream as whole-utterance decoding's PassResult (after `finalize_pass`)."""
    assert ps.final_cif is not None
    return PassResult(
        Encoded(ps.encoder.blocks.view(), ps.encoder.layout()), ps.final_cif, ps.encoder.chunk, ps.config
    )


def _final_event(s: StreamingSession, u: Utterance, ps: PassStream) -> StreamEvent:
    start = u.start_sample * 1000 // s.sample_rate
    seconds = u.num_samples / s.sample_rate
    if ps.search is None or not ps.search.ended or ps.final_cif is None:
        result = Result(f"{s.key}/{u.index}", mode=s.mode, duration_s=seconds)
    else:
        out = _pass_result(ps)
        hyps = ps.search.nbest(1)
        first = u.pass1.search
        if s.opts.rescores and u.pass2 is ps and first is not None and u.pass1.final_cif is not None:
            k = candidate_options(s.opts).nbest
            lists = [first.nbest(k), ps.search.nbest(k)]
            hyps = joint_nbest(
                s.rec.backend, [_pass_result(u.pass1)], [out], [lists], replace(s.opts, nbest=1)
            )[0]
            out = retimed(out, hyps[0])
        result = s.rec.make_result(f"{s.key}/{u.index}", out, hyps, s.mode, seconds, s.opts.hotwords)
        result.timestamps = [(a + start, b + start) for a, b in result.timestamps]
    return StreamEvent(
        "final",
        result.text,
        tuple(result.tokens),
        tuple(result.timestamps),
        start,
        start + int(seconds * 1000),
        u.index,
        result,
    )
