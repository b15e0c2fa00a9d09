"""Character error rate (CER) scoring for Japanese ASR output.

Pure Python + numpy (no torch). The alignment is a character Levenshtein alignment that also counts
substitutions (S), deletions (D) and insertions (I). Among the alignments with the fewest edits it picks
the one with the fewest deletions, then the fewest insertions, so the counts are deterministic.

Typical use::

    refs = read_text_file("data/test/text")
    hyps = read_text_file("exp/decode/text")
    total, per_key, missing = score_texts(refs, hyps, NormalizeOptions())
    print(total.cer)

or ``python -m uniasr.cer REF_TEXT HYP_TEXT`` for a human-readable report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "ErrorCounts",
    "NormalizeOptions",
    "align",
    "main_eval_texts",
    "normalize_text",
    "read_text_file",
    "score_texts",
]


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of one or more aligned utterances (characters)."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def cer(self) -> float:
        """errors / reference characters (a reference of length 0 counts as 1, so the CER stays finite)."""
        return self.errors / max(self.reference_length, 1)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


@dataclass(frozen=True)
class NormalizeOptions:
    """How texts are normalised before scoring (applied identically to reference and hypothesis).

    nfkc: Unicode NFKC (full-width Latin/digits -> ASCII, half-width katakana -> full-width, ...).
    strip_punctuation: remove every character of Unicode category P* (、。「」！？・… and ASCII punctuation).
    strip_spaces: remove all whitespace, including U+3000 (FunASR's ja output has spaces between kana).
    kana: compare katakana readings instead of written forms: with pyopenjtalk installed the text is
        converted to its katakana pronunciation; without it only hiragana is mapped to katakana.
    """

    nfkc: bool = True
    strip_punctuation: bool = True
    strip_spaces: bool = True
    kana: bool = False


_HIRA_TO_KATA = {code: code + 0x60 for code in range(0x3041, 0x3097)}
_HIRA_TO_KATA.update({0x309D: 0x30FD, 0x309E: 0x30FE})  # ゝゞ -> ヽヾ
_warned_no_pyopenjtalk = False


def _to_katakana_reading(text: str) -> str:
    """Katakana pronunciation of `text` (pyopenjtalk if importable, else a hiragana -> katakana map)."""
    global _warned_no_pyopenjtalk
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a notice when onnxruntime is missing
            import pyopenjtalk
    except ImportError:
        if not _warned_no_pyopenjtalk:
            logger.warning(
                "NormalizeOptions(kana=True): pyopenjtalk is not installed, so only hiragana is mapped "
                "to katakana (kanji stay as they are). Install a reading frontend with: "
                "pip install pyopenjtalk-plus"
            )
            _warned_no_pyopenjtalk = True
        return text.translate(_HIRA_TO_KATA)
    if not text.strip():
        return text
    reading = pyopenjtalk.g2p(text, kana=True)  # a str (join=True)
    return "".join(reading).translate(_HIRA_TO_KATA)


def normalize_text(text: str, opts: NormalizeOptions) -> str:
    """Normalise one transcript for scoring. Order: NFKC, kana reading, punctuation, spaces."""
    if opts.nfkc:
        text = unicodedata.normalize("NFKC", text)
    if opts.kana:
        text = _to_katakana_reading(text)
    if opts.strip_punctuation:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if opts.strip_spaces:
        text = "".join(ch for ch in text if not ch.isspace())
    return text


def align(ref: str, hyp: str) -> ErrorCounts:
    """Character Levenshtein alignment of `hyp` against `ref`, returning S/D/I counts.

    The DP runs row by row over `ref` with numpy vectors over `hyp`. Each cell holds one int64 that
    encodes (errors, deletions, insertions) lexicographically: ``errors * W**2 + deletions * W + insertions``
    with ``W = len(ref) + len(hyp) + 1``, so minimising it finds a minimum-edit alignment and breaks ties by
    fewest deletions, then fewest insertions. Insertions inside a row are resolved with a running minimum
    (cur[j] = min_k<=j cand[k] + (j - k) * INS), so every row is a handful of vector operations:
    two 2,000-character strings take a few milliseconds.
    """
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return ErrorCounts(substitutions=0, deletions=n, insertions=m, reference_length=n)
    w = n + m + 1
    if w**3 >= 2**62:
        raise ValueError(
            f"strings too long to align: len(ref)={n}, len(hyp)={m}; keep n + m below ~1.6 million"
        )
    sub_cost = w * w
    del_cost = w * w + w
    ins_cost = w * w + 1
    hyp_codes = np.frombuffer(hyp.encode("utf-32-le"), dtype=np.uint32)
    ramp = np.arange(m + 1, dtype=np.int64) * ins_cost
    prev = ramp.copy()  # row 0: j insertions
    cand = np.empty(m + 1, dtype=np.int64)
    for ch in ref:
        diag = prev[:-1] + np.where(hyp_codes == ord(ch), 0, sub_cost)
        cand[0] = prev[0] + del_cost
        np.minimum(prev[1:] + del_cost, diag, out=cand[1:])
        prev = np.minimum.accumulate(cand - ramp) + ramp
    value = int(prev[-1])
    errors, rest = divmod(value, w * w)
    deletions, insertions = divmod(rest, w)
    return ErrorCounts(
        substitutions=errors - deletions - insertions,
        deletions=deletions,
        insertions=insertions,
        reference_length=n,
    )


def score_texts(
    refs: dict[str, str], hyps: dict[str, str], opts: NormalizeOptions
) -> tuple[ErrorCounts, dict[str, ErrorCounts], list[str]]:
    """Score every reference utterance.

    Returns (total, per-key counts, keys of `refs` missing from `hyps`). A missing hypothesis counts as all
    deletions. Hypotheses without a reference are ignored (logged).
    """
    per_key: dict[str, ErrorCounts] = {}
    missing: list[str] = []
    total = ErrorCounts()
    for key, ref_text in refs.items():
        ref_norm = normalize_text(ref_text, opts)
        if key in hyps:
            counts = align(ref_norm, normalize_text(hyps[key], opts))
        else:
            missing.append(key)
            counts = ErrorCounts(deletions=len(ref_norm), reference_length=len(ref_norm))
        per_key[key] = counts
        total = total + counts
    extra = len(set(hyps) - set(refs))
    if extra:
        logger.warning("%d hypothesis keys have no reference and were ignored", extra)
    return total, per_key, missing


def read_text_file(path: str | Path) -> dict[str, str]:
    """Read a Kaldi-style text file: one ``key transcript`` per line (the transcript may contain spaces
    or be empty). Blank lines are skipped. Raises ValueError naming ``file:line`` on a line without a key,
    a duplicate key or bytes that are not UTF-8.
    """
    path = Path(path)
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{line_no}: not valid UTF-8 ({e})") from None
            if line.startswith("\ufeff") and line_no == 1:
                line = line[1:]
            if not line.strip():
                continue
            if line[0].isspace():
                raise ValueError(
                    f"{path}:{line_no}: line starts with whitespace, expected 'key transcript': {line[:60]!r}"
                )
            parts = line.split(maxsplit=1)
            key = parts[0]
            text = parts[1].strip() if len(parts) > 1 else ""
            if key in out:
                raise ValueError(
                    f"{path}:{line_no}: duplicate key {key!r} (first seen on line {first_line[key]})"
                )
            out[key] = text
            first_line[key] = line_no
    return out


def main_eval_texts(
    ref_path: str | Path, hyp_path: str | Path, opts: NormalizeOptions, num_worst: int = 10
) -> str:
    """Score two Kaldi text files and return a human-readable report (CER %, S/D/I, N, worst utterances)."""
    refs = read_text_file(ref_path)
    hyps = read_text_file(hyp_path)
    total, per_key, missing = score_texts(refs, hyps, opts)
    extra = sorted(set(hyps) - set(refs))
    lines = [
        f"CER {100.0 * total.cer:.2f}%  [errors {total.errors} / N {total.reference_length}: "
        f"S={total.substitutions} D={total.deletions} I={total.insertions}]",
        f"utterances: {len(refs)} references, {len(hyps)} hypotheses, {len(missing)} missing, "
        f"{len(extra)} without reference",
        f"normalisation: {opts}",
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        lines.append(f"missing hypotheses (counted as deletions): {shown}")
    worst = sorted(per_key.items(), key=lambda kv: (-kv[1].errors, -kv[1].cer, kv[0]))
    worst = [(k, c) for k, c in worst if c.errors > 0][:num_worst]
    if worst:
        lines.append(f"worst {len(worst)} utterances (errors, CER, S/D/I):")
        for key, c in worst:
            hyp_text = normalize_text(hyps[key], opts) if key in hyps else "<missing>"
            lines.append(
                f"  {key}  {c.errors} err  {100.0 * c.cer:.1f}%  "
                f"S={c.substitutions} D={c.deletions} I={c.insertions}"
            )
            lines.append(f"    REF: {normalize_text(refs[key], opts)}")
            lines.append(f"    HYP: {hyp_text}")
    return "\n".join(lines)


def _cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m uniasr.cer", description="Character error rate of two text files"
    )
    parser.add_argument("ref", help="reference Kaldi text file (key transcript)")
    parser.add_argument("hyp", help="hypothesis Kaldi text file (key transcript)")
    parser.add_argument("--keep-punctuation", action="store_true", help="score punctuation too")
    parser.add_argument("--keep-spaces", action="store_true", help="score spaces too")
    parser.add_argument("--no-nfkc", action="store_true", help="skip Unicode NFKC normalisation")
    parser.add_argument("--kana", action="store_true", help="compare katakana readings (needs pyopenjtalk)")
    parser.add_argument("--worst", type=int, default=10, help="how many worst utterances to list")
    args = parser.parse_args(argv)
    opts = NormalizeOptions(
        nfkc=not args.no_nfkc,
        strip_punctuation=not args.keep_punctuation,
        strip_spaces=not args.keep_spaces,
        kana=args.kana,
    )
    print(main_eval_texts(args.ref, args.hyp, opts, num_worst=args.worst))


if __name__ == "__main__":
    _cli()
