"""Output formats: text, JSON, SRT, WebVTT and TSV, as pure functions ``Result -> str``.

Subtitle cues follow the segments of a result (one per VAD segment, or one for a short input). A segment
whose text does not fit in ``CueOptions.max_lines`` lines of ``max_line_width`` columns (a full-width
character counts 2, so the default 42 holds 21 Japanese characters) is split into several cues, at
punctuation or spaces where possible, else between characters (Japanese has no spaces); the cue times
come from the token times. Text changed by ITN is mapped back to the token times by aligning it with
the tokens' characters.

Writing files (:func:`write_result_file`) never replaces an existing file unless asked to.
"""

from __future__ import annotations

import difflib
import json
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from uniasr.decode.tokens import SPECIAL_TOKENS
from uniasr.output.kaldi_dir import output_dir_files
from uniasr.result import Result, Segment, result_to_json

FORMATS = ("text", "json", "srt", "vtt", "tsv")
SUBTITLE_FORMATS = ("srt", "vtt")
FILE_FORMATS = ("json", "srt", "vtt", "tsv")  # written as DIR/<key>.<suffix> by --output-dir
SUFFIXES = {"text": "txt", "json": "json", "srt": "srt", "vtt": "vtt", "tsv": "tsv"}
_BREAK_AFTER = frozenset("。、．，！？!?,.;；:：」』）)】 \u3000")
_SENTENCE_END = frozenset("。．！？!?")


@dataclass(frozen=True)
class CueOptions:
    """Subtitle layout. Widths are display columns: a full-width (East Asian wide) character counts 2."""

    max_line_width: int = 42
    max_lines: int = 2

    def __post_init__(self) -> None:
        if self.max_line_width < 2:
            raise ValueError(f"CueOptions.max_line_width={self.max_line_width} must be >= 2 columns")
        if self.max_lines < 1:
            raise ValueError(f"CueOptions.max_lines={self.max_lines} must be >= 1")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str  # lines joined by "\n"


# ------------------------------------------------------------------------------------------ text, JSON
def format_text(result: Result) -> str:
    """``key<TAB>text`` (and ``key<TAB>#i score<TAB>text`` for the n-best entries from the 2nd on)."""
    if result.error:
        return f"{result.key}\tERROR: {result.error}"
    lines = [f"{result.key}\t{result.text}"]
    lines += [
        f"{result.key}\t#{i + 1} {a.score:.3f}\t{a.text}" for i, a in enumerate(result.nbest[1:], start=1)
    ]
    return "\n".join(lines)


def format_json(result: Result) -> str:
    """One line of JSON (see :func:`uniasr.result.result_to_json`; :func:`uniasr.result.result_from_json`
    reads it back)."""
    return json.dumps(result_to_json(result), ensure_ascii=False)


# ------------------------------------------------------------------------------------------ TSV
def format_tsv(result: Result) -> str:
    """``start<TAB>end<TAB>text`` (ms) per segment with text, after a header line."""
    rows = ["start\tend\ttext"]
    rows += [f"{s.start_ms}\t{s.end_ms}\t{_one_line(s.text)}" for s in result.segments if s.text.strip()]
    return "\n".join(rows) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


