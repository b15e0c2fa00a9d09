"""The VAD interface shared by every backend: segments, streaming events and the detector protocol.

A detector works on float32 mono samples at its own ``sample_rate``. Offline, ``detect`` returns speech
segments in milliseconds. Streaming, all per-stream state is an explicit value: ``new_stream()`` creates
it, ``accept(state, samples)`` returns a *new* state plus the events the chunk produced (the state passed
in is never modified, so one detector object can serve any number of streams), and ``finish(state)``
flushes the end of the audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

__all__ = [
    "SpeechSegment",
    "VadEvent",
    "VoiceActivityDetector",
    "check_samples",
    "segments_from_events",
]


@dataclass(frozen=True, order=True)
class SpeechSegment:
    """One stretch of speech, ``[start_ms, end_ms)`` in milliseconds from the start of the audio."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms < self.start_ms:
            raise ValueError(f"SpeechSegment end_ms={self.end_ms} is before start_ms={self.start_ms}")

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def shifted(self, offset_ms: int) -> SpeechSegment:
        """The same segment moved by ``offset_ms`` (maps block-relative times back to the whole audio)."""
        return SpeechSegment(self.start_ms + offset_ms, self.end_ms + offset_ms)


@dataclass(frozen=True)
class VadEvent:
    """A streaming decision.

    ``kind == "start"``: speech began at ``start_ms`` (``end_ms`` is None); the segment is still open.
    ``kind == "end"``: the segment ``[start_ms, end_ms)`` is closed; this is the endpointer's answer to
    "has speech ended, and where?".
    """

    kind: Literal["start", "end"]
    start_ms: int
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("start", "end"):
            raise ValueError(f"VadEvent kind={self.kind!r}; valid kinds are 'start' and 'end'")
        if (self.kind == "end") != (self.end_ms is not None):
            raise ValueError(f"VadEvent kind={self.kind!r} with end_ms={self.end_ms}: only 'end' has end_ms")

    @property
    def segment(self) -> SpeechSegment:
        """The closed segment of an ``"end"`` event."""
        if self.end_ms is None:
            raise ValueError("a 'start' event has no closed segment yet")
        return SpeechSegment(self.start_ms, self.end_ms)


StateT = TypeVar("StateT")


@runtime_checkable
class VoiceActivityDetector(Protocol[StateT]):
    """What every VAD backend provides (see the module docstring for the streaming contract)."""

    sample_rate: int

    def detect(self, samples: np.ndarray, sample_rate: int | None = None) -> list[SpeechSegment]:
        """Speech segments of a whole clip. ``samples``: float32 mono [N] at ``self.sample_rate``."""
        ...

    def new_stream(self) -> StateT:
        """A fresh per-stream state."""
        ...

    def accept(self, state: StateT, samples: np.ndarray) -> tuple[StateT, list[VadEvent]]:
        """Feed a chunk of any length; returns the next state and the events it produced, in order."""
        ...

    def finish(self, state: StateT) -> list[VadEvent]:
        """End of audio: the remaining events (an open segment is closed). Pure like ``accept``: the
        state stays valid, so finishing is also a way to ask "what if the audio ended here?"."""
        ...


def check_samples(samples: np.ndarray, expected_rate: int, sample_rate: int | None = None) -> np.ndarray:
    """Validate a waveform for a detector and return it as contiguous float32 [N].

    Raises ValueError naming the offending sample rate, shape or dtype.
    """
    if sample_rate is not None and int(sample_rate) != int(expected_rate):
        raise ValueError(
            f"sample_rate={sample_rate} Hz, but this VAD expects {expected_rate} Hz audio; resample first "
            f"(e.g. uniasr.audio.load_audio(source, sample_rate={expected_rate}))"
        )
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"samples has shape {array.shape}; expected mono audio of shape [num_samples]")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"samples has dtype {array.dtype}; expected float audio in [-1, 1] (divide int16 PCM by 32768)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def segments_from_events(events: Iterable[VadEvent]) -> list[SpeechSegment]:
    """The closed segments of an event sequence, in order."""
    return [event.segment for event in events if event.kind == "end"]
