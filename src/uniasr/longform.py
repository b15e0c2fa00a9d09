"""Long recordings: block-wise decoding, streaming VAD segmentation and batched recognition of the segments.

An input longer than ``LongformOptions.threshold_s`` is never loaded whole. It is decoded in blocks of
``block_s`` seconds (:func:`uniasr.audio.blocks.iter_audio_blocks`) and fed to a streaming VAD; the samples
kept in memory are the current block, a short look-back (``lookback_s``, for segment starts that a VAD
reports late) and the open speech segment. A segment still open at a block boundary carries its samples
over to the next block, so it is never cut there. A segment longer than ``max_segment_s`` is split at the
quietest 10 ms frame of the last half of its budget (:func:`uniasr.vad.apply_segment_rules`); the split
points depend only on the audio, never on the block size.

Segments are collected until they hold ``batch_seconds`` of audio, then recognised in length-sorted
batches by :meth:`uniasr.bundle.ModelBundle.decode_each`; token times are moved by the segment start.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from uniasr.audio.blocks import iter_audio_blocks
from uniasr.audio.decoding import AudioSource, load_audio
from uniasr.audio.inputs import input_name
from uniasr.audio.probe import audio_duration_seconds
from uniasr.result import Alternative, Result, Segment
from uniasr.vad import (
    SegmentRules,
    SpeechSegment,
    VadEvent,
    VoiceActivityDetector,
    apply_segment_rules,
    load_vad,
)
from uniasr.vad.segments import frame_energy_db

if TYPE_CHECKING:
    from uniasr.bundle import ModelBundle
    from uniasr.decode.search import SearchOptions

log = logging.getLogger(__name__)

VadSpec = str | VoiceActivityDetector | None
LEVEL_FRAME_MS = 10  # frame of the loudness curve that places splits


@dataclass(frozen=True)
class LongformOptions:
    """When and how long inputs are segmented. Times in seconds.

    vad: ``"auto"`` (at 8 and 16 kHz Silero, whose weights ship with uniasr, plus what is clearly louder than
        the recording's quiet floor: Silero misses some reverberant or noisy sentences; chosen on a long
        recording of the dev sentences, see the default model's card; else the energy VAD),
        any :func:`uniasr.vad.load_vad` spec (``"silero"``, ``"energy"``, ``"fsmn:<dir>"``), a detector
        object, or None / "none" (no speech detection: an input of up to ``max_whole_s`` is decoded whole,
        as short inputs are; a longer one is never loaded whole but cut, all of it, into pieces of at most
        ``max_segment_s`` at their quietest points, so memory stays bounded; silence is decoded too).
    threshold_s: with a VAD, inputs longer than this are segmented; shorter ones are decoded whole.
    max_whole_s: without a VAD, inputs longer than this are cut into pieces (decoding whole takes memory
        in proportion to the length: about 1.1 GB per 1,000 s).
    block_s: audio decoded (and held) at a time.
    max_segment_s: longer speech segments are split at their quietest point.
    batch_seconds: audio of the segments recognised together (length-sorted batches).
    lookback_s: audio kept behind the VAD's position for segment starts reported late (a detector emits
        "start" only after some speech, and pads it backwards).
    merge_gap_s, merge_max_s: neighbouring speech segments are decoded as one while the pause between
        them is at most ``merge_gap_s`` and the merged segment so far is shorter than ``merge_max_s``
        (a VAD cuts sentences at their commas; whole sentences decode better and make whole subtitles).
    pad_s: each speech segment is decoded with this much of the audio around it (never past the middle
        of the pause to its neighbour).
    """

    vad: VadSpec = "auto"
    threshold_s: float = 60.0
    block_s: float = 60.0
    max_segment_s: float = 30.0
    batch_seconds: float = 120.0
    lookback_s: float = 5.0
    max_whole_s: float = 600.0
    merge_gap_s: float = 0.6  # chosen on a long recording of the dev sentences (README)
    merge_max_s: float = 15.0
    pad_s: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.vad, str) and self.vad.strip().lower() in ("none", "off"):
            object.__setattr__(self, "vad", None)
        for name in ("threshold_s", "block_s", "max_segment_s", "batch_seconds", "max_whole_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"LongformOptions.{name}={value!r} must be > 0")
        if not self.lookback_s >= 0:
            raise ValueError(f"LongformOptions.lookback_s={self.lookback_s!r} must be >= 0")
        if self.max_segment_s * 1000 < 2 * LEVEL_FRAME_MS:
            raise ValueError(f"LongformOptions.max_segment_s={self.max_segment_s} is too short (>= 0.02 s)")


@dataclass(frozen=True)
class AudioSegment:
    """A speech segment and its samples; ``start_ms`` is from the start of the input."""

    start_ms: int
    end_ms: int
    samples: np.ndarray  # float32 [num_samples]

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


# ------------------------------------------------------------------------------------------ VAD choice
@functools.lru_cache(maxsize=8)
def _cached_vad(spec: str) -> VoiceActivityDetector:
    return load_vad(spec)


def resolve_vad(vad: VadSpec, sample_rate: int) -> VoiceActivityDetector | None:
    """A detector for ``vad`` (see :class:`LongformOptions`); loaded detectors are cached (they are
    stateless: every stream carries its own state)."""
    if vad is None:
        return None
    if isinstance(vad, str):
        spec = vad
        if vad.strip().lower() == "auto":
            spec = _auto_vad_spec(sample_rate)
        detector = _cached_vad(spec)
    else:
        detector = vad
    rate = getattr(detector, "sample_rate", None)
    if rate != sample_rate:
        raise ValueError(
            f"VAD {vad!r} works at {rate} Hz but the recogniser at {sample_rate} Hz; "
            f"use a VAD for {sample_rate} Hz audio (e.g. 'silero:{sample_rate}' or 'energy')"
        )
    return detector


@functools.lru_cache(maxsize=4)  # decide (and warn) once per process
def _auto_vad_spec(sample_rate: int) -> str:
    """Silero (its weights ship with uniasr) with the level rescue at the rates it has; the energy VAD
    elsewhere."""
    return f"silero:{sample_rate}+level" if sample_rate in (8000, 16000) else "energy"


class WholeInput:
    """The "detector" of ``vad=None`` for an input too long to decode whole: all of the audio is one
    segment, which :func:`iter_speech_segments` cuts into pieces at the quietest points (nothing dropped).
    The state is the number of samples seen."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def detect(self, samples: np.ndarray, sample_rate: int | None = None) -> list[SpeechSegment]:
        return [SpeechSegment(0, len(samples) * 1000 // self.sample_rate)] if len(samples) else []

    def new_stream(self) -> int:
        return 0

    def accept(self, state: int, samples: np.ndarray) -> tuple[int, list[VadEvent]]:
        return state + len(samples), [VadEvent("start", 0)] if state == 0 and len(samples) else []

    def finish(self, state: int) -> list[VadEvent]:
        return [VadEvent("end", 0, state * 1000 // self.sample_rate)] if state else []


# ------------------------------------------------------------------------------------ segmentation
class _SampleBuffer:
    """Samples ``[offset, offset + len(data))`` of a stream (absolute sample indices)."""

    def __init__(self) -> None:
        self.data = np.zeros(0, dtype=np.float32)
        self.offset = 0

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    def append(self, block: np.ndarray) -> None:
        self.data = np.concatenate([self.data, block]) if len(self.data) else block

    def slice(self, start: int, end: int) -> np.ndarray:
        """A copy of samples ``[start, end)`` (clipped to what is held)."""
        lo = max(start - self.offset, 0)
        return self.data[lo : max(end - self.offset, lo)].copy()

    def drop_before(self, sample: int) -> None:
        cut = min(max(sample - self.offset, 0), len(self.data))
        if cut:
            self.data = self.data[cut:].copy()
            self.offset += cut


def iter_speech_segments(
    blocks: Iterable[np.ndarray],
    vad: VoiceActivityDetector,
    *,
    max_segment_s: float = 30.0,
    lookback_s: float = 5.0,
    merge_gap_s: float = 0.0,
    merge_max_s: float = 0.0,
    pad_s: float = 0.0,
) -> Iterator[AudioSegment]:
    """Speech segments of a stream of float32 blocks at ``vad.sample_rate``, in order, with their samples.

    Neighbouring VAD segments are merged into one (the pause between them included) while the pause is at
    most ``merge_gap_s`` and the merged segment so far is shorter than ``merge_max_s``, so that a sentence
    the VAD cuts at its commas is decoded whole. Each segment is then widened by ``pad_s`` of the audio
    around it on both sides (never into its neighbours): a recogniser trained on clips with some silence
    around the speech hears the first and last sounds better. A segment over ``max_segment_s`` is split
    at its quietest point. Memory: the current block, ``lookback_s`` of audio and the open segment (at
    most ``max_segment_s`` plus one block). Segments do not depend on the block sizes (for detectors whose
    streaming output does not, which is the case for every uniasr backend).
    """
    rate = vad.sample_rate
    max_ms = int(round(max_segment_s * 1000))
    gap_ms, merge_ms = int(round(merge_gap_s * 1000)), int(round(merge_max_s * 1000))
    pad_ms = int(round(pad_s * 1000))
    # a "start" is reported after some speech, dated back: wait this long past a segment end for it
    wait_ms = max(gap_ms + int(lookback_s * 1000) if gap_ms > 0 else 0, pad_ms)
    buffer, state = _SampleBuffer(), vad.new_stream()
    open_start: int | None = None  # start of the open (or ended but still mergeable) segment
    done_to: int | None = None  # end of the part of the open segment already emitted by forced splits
    ended_at: int | None = None  # the open segment's end, while a next segment may still merge into it
    emitted_to = 0  # end of the last segment emitted: padding never reaches back over it

    def close(end_ms: int, next_start: int | None) -> Iterator[AudioSegment]:
        nonlocal open_start, done_to, ended_at, emitted_to
        assert open_start is not None
        start = done_to if done_to is not None else max(open_start - pad_ms, emitted_to, 0)
        end = end_ms + pad_ms
        if next_start is not None:
            end = max(min(end, (end_ms + next_start) // 2), end_ms)
        for piece in _pieces(buffer, rate, start, end, max_ms, final=True):
            emitted_to = piece.end_ms
            yield piece
        open_start = done_to = ended_at = None

    def on_event(event: VadEvent) -> Iterator[AudioSegment]:
        nonlocal open_start, done_to, ended_at
        if event.kind == "start":
            if ended_at is not None and open_start is not None:
                if event.start_ms - ended_at <= gap_ms and ended_at - open_start < merge_ms:
                    ended_at = None  # the open segment goes on
                    return
                yield from close(ended_at, event.start_ms)
            open_start, done_to = event.start_ms, None
            return
        if open_start is None:
            open_start = event.start_ms
        ended_at = event.end_ms if event.end_ms is not None else event.start_ms

    for block in blocks:
        buffer.append(np.asarray(block, dtype=np.float32))
        state, events = vad.accept(state, block)
        for event in events:
            yield from on_event(event)
        now_ms = buffer.end * 1000 // rate
        if ended_at is not None and now_ms - ended_at >= wait_ms:
            yield from close(ended_at, None)
        if open_start is not None and ended_at is None:
            start = done_to if done_to is not None else open_start
            if now_ms - start > max_ms + 2 * LEVEL_FRAME_MS:  # enough audio to place the next split
                pieces = list(_pieces(buffer, rate, start, now_ms, max_ms, final=False))
                yield from pieces
                done_to = pieces[-1].end_ms if pieces else done_to
        keep_ms = now_ms - max(int(lookback_s * 1000), pad_ms)
        if open_start is not None:
            keep_ms = min(keep_ms, done_to if done_to is not None else open_start - pad_ms)
        buffer.drop_before(max(keep_ms - LEVEL_FRAME_MS, 0) * rate // 1000)
    for event in vad.finish(state):
        yield from on_event(event)
    if ended_at is not None:
        yield from close(ended_at, None)


def _pieces(
    buffer: _SampleBuffer, rate: int, start_ms: int, end_ms: int, max_ms: int, *, final: bool
) -> Iterator[AudioSegment]:
    """``[start_ms, end_ms)`` cut into pieces of at most ``max_ms`` at the quietest points.

    ``final=False``: the segment is still open; the last piece (whose end is not known yet) is held back.
    """
    if start_ms * rate // 1000 < buffer.offset:
        log.warning(
            "VAD segment start %d ms is before the %d ms of audio still held; it starts at %d ms instead "
            "(raise LongformOptions.lookback_s)",
            start_ms,
            buffer.offset * 1000 // rate,
            buffer.offset * 1000 // rate,
        )
        start_ms = -(-buffer.offset * 1000 // rate)
    end_ms = min(end_ms, buffer.end * 1000 // rate)
    if end_ms <= start_ms:
        return
    # the loudness frames lie on an absolute 10 ms grid, so a split never depends on where the search began
    origin = start_ms - start_ms % LEVEL_FRAME_MS
    samples = buffer.slice(origin * rate // 1000, end_ms * rate // 1000)
    spans = [SpeechSegment(start_ms, end_ms)]
    if end_ms - start_ms > max_ms:
        levels = frame_energy_db(samples, rate, LEVEL_FRAME_MS)
        spans = apply_segment_rules(
            [SpeechSegment(start_ms - origin, end_ms - origin)],
            SegmentRules(max_segment_ms=max_ms),
            total_ms=end_ms - origin,
            levels=levels,
            level_frame_ms=LEVEL_FRAME_MS,
            offset_ms=origin,
        )
    if not final:
        spans = spans[:-1]
    skip = len(samples) - (end_ms * rate // 1000 - start_ms * rate // 1000)  # samples before start_ms
    for span in spans:
        lo = skip + span.start_ms * rate // 1000 - start_ms * rate // 1000
        hi = skip + span.end_ms * rate // 1000 - start_ms * rate // 1000
        yield AudioSegment(span.start_ms, span.end_ms, samples[lo:hi].copy())


# ------------------------------------------------------------------------------------ recognition
def length_batches(seconds: Sequence[float], max_seconds: float) -> list[list[int]]:
    """Indices grouped into length-sorted batches of at most ``max_seconds`` in all (a longer item alone).

    >>> length_batches([5.0, 1.0, 3.0, 2.0], 6.0)
    [[1, 3, 2], [0]]
    """
    batches: list[list[int]] = []
    batch: list[int] = []
    total = 0.0
    for i in sorted(range(len(seconds)), key=lambda i: seconds[i]):
        if batch and total + seconds[i] > max_seconds:
            batches.append(batch)
            batch, total = [], 0.0
        batch.append(i)
        total += seconds[i]
    if batch:
        batches.append(batch)
    return batches


def recognize_segments(
    rec: ModelBundle,
    key: str,
    segments: Sequence[AudioSegment],
    *,
    mode: str,
    opts: SearchOptions,
    batch_seconds: float,
    itn: bool = False,
) -> list[tuple[Segment, list[int]]]:
    """Recognise segments in length-sorted batches -> (Segment with absolute times, token ids), in order.

    Segments too short for one feature frame come back empty (no tokens). A batch that fails is decoded
    segment by segment; a segment that fails alone raises `DecodeError` naming the input and the segment.
    """
    window = rec.frontend.cfg.window_samples
    out: list[tuple[Segment, list[int]] | None] = [None] * len(segments)
    usable = [i for i, s in enumerate(segments) if len(s.samples) >= window]
    for i in set(range(len(segments))) - set(usable):
        seg = segments[i]
        out[i] = (Segment(seg.start_ms, seg.end_ms, "", [], [], 0.0), [])
    for batch in length_batches([segments[i].seconds for i in usable], batch_seconds):
        items = [segments[usable[j]] for j in batch]
        names = [f"{key} [{s.start_ms}-{s.end_ms} ms]" for s in items]
        feats = [rec.features(s.samples, n) for s, n in zip(items, names)]
        decoded = rec.decode_each(names, feats, mode, opts)
        for j, seg, got in zip(batch, items, decoded):
            if isinstance(got, Exception):  # the segment alone fails: its input's error names it
                raise got
            r = rec.make_result(key, got[0], got[1], mode, seg.seconds, opts.hotwords)
            times = [
                (min(s + seg.start_ms, seg.end_ms), min(e + seg.start_ms, seg.end_ms))
                for s, e in r.timestamps
            ]
            text = _itn(r.text) if itn else r.text
            segment = Segment(seg.start_ms, seg.end_ms, text, r.tokens, times, r.score, r.kana)
            out[usable[j]] = (segment, r.token_ids)
    return [o for o in out if o is not None]


SENTENCE_END = frozenset("。、．，.,？！?!」』）)…")


def join_segment_texts(texts: Sequence[str], spaced: bool = False) -> str:
    """The texts of consecutive segments as one text: a segment that ends without punctuation is followed by
    a space, so neighbouring segments never run together (empty segments drop); `spaced` (a word-level
    vocabulary): a space between all segments.

    >>> join_segment_texts(["今日は晴れ。", "明日は", "雨です"])
    '今日は晴れ。明日は 雨です'
    """
    out: list[str] = []
    for text in (t.strip() for t in texts):
        if not text:
            continue
        if out and (spaced or out[-1][-1] not in SENTENCE_END):
            out.append(" ")
        out.append(text)
    return "".join(out)


def _itn(text: str) -> str:
    from uniasr.itn import normalize

    return normalize(text)


def transcribe_long(
    rec: ModelBundle,
    key: str,
    blocks: Iterable[np.ndarray],
    *,
    mode: str,
    opts: SearchOptions,
    options: LongformOptions = LongformOptions(),
    itn: bool = False,
    progress_seconds: Callable[[float], None] | None = None,
) -> Result:
    """VAD-segment a stream of blocks (float32 at the model rate) and recognise the segments.

    Returns one Result whose text is the concatenation of the segments' texts, whose tokens and
    timestamps are the segments' (absolute ms), and whose ``segments`` hold the per-segment results.
    """
    rate = rec.sample_rate
    detector = resolve_vad(options.vad, rate)
    vad: VoiceActivityDetector = detector if detector is not None else WholeInput(rate)
    t0 = time.perf_counter()
    counted = _CountingBlocks(blocks)
    done: list[tuple[Segment, list[int]]] = []
    pending: list[AudioSegment] = []
    reported_s = 0.0

    def flush() -> None:
        nonlocal reported_s
        done.extend(
            recognize_segments(
                rec, key, pending, mode=mode, opts=opts, batch_seconds=options.batch_seconds, itn=itn
            )
        )
        if progress_seconds and pending:
            progress_seconds(pending[-1].end_ms / 1000.0 - reported_s)
            reported_s = pending[-1].end_ms / 1000.0
        pending.clear()

    segments = iter_speech_segments(
        counted,
        vad,
        max_segment_s=options.max_segment_s,
        lookback_s=options.lookback_s,
        merge_gap_s=options.merge_gap_s if options.vad is not None else 0.0,
        merge_max_s=options.merge_max_s,
        pad_s=options.pad_s if options.vad is not None else 0.0,
    )
    for seg in segments:
        pending.append(seg)
        if sum(s.seconds for s in pending) >= options.batch_seconds:
            flush()
    flush()
    seconds = counted.num_samples / rec.sample_rate
    if progress_seconds and seconds > reported_s:
        progress_seconds(seconds - reported_s)
    spaced = not rec.tokens.char_level
    segs = [s for s, _ in done]
    ids = [i for _, seg_ids in done for i in seg_ids]
    result = Result(
        key,
        text=join_segment_texts([s.text for s in segs], spaced),
        kana=join_segment_texts([s.kana for s in segs], spaced),
        tokens=[t for s in segs for t in s.tokens],
        token_ids=ids,
        timestamps=[t for s in segs for t in s.timestamps],
        score=float(sum(s.score for s in segs)),
        mode=mode,
        duration_s=seconds,
        segments=segs,
    )
    result.nbest = [Alternative(result.text, result.tokens, result.token_ids, result.score, result.kana)]
    result.rtf = (time.perf_counter() - t0) / max(seconds, 1e-9)
    log.debug("%s: %.1f s of audio, %d segments, RTF %.3f", key, seconds, len(segs), result.rtf)
    return result


class _CountingBlocks:
    """Wraps a block iterator and counts the samples that went through."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self.blocks = iter(blocks)
        self.num_samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            self.num_samples += len(block)
            yield block


# ------------------------------------------------------------------------------------ the decision
def read_or_transcribe(
    rec: ModelBundle,
    key: str,
    source: AudioSource,
    *,
    mode: str,
    opts: SearchOptions,
    options: LongformOptions,
    source_rate: int | None = None,
    itn: bool = False,
    progress_seconds: Callable[[float], None] | None = None,
) -> np.ndarray | Result:
    """Short input -> its samples (the caller batches it with other short inputs); long input -> its Result.

    An input whose duration is known from its header is long when it exceeds ``options.threshold_s``
    (``options.max_whole_s`` without a VAD); an input of unknown duration is read block by block until it
    ends (short) or passes the threshold (long: recognised from the blocks already read).
    """
    rate = rec.sample_rate
    name = input_name(key, source)
    limit_s = options.threshold_s if options.vad is not None else options.max_whole_s
    duration = audio_duration_seconds(source, source_rate=source_rate)
    if duration is not None and duration <= limit_s:
        return load_audio(source, rate, source_rate=source_rate, name=name)
    blocks = iter_audio_blocks(source, rate, options.block_s, source_rate=source_rate, name=name)
    head: list[np.ndarray] = []
    head_samples = 0
    if duration is None:
        for block in blocks:
            head.append(block)
            head_samples += len(block)
            if head_samples > limit_s * rate:
                break
        else:
            return (
                np.concatenate(head) if head else load_audio(source, rate, source_rate=source_rate, name=name)
            )
    if options.vad is None:
        log.warning(
            "%s: longer than max_whole_s=%g s; without a VAD it is decoded in pieces of at most %g s cut at "
            "quiet points (decoding it whole would take memory in proportion to its length)",
            key, limit_s, options.max_segment_s,
        )  # fmt: skip
    return transcribe_long(
        rec,
        key,
        itertools.chain(head, blocks),
        mode=mode,
        opts=opts,
        options=options,
        itn=itn,
        progress_seconds=progress_seconds,
    )


def whole_input_segment(result: Result) -> Segment:
    """The one Segment of an input decoded whole: ``[0, duration)`` with the result's tokens."""
    end_ms = int(round(result.duration_s * 1000))
    return Segment(
        0, end_ms, result.text, list(result.tokens), list(result.timestamps), result.score, result.kana
    )


def finish_short_result(result: Result, itn: bool) -> Result:
    """Give a whole-input result its single segment and apply ITN to its text (in place; returns it)."""
    if result.error is None:
        if itn:
            result.text = _itn(result.text)
        if not result.segments:
            result.segments = [whole_input_segment(result)]
    return result


def describe(options: LongformOptions) -> dict[str, Any]:
    """The options as plain data (for logs and run manifests)."""
    vad = options.vad if options.vad is None or isinstance(options.vad, str) else type(options.vad).__name__
    return {
        "vad": vad,
        "threshold_s": options.threshold_s,
        "block_s": options.block_s,
        "max_segment_s": options.max_segment_s,
        "batch_seconds": options.batch_seconds,
    }