# ------------------------------------------------------------------------------------------ subtitles
def srt_time(ms: int) -> str:
    """Milliseconds -> SRT timestamp.

    >>> srt_time(3723004)
    '01:02:03,004'
    """
    h, rest = divmod(max(int(ms), 0), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{milli:03d}"


def vtt_time(ms: int) -> str:
    """Milliseconds -> WebVTT timestamp.

    >>> vtt_time(1230)
    '00:00:01.230'
    """
    return srt_time(ms).replace(",", ".")


def format_srt(result: Result, options: CueOptions = CueOptions()) -> str:
    """SubRip: numbered cues ``1``, ``2``, ... with ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` times."""
    blocks = [
        f"{i}\n{srt_time(c.start_ms)} --> {srt_time(c.end_ms)}\n{c.text}\n"
        for i, c in enumerate(subtitle_cues(result, options), start=1)
    ]
    return "\n".join(blocks)


def format_vtt(result: Result, options: CueOptions = CueOptions()) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` times."""
    blocks = ["WEBVTT\n"]
    blocks += [
        f"{vtt_time(c.start_ms)} --> {vtt_time(c.end_ms)}\n{c.text.replace('-->', '->')}\n"
        for c in subtitle_cues(result, options)
    ]
    return "\n".join(blocks)


def subtitle_cues(result: Result, options: CueOptions = CueOptions()) -> list[Cue]:
    """Cues of all segments with text, in order; times never go backwards."""
    cues: list[Cue] = []
    for seg in result.segments:
        if seg.text.strip():
            cues += segment_cues(seg, options)
    for i in range(1, len(cues)):  # keep cues ordered even if segments touch
        prev, cue = cues[i - 1], cues[i]
        if cue.start_ms < prev.end_ms:
            cues[i - 1] = Cue(prev.start_ms, max(cue.start_ms, prev.start_ms + 1), prev.text)
    return cues


def segment_cues(seg: Segment, options: CueOptions = CueOptions()) -> list[Cue]:
    """One segment -> cues of at most ``max_lines`` lines of ``max_line_width`` columns each; a cue ends
    at a sentence end (a segment of several sentences gets a cue per sentence)."""
    text = seg.text.strip()
    bounds = _chunk_bounds(text, options.max_line_width * options.max_lines)
    if len(bounds) == 1:
        return [Cue(seg.start_ms, max(seg.end_ms, seg.start_ms + 1), _wrap(text, options))]
    times = char_times(text, seg.tokens, seg.timestamps, seg.start_ms, seg.end_ms)
    starts = [seg.start_ms] + [times[a][0] for a, _ in bounds[1:]]
    cues: list[Cue] = []
    for k, (a, b) in enumerate(bounds):
        start = max(starts[k], cues[-1].end_ms if cues else seg.start_ms)
        end = starts[k + 1] if k + 1 < len(bounds) else seg.end_ms
        cues.append(Cue(start, max(end, start + 1), _wrap(text[a:b].strip(), options)))
    return cues


def char_times(
    text: str, tokens: Sequence[str], timestamps: Sequence[tuple[int, int]], start_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of every character of ``text``, from the times of the tokens that spell it.

    ``text`` may differ from the tokens (ITN, spaces): characters are aligned with the tokens' characters
    (difflib); unaligned characters share the time between their aligned neighbours evenly.
    """
    raw_chars: list[str] = []
    raw_times: list[tuple[int, int]] = []
    for tok, span in zip(tokens, timestamps):
        if tok in SPECIAL_TOKENS:
            continue
        piece = tok[:-2] if tok.endswith("@@") and len(tok) > 2 else tok
        raw_chars += piece
        raw_times += [(int(span[0]), int(span[1]))] * len(piece)
    raw = "".join(raw_chars)
    if raw == text:
        return raw_times
    known: list[tuple[int, int] | None] = [None] * len(text)
    matcher = difflib.SequenceMatcher(None, raw, text, autojunk=False)
    for a, b, n in matcher.get_matching_blocks():
        known[b : b + n] = raw_times[a : a + n]
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        here = known[i]
        if here is not None:
            out.append(here)
            i += 1
            continue
        j = next((k for k in range(i, len(text)) if known[k] is not None), len(text))
        lo = out[-1][1] if out else start_ms
        after = known[j] if j < len(text) else None
        hi = max(after[0] if after is not None else end_ms, lo)
        count = j - i  # unaligned characters share the gap evenly
        out += [(lo + (hi - lo) * k // count, lo + (hi - lo) * (k + 1) // count) for k in range(count)]
        i = j
    return out


def _char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    return sum(_char_width(ch) for ch in text)


def _fit(text: str, start: int, limit: int) -> int:
    """The largest end such that text[start:end] is at most ``limit`` columns (at least one character)."""
    used, end = 0, start
    while end < len(text) and used + _char_width(text[end]) <= limit:
        used += _char_width(text[end])
        end += 1
    return max(end, start + 1)


def _break_point(text: str, start: int, end: int) -> int:
    """Where to end a piece of text[start:end]: after its first sentence end (a cue holds one sentence, or
    a part of one), else after the last punctuation or space in its second half."""
    for i in range(start + 1, min(end, len(text) - 1) + 1):
        if text[i - 1] in _SENTENCE_END and text[i] not in _SENTENCE_END:
            return i
    if end >= len(text):
        return end
    for i in range(end, start + (end - start) // 2, -1):
        if text[i - 1] in _BREAK_AFTER or text[i] in " \u3000":
            return i
    return end


def _chunk_bounds(text: str, limit: int) -> list[tuple[int, int]]:
    """[(start, end)] character ranges of at most ``limit`` columns covering ``text``."""
    bounds, start = [], 0
    while start < len(text):
        while start < len(text) and text[start] in " \u3000":
            start += 1
        if start >= len(text):
            break
        end = _break_point(text, start, _fit(text, start, limit))
        bounds.append((start, end))
        start = end
    return bounds


def _wrap(text: str, options: CueOptions) -> str:
    """Lines of at most ``max_line_width`` columns, balanced (a cue of 2 lines splits near the middle)."""
    width = options.max_line_width
    total = _width(text)
    if total <= width:
        return text
    balanced = -(-total // min(options.max_lines, -(-total // width)))
    lines: list[str] = []
    for target, at_breaks in ((balanced, True), (width, True), (width, False)):
        lines = _lines(text, target, at_breaks)
        if len(lines) <= options.max_lines and all(_width(line) <= width for line in lines):
            break
    return "\n".join(lines)


def _lines(text: str, target: int, at_breaks: bool) -> list[str]:
    """Greedy lines of at most ``target`` columns, ended at punctuation or spaces if ``at_breaks``."""
    lines, start = [], 0
    while start < len(text):
        end = _fit(text, start, target)
        if at_breaks:
            end = _break_point(text, start, end)
        line = text[start:end].strip()
        if line:
            lines.append(line)
        start = end
    return lines


# ------------------------------------------------------------------------------------------ dispatch
def format_result(result: Result, fmt: str, options: CueOptions = CueOptions()) -> str:
    """``result`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "text":
        return format_text(result)
    if fmt == "json":
        return format_json(result)
    if result.error:
        raise ValueError(f"{result.key}: no {fmt} output for a failed input ({result.error})")
    if fmt == "srt":
        return format_srt(result, options)
    if fmt == "vtt":
        return format_vtt(result, options)
    if fmt == "tsv":
        return format_tsv(result)
    raise ValueError(f"unknown output format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def result_path(out_dir: str | Path, key: str, fmt: str) -> Path:
    """``out_dir/<key>.<suffix>``; keys that are not plain file names are refused."""
    if not key or key in (".", "..") or "/" in key or (os.sep != "/" and os.sep in key) or "\0" in key:
        raise ValueError(f"key {key!r} cannot be a file name; keys must not contain path separators")
    return Path(out_dir) / f"{key}.{SUFFIXES[fmt]}"


def output_paths(out_dir: str | Path, keys: Sequence[str], fmt: str) -> list[Path]:
    """Every file a run writes into ``out_dir``: ``1best_recog/*`` and, for a file format, ``<key>.<suffix>``
    (checked before decoding, so an existing file costs no work)."""
    per_key = [result_path(out_dir, k, fmt) for k in keys] if fmt in FILE_FORMATS else []
    return [*output_dir_files(out_dir), *per_key]


def write_result_file(
    result: Result,
    fmt: str,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    options: CueOptions = CueOptions(),
) -> Path:
    """Write ``out_dir/<key>.<suffix>``. Raises FileExistsError naming the file if it exists and
    ``overwrite`` is false (the check and the creation are one atomic step)."""
    path = result_path(out_dir, result.key, fmt)
    content = format_result(result, fmt, options)
    if not content.endswith("\n"):
        content += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "w" if overwrite else "x", encoding="utf-8") as f:
            f.write(content)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; pass --overwrite (overwrite=True) to replace it"
        ) from None
    return path


def write_result_files(
    results: Sequence[Result],
    fmt: str,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    options: CueOptions = CueOptions(),
) -> list[str]:
    """Write one file per successful result; returns the errors (one message per file not written)."""
    errors = []
    for r in results:
        if r.error is None:
            try:
                write_result_file(r, fmt, out_dir, overwrite=overwrite, options=options)
            except (OSError, ValueError) as e:
                errors.append(str(e))
    return errors
