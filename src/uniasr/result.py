"""Recognition results: `Result`, `Segment`, `Alternative`, their JSON, and n-best hypotheses -> `Result`.

Below everything that makes results (`uniasr.pipeline`, `uniasr.longform`, `uniasr.stream`) or prints them
(`uniasr.output`); it imports only the token table and the search's hypothesis type. torch-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from uniasr.decode.search import Hypothesis, hypothesis_tokens
from uniasr.decode.tokens import TokenTable, token_times

TokenSpan = tuple[int, int]
"""(start_ms, end_ms) of one token."""


@dataclass
class Alternative:
    """One entry of the n-best list."""

    text: str
    tokens: list[str]
    token_ids: list[int]
    score: float
    kana: str = ""  # the model's own output when `text` was converted from it (see Recognizer.text_form)


@dataclass
class Segment:
    """One recognised stretch of a long input (a VAD segment), or the whole of a short one.

    Times in ms from the start of the input; `timestamps` are per token, absolute.
    """

    start_ms: int
    end_ms: int
    text: str
    tokens: list[str] = field(default_factory=list)
    timestamps: list[TokenSpan] = field(default_factory=list)
    score: float = 0.0
    kana: str = ""


@dataclass
class Result:
    """Recognition result of one utterance. Times are in ms from the start of the audio.

    `text`: what to show (kanji-kana text for a model that writes orthographic kana, see
    `Recognizer.text_form`; ITN applied when asked); `kana`: the model's own output (its reading), always set.
    `segments`: the VAD segments of a long input, or one segment spanning a short input (empty on error).
    """

    key: str
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    timestamps: list[TokenSpan] = field(default_factory=list)
    score: float = 0.0
    nbest: list[Alternative] = field(default_factory=list)
    mode: str = ""
    duration_s: float = 0.0
    rtf: float = math.nan
    error: str | None = None
    segments: list[Segment] = field(default_factory=list)
    kana: str = ""


# ------------------------------------------------------------------------------------------ hypotheses
def best_tokens(
    hyp: Hypothesis, fire_frames: Any, alphas: Any, frame_ms: float, table: TokenTable, offset_ms: int = 0
) -> tuple[list[int], list[str], list[TokenSpan]]:
    """One hypothesis -> (output token ids, tokens, token times in ms + `offset_ms`).

    `fire_frames` [n] and `alphas` [T] are the pass's CIF output (numpy arrays or torch tensors) over
    encoder frames of `frame_ms` (see `uniasr.decode.tokens.token_times`).
    """
    ids = hypothesis_tokens(hyp)
    steps = [i for i, t in enumerate(hyp.token_ids[1:-1]) if t not in (0, 1, 2)]
    times = token_times(steps, fire_frames, alphas, frame_ms)
    return ids, table.to_tokens(ids), [(a + offset_ms, b + offset_ms) for a, b in times]


def hypotheses_to_result(
    key: str,
    hyps: Sequence[Hypothesis],
    fire_frames: Any,
    alphas: Any,
    frame_ms: float,
    table: TokenTable,
    render: Callable[[str], str],
    *,
    mode: str,
    duration_s: float,
    offset_ms: int = 0,
) -> Result:
    """N-best hypotheses (best first) of one utterance -> its Result, with one Alternative per hypothesis.

    `render`: the model's detokenised kana -> the text to show (`Recognizer.render_text`); token times come
    from the best hypothesis and the CIF output (see :func:`best_tokens`), moved by `offset_ms`.
    """
    ids, toks, times = best_tokens(hyps[0], fire_frames, alphas, frame_ms, table, offset_ms)
    alts = []
    for h in hyps:
        h_ids = hypothesis_tokens(h)
        h_toks = table.to_tokens(h_ids)
        h_kana = table.detokenize(h_toks)
        alts.append(Alternative(render(h_kana), h_toks, h_ids, h.score, h_kana))
    kana = table.detokenize(toks)
    return Result(key, render(kana), toks, ids, times, hyps[0].score, alts, mode, duration_s, kana=kana)


# ------------------------------------------------------------------------------------------ JSON
def result_to_json(result: Result) -> dict[str, Any]:
    """JSON-ready dict: key, text, kana, tokens, timestamps, score, mode, duration_s, segments (+ nbest when
    there is more than one hypothesis); a failed input: key and error. Token ids are not stored."""
    if result.error:
        return {"key": result.key, "error": result.error}
    d: dict[str, Any] = {
        "key": result.key,
        "text": result.text,
        "kana": result.kana,
        "tokens": list(result.tokens),
        "timestamps": [list(t) for t in result.timestamps],
        "score": result.score,
        "mode": result.mode,
        "duration_s": result.duration_s,
    }
    if len(result.nbest) > 1:
        d["nbest"] = [
            {"text": a.text, "kana": a.kana, "tokens": a.tokens, "score": a.score} for a in result.nbest
        ]
    d["segments"] = [
        {
            "start_ms": s.start_ms,
            "end_ms": s.end_ms,
            "text": s.text,
            "kana": s.kana,
            "tokens": list(s.tokens),
            "timestamps": [list(t) for t in s.timestamps],
            "score": s.score,
        }
        for s in result.segments
    ]
    return d


def result_from_json(data: str | dict[str, Any]) -> Result:
    """The Result of a :func:`result_to_json` dict or its JSON text (token ids are not stored)."""
    d = json.loads(data) if isinstance(data, str) else data
    if "error" in d:
        return Result(d["key"], error=d["error"])
    segments = [
        Segment(
            s["start_ms"],
            s["end_ms"],
            s["text"],
            list(s["tokens"]),
            [(int(a), int(b)) for a, b in s["timestamps"]],
            s["score"],
            s.get("kana", ""),
        )
        for s in d.get("segments", [])
    ]
    nbest = [
        Alternative(a["text"], list(a["tokens"]), [], a["score"], a.get("kana", ""))
        for a in d.get("nbest", [])
    ]
    return Result(
        d["key"],
        text=d["text"],
        kana=d.get("kana", ""),
        tokens=list(d["tokens"]),
        timestamps=[(int(a), int(b)) for a, b in d["timestamps"]],
        score=d["score"],
        nbest=nbest,
        mode=d.get("mode", ""),
        duration_s=d.get("duration_s", 0.0),
        segments=segments,
    )
