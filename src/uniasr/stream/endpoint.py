"""Endpoint rules for live streams: when does an utterance end? A dataclass and a pure function.

>>> cfg = EndpointConfig(trailing_silence_ms=800)
>>> st = EndpointState()
>>> st, d = check_endpoint(cfg, st, speech_started=True, speech_ended_ms=None, now_ms=500)
>>> st, d = check_endpoint(cfg, st, speech_started=False, speech_ended_ms=1200, now_ms=1500)
>>> d is None
True
>>> check_endpoint(cfg, st, speech_started=False, speech_ended_ms=None, now_ms=2000)[1]
'endpoint'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Decision = Literal["endpoint", "drop"] | None


@dataclass(frozen=True)
class EndpointConfig:
    """trailing_silence_ms: silence after speech that ends an utterance; max_utterance_ms: forced end;
    max_leading_silence_ms: an utterance that has heard no speech for this long is dropped (its audio is
    silence), so an idle stream keeps constant memory."""

    trailing_silence_ms: int = 800
    max_utterance_ms: int = 30_000
    max_leading_silence_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.trailing_silence_ms <= 0 or self.max_utterance_ms <= 0 or self.max_leading_silence_ms <= 0:
            raise ValueError(f"endpoint durations must be > 0: {self}")


@dataclass(frozen=True)
class EndpointState:
    """Times are relative to the utterance start."""

    speech_seen: bool = False
    in_speech: bool = False
    last_speech_end_ms: int | None = None


def check_endpoint(
    cfg: EndpointConfig,
    st: EndpointState,
    speech_started: bool,
    speech_ended_ms: int | None,
    now_ms: int,
) -> tuple[EndpointState, Decision]:
    """Update with what the VAD reported for audio up to `now_ms` and decide.

    speech_started: the VAD opened a speech segment in this piece; speech_ended_ms: it closed one there.
    """
    if speech_started:
        st = replace(st, speech_seen=True, in_speech=True)
    if speech_ended_ms is not None:
        st = replace(st, speech_seen=True, in_speech=False, last_speech_end_ms=speech_ended_ms)
    if now_ms >= cfg.max_utterance_ms:
        return st, "endpoint" if st.speech_seen else "drop"
    if not st.speech_seen:
        return st, "drop" if now_ms >= cfg.max_leading_silence_ms else None
    silent_for = None if st.in_speech or st.last_speech_end_ms is None else now_ms - st.last_speech_end_ms
    if silent_for is not None and silent_for >= cfg.trailing_silence_ms:
        return st, "endpoint"
    return st, None
