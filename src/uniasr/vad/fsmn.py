"""FSMN-VAD (FunASR ``fsmn-vad`` compatible), offline and streaming.

Audio is processed in *steps* of fixed length, like FunASR's ``chunk_size``: 200 ms for streams and
60 s for :meth:`FsmnVad.detect`. Callers may feed chunks of any length; they are re-cut into steps, so the
segments never depend on the caller's chunking. Per step: features -> FSMN posteriors -> endpoint state
machine.

**Dynamic silence (FunASR >= 1.4 default).** Before each step, while a segment is open the speech time
accumulates by one step; the end-silence threshold is looked up in ``silence_schedule`` (the first entry
whose limit is >= the accumulated time) and the speech/noise threshold is set to
``dynamic_speech_noise_thres``. The accumulator restarts whenever a step reports something: in a stream
any event, in :meth:`detect` a completed segment. With ``dynamic_silence=False`` the config's
``max_end_silence_time`` and ``speech_noise_thres`` apply, and offline equals streaming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from uniasr.audio.features import Cmvn
from uniasr.funasr.fsmn_vad import read_fsmn_vad_dir
from uniasr.vad.base import SpeechSegment, VadEvent, check_samples
from uniasr.vad.fsmn_endpoint import (
    EndpointConfig,
    EndpointState,
    Mark,
    Phase,
    initial_endpoint_state,
    run_block,
)
from uniasr.vad.fsmn_frontend import FrontendState, FsmnFrontendConfig, frontend_step, initial_frontend_state
from uniasr.vad.fsmn_model import FsmnEncoder
from uniasr.vad.segments import SegmentRules, apply_segment_rules

__all__ = ["DEFAULT_SILENCE_SCHEDULE", "FsmnStreamState", "FsmnVad", "FsmnVadOptions"]

# (accumulated speech ms <= limit, end silence ms), FunASR 1.4's DEFAULT_SILENCE_SCHEDULE values
DEFAULT_SILENCE_SCHEDULE: tuple[tuple[float, int], ...] = (
    (10000, 2000),
    (20000, 1000),
    (30000, 800),
    (40000, 600),
    (50000, 400),
    (60000, 200),
    (math.inf, 100),
)


@dataclass(frozen=True)
class FsmnVadOptions:
    dynamic_silence: bool | None = None  # None: on unless max_end_silence_ms is given (FunASR default)
    silence_schedule: tuple[tuple[float, int], ...] = DEFAULT_SILENCE_SCHEDULE
    dynamic_speech_noise_thres: float = 0.5
    max_end_silence_ms: int | None = None  # overrides the config's max_end_silence_time
    speech_noise_thres: float | None = None  # overrides the config (the dynamic schedule overrides both)
    stream_step_ms: int = 200
    offline_step_ms: int = 60000

    def __post_init__(self) -> None:
        for name in ("stream_step_ms", "offline_step_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FsmnVadOptions.{name}={getattr(self, name)} must be > 0")
        if not self.silence_schedule:
            raise ValueError("FsmnVadOptions.silence_schedule is empty")

    @property
    def dynamic(self) -> bool:
        if self.dynamic_silence is None:
            return self.max_end_silence_ms is None
        return self.dynamic_silence


@dataclass(frozen=True)
class FsmnStreamState:
    """All per-stream state; treat as immutable (``accept`` returns a new one)."""

    pending: np.ndarray  # samples waiting for a full step
    frontend: FrontendState
    caches: tuple[torch.Tensor, ...]  # FSMN memory caches, one [1, proj_dim, cache_frames] per layer
    endpoint: EndpointState
    step_samples: int
    frame_ms: int
    report_starts: bool  # stream: report "start" events (and restart the schedule on them)
    scheduled_ms: int = 0  # dynamic silence: accumulated speech time
    schedule_in_speech: bool = False

    @property
    def in_speech(self) -> bool:
        """A segment is open (its "start" event has been emitted)."""
        return self.endpoint.phase == Phase.IN_SPEECH

    @property
    def processed_ms(self) -> int:
        """Audio time decided so far (frames through the state machine)."""
        return self.endpoint.num_frames * self.frame_ms


class FsmnVad:
    """FSMN-VAD detector. The model is shared and never modified; streams carry their own state."""

    def __init__(
        self,
        encoder: FsmnEncoder,
        frontend: FsmnFrontendConfig,
        endpoint: EndpointConfig,
        cmvn: Cmvn,
        options: FsmnVadOptions | None = None,
        rules: SegmentRules | None = None,
    ) -> None:
        if endpoint.frame_ms != frontend.frame_shift_ms:
            raise ValueError(
                f"endpoint frame_ms={endpoint.frame_ms} differs from frontend frame_shift_ms="
                f"{frontend.frame_shift_ms}"
            )
        self.encoder = encoder.eval()
        self.frontend = frontend
        self.endpoint = endpoint
        self.cmvn = cmvn
        self.options = options or FsmnVadOptions()
        self.rules = rules or SegmentRules()
        self.sample_rate = frontend.sample_rate

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, options: FsmnVadOptions | None = None, rules: SegmentRules | None = None
    ) -> FsmnVad:
        """Load a FunASR fsmn-vad model dir (``config.yaml``, ``model.pt``, ``am.mvn``)."""
        files = read_fsmn_vad_dir(model_dir)
        encoder = FsmnEncoder(files.encoder)
        encoder.load_state_dict(files.state_dict, strict=True)
        return cls(encoder, files.frontend, files.endpoint, files.cmvn, options, rules)

    def with_options(self, **changes: object) -> FsmnVad:
        """A detector sharing this model with some :class:`FsmnVadOptions` fields changed."""
        options = replace(self.options, **changes)  # type: ignore[arg-type]
        return FsmnVad(self.encoder, self.frontend, self.endpoint, self.cmvn, options, self.rules)

    # ---- frame level (parity checks, custom post-processing) ----
    def compute_features(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole clip -> (feats [T, n_mels * lfr_m] f32, decibel [T] f32), T = 1 + (N - 400) // 160."""
        samples = check_samples(samples, self.sample_rate)
        _, feats, decibel = frontend_step(
            self.frontend, self.cmvn, initial_frontend_state(self.frontend), samples, final=True
        )
        return feats, decibel

    def compute_posteriors(self, feats: np.ndarray) -> np.ndarray:
        """feats [T, D] -> FSMN posteriors [T, output_dim] f32."""
        with torch.no_grad():
            probs, _ = self.encoder(torch.from_numpy(np.asarray(feats, dtype=np.float32))[None])
        return probs[0].numpy()

    # ---- the VoiceActivityDetector interface ----
    def detect(self, samples: np.ndarray, sample_rate: int | None = None) -> list[SpeechSegment]:
        samples = check_samples(samples, self.sample_rate, sample_rate)
        state = self._new_state(self.options.offline_step_ms, report_starts=False)
        state, marks, p_sil = self._run(state, samples, final=True)
        segments = [SpeechSegment(m.start_ms, m.end_ms) for m in marks if m.end_ms is not None]
        if state.endpoint.open_start_ms is not None:  # FunASR reports it as [start, last speech frame]
            segments.append(SpeechSegment(state.endpoint.open_start_ms, state.endpoint.open_end_ms))
        levels = 1.0 - p_sil  # speech probability: lower is quieter
        total_ms = len(samples) * 1000 // self.sample_rate
        return apply_segment_rules(
            segments, self.rules, total_ms=total_ms, levels=levels, level_frame_ms=self.endpoint.frame_ms
        )

    def new_stream(self) -> FsmnStreamState:
        return self._new_state(self.options.stream_step_ms, report_starts=True)

    def accept(self, state: FsmnStreamState, samples: np.ndarray) -> tuple[FsmnStreamState, list[VadEvent]]:
        samples = check_samples(samples, self.sample_rate)
        state, marks, _ = self._run(state, samples, final=False)
        return state, _events(marks)

    def finish(self, state: FsmnStreamState) -> list[VadEvent]:
        state, marks, _ = self._run(state, np.zeros(0, dtype=np.float32), final=True)
        events = _events(marks)
        if state.endpoint.open_start_ms is not None:
            # FunASR's streaming output leaves a segment opened on the very last frame unterminated;
            # we close it at its last speech frame, as FunASR's offline output does.
            events.append(VadEvent("end", state.endpoint.open_start_ms, state.endpoint.open_end_ms))
        return events

    # ---- internals ----
    def _new_state(self, step_ms: int, *, report_starts: bool) -> FsmnStreamState:
        endpoint = initial_endpoint_state(self.endpoint)
        if self.options.max_end_silence_ms is not None:
            endpoint.end_silence_ms = self.options.max_end_silence_ms - self.endpoint.speech_to_sil_ms
        if self.options.speech_noise_thres is not None:
            endpoint.speech_noise_thres = self.options.speech_noise_thres
        return FsmnStreamState(
            pending=np.zeros(0, dtype=np.float32),
            frontend=initial_frontend_state(self.frontend),
            caches=self.encoder.initial_caches(1),
            endpoint=endpoint,
            step_samples=self.sample_rate * step_ms // 1000,
            frame_ms=self.endpoint.frame_ms,
            report_starts=report_starts,
        )

    def _run(
        self, state: FsmnStreamState, samples: np.ndarray, *, final: bool
    ) -> tuple[FsmnStreamState, list[Mark], np.ndarray]:
        """Cut ``pending + samples`` into steps; when ``final`` the remainder (maybe empty) is the last step.

        Returns the new state, the marks in order and the silence probability of every frame scored.
        """
        buffer = np.concatenate([state.pending, samples])
        size = state.step_samples
        num_steps = len(buffer) // size
        marks: list[Mark] = []
        p_sils = [np.zeros(0)]
        for i in range(num_steps):
            state, step_marks, p_sil = self._step(state, buffer[i * size : (i + 1) * size], final=False)
            marks += step_marks
            p_sils.append(p_sil)
        rest = buffer[num_steps * size :]
        if final:
            state, step_marks, p_sil = self._step(state, rest, final=True)
            marks += step_marks
            p_sils.append(p_sil)
            rest = rest[:0]
        state = replace(state, pending=rest.copy())
        return state, marks, np.concatenate(p_sils)

    def _step(
        self, state: FsmnStreamState, samples: np.ndarray, *, final: bool
    ) -> tuple[FsmnStreamState, list[Mark], np.ndarray]:
        endpoint = state.endpoint.copy()
        scheduled_ms, in_speech = state.scheduled_ms, state.schedule_in_speech
        step_ms = state.step_samples * 1000 // self.sample_rate
        if self.options.dynamic:
            if endpoint.phase == Phase.IN_SPEECH or in_speech:
                scheduled_ms, in_speech = scheduled_ms + step_ms, True
            for limit_ms, silence_ms in self.options.silence_schedule:
                if scheduled_ms <= limit_ms:
                    endpoint.end_silence_ms = max(silence_ms - self.endpoint.speech_to_sil_ms, 0)
                    endpoint.speech_noise_thres = self.options.dynamic_speech_noise_thres
                    break
        frontend, feats, decibel = frontend_step(
            self.frontend, self.cmvn, state.frontend, samples, final=final
        )
        caches, p_sil = state.caches, np.zeros(0)
        if len(feats):
            with torch.no_grad():
                probs, caches = self.encoder(torch.from_numpy(feats)[None], caches)
            p_sil = _silence_probability(probs[0].numpy(), self.endpoint.sil_pdf_ids)
        endpoint, marks = run_block(self.endpoint, endpoint, p_sil, decibel, final=final)
        reported = bool(marks) if state.report_starts else any(m.end_ms is not None for m in marks)
        if self.options.dynamic and reported:
            scheduled_ms, in_speech = 0, False
        new_state = replace(
            state,
            frontend=frontend,
            caches=caches,
            endpoint=endpoint,
            scheduled_ms=scheduled_ms,
            schedule_in_speech=in_speech,
        )
        return new_state, marks, p_sil


def _silence_probability(probs: np.ndarray, sil_pdf_ids: tuple[int, ...]) -> np.ndarray:
    """[T] sum of the silence-class posteriors, added in float64 one class at a time."""
    total = np.zeros(probs.shape[0], dtype=np.float64)
    for index in sil_pdf_ids:
        total += probs[:, index].astype(np.float64)
    return total


def _events(marks: list[Mark]) -> list[VadEvent]:
    return [
        VadEvent("start", m.start_ms) if m.end_ms is None else VadEvent("end", m.start_ms, m.end_ms)
        for m in marks
    ]
