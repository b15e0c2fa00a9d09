"""Segment post-processing: a frozen set of rules and one pure function that applies them.

Order of operations in :func:`apply_segment_rules`:

1. sort, clip to ``[0, total_ms]``, merge overlaps;
2. merge neighbours whose gap is shorter than ``min_silence_ms``;
3. drop segments shorter than ``min_speech_ms``;
4. split segments longer than ``max_segment_ms`` (budget: ``max_segment_ms - pad_start_ms - pad_end_ms``,
   so the padded pieces still fit) at the quietest frame of a search window that ends at the budget;
5. pad both sides, clipped to the audio and to the neighbours (the earlier segment keeps its end padding,
   the later one starts no earlier than that);
6. shift everything by ``offset_ms`` (block-wise processing of long audio).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from uniasr.vad.base import SpeechSegment

__all__ = ["SegmentRules", "apply_segment_rules", "frame_energy_db"]


@dataclass(frozen=True)
class SegmentRules:
    """Offline post-processing rules, all in milliseconds. The defaults change nothing."""

    min_speech_ms: int = 0
    min_silence_ms: int = 0
    pad_start_ms: int = 0
    pad_end_ms: int = 0
    max_segment_ms: int | None = None
    split_window_ms: int | None = None  # where to look for the quietest point; None: max_segment_ms // 2

    def __post_init__(self) -> None:
        for name in ("min_speech_ms", "min_silence_ms", "pad_start_ms", "pad_end_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"SegmentRules.{name}={getattr(self, name)} must be >= 0")
        if self.max_segment_ms is not None:
            budget = self.max_segment_ms - self.pad_start_ms - self.pad_end_ms
            if budget <= 0:
                raise ValueError(
                    f"SegmentRules.max_segment_ms={self.max_segment_ms} leaves no room for speech after "
                    f"padding ({self.pad_start_ms} + {self.pad_end_ms} ms); make it larger than the padding"
                )
        if self.split_window_ms is not None and self.split_window_ms <= 0:
            raise ValueError(f"SegmentRules.split_window_ms={self.split_window_ms} must be > 0")


def apply_segment_rules(
    segments: Sequence[SpeechSegment],
    rules: SegmentRules,
    *,
    total_ms: int | None = None,
    levels: np.ndarray | None = None,
    level_frame_ms: int = 10,
    offset_ms: int = 0,
) -> list[SpeechSegment]:
    """Apply ``rules`` to ``segments`` (times relative to the audio block) and return new segments.

    Args:
        segments: detected segments, any order.
        rules: the rules.
        total_ms: length of the audio block; segments and padding are clipped to it (None: no upper clip).
        levels: [F] per-frame loudness where lower means quieter (frame energy in dB, or a speech
            probability), frame ``f`` covering ``[f * level_frame_ms, (f + 1) * level_frame_ms)``. Used to
            place splits; None splits long segments into equal parts.
        level_frame_ms: frame length of ``levels``.
        offset_ms: added to every output time.
    """
    spans = _clip_and_merge(segments, total_ms, gap_ms=rules.min_silence_ms)
    spans = [(s, e) for s, e in spans if e - s >= rules.min_speech_ms]
    if rules.max_segment_ms is not None:
        budget = rules.max_segment_ms - rules.pad_start_ms - rules.pad_end_ms
        window = rules.split_window_ms if rules.split_window_ms is not None else rules.max_segment_ms // 2
        spans = [piece for s, e in spans for piece in _split(s, e, budget, window, levels, level_frame_ms)]
    spans = _pad(spans, rules.pad_start_ms, rules.pad_end_ms, total_ms)
    return [SpeechSegment(s + offset_ms, e + offset_ms) for s, e in spans]


def frame_energy_db(samples: np.ndarray, sample_rate: int, frame_ms: int = 10) -> np.ndarray:
    """[F] mean-square level in dB (full scale = 0 dB) of consecutive ``frame_ms`` frames.

    F = ceil(N / frame); the last frame is zero-padded.
    """
    frame = max(1, sample_rate * frame_ms // 1000)
    x = np.asarray(samples, dtype=np.float64)
    num_frames = math.ceil(len(x) / frame)
    padded = np.zeros(num_frames * frame)
    padded[: len(x)] = x
    return frames_level_db(padded.reshape(num_frames, frame))


def frames_level_db(frames: np.ndarray) -> np.ndarray:
    """frames [F, S] -> [F] mean-square level of each frame in dB (full scale = 0 dB)."""
    power = np.mean(np.square(frames.astype(np.float64)), axis=1) if len(frames) else np.zeros(0)
    return 10.0 * np.log10(power + 1e-10)


def _clip_and_merge(
    segments: Sequence[SpeechSegment], total_ms: int | None, gap_ms: int
) -> list[tuple[int, int]]:
    upper = math.inf if total_ms is None else total_ms
    spans = sorted((max(0, seg.start_ms), int(min(seg.end_ms, upper))) for seg in segments)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        if merged and (start < merged[-1][1] or start - merged[-1][1] < gap_ms):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _split(
    start: int, end: int, budget: int, window: int, levels: np.ndarray | None, frame_ms: int
) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into pieces of at most ``budget`` ms."""
    if end - start <= budget:
        return [(start, end)]
    if levels is None:
        count = math.ceil((end - start) / budget)
        bounds = [start + round(i * (end - start) / count) for i in range(count + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))
    pieces = []
    while end - start > budget:
        cut = _quietest_cut(start, budget, window, levels, frame_ms)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _quietest_cut(start: int, budget: int, window: int, levels: np.ndarray, frame_ms: int) -> int:
    """Cut time in ``(start, start + budget]``: middle of the quietest frame in the last ``window`` ms.

    Ties go to the latest frame (longer pieces); frames without a level fall back to a cut at the budget.
    """
    latest = start + budget
    earliest = max(start + 1, latest - window)
    first = -(-earliest // frame_ms)  # first frame starting at/after `earliest`
    last = min((latest - frame_ms // 2) // frame_ms, len(levels) - 1)  # its middle must be <= latest
    if last < first:
        return latest
    span = np.asarray(levels[first : last + 1], dtype=np.float64)
    frame = first + int(len(span) - 1 - np.argmin(span[::-1]))
    return min(latest, max(earliest, frame * frame_ms + frame_ms // 2))


def _pad(
    spans: list[tuple[int, int]], pad_start: int, pad_end: int, total_ms: int | None
) -> list[tuple[int, int]]:
    upper = math.inf if total_ms is None else total_ms
    padded: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(spans):
        next_start = spans[i + 1][0] if i + 1 < len(spans) else upper
        lower = padded[-1][1] if padded else 0
        new_start = max(start - pad_start, lower, 0)
        new_end = int(min(end + pad_end, next_start, upper))
        padded.append((new_start, new_end))
    return padded
