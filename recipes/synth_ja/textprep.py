"""Sentence text for the synthetic corpus: read the copied sources, clean them, deduplicate, split.

Only `recipes/synth_ja/text/` is read. Cleaning, in order (see README.md for the reasons):

1. source parsing: ITA lines are ``ID:text,reading`` (the plain transcripts; their ruby twins are unused);
2. ruby: bracketed readings (``｜漢字《かんじ》``, ``漢字《かんじ》``, ``漢字(かんじ)``) are dropped
   everywhere; in ``yumie-text-1.txt`` readings kept inline without brackets (``花婿はなむこ``) are found
   with the Open JTalk reading (see `find_inline_ruby`) plus a short hand-checked table;
3. broken lines: yumie lines cut mid-sentence are truncated after their last complete sentence (dropped if
   none); a trailing ``、`` is removed from every source;
4. normalisation: NFKC for widths (full-width Latin/digits -> ASCII, half-width kana -> full-width) while
   keeping Japanese punctuation full-width (！？（）…), spaces removed, ゝゞヽヾ expanded, Arabic numbers
   written as kanji numerals (the model writes kanji numerals; ITN turns them into digits);
5. filters: lines with Latin letters or no Japanese, shorter than `min_chars` or longer than `max_chars`
   (counted without punctuation) are dropped; duplicates (compared without punctuation) are dropped.

The split is a hash of the punctuation-free sentence, so it does not depend on file order and a sentence
can never be in two splits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TEXT_DIR = Path(__file__).resolve().parent / "text"
SPLITS = ("train", "dev", "test")

ReadingFn = Callable[[str], str]
"""text -> katakana pronunciation (e.g. ``pyopenjtalk.g2p(text, kana=True)``)."""

# (source name, file under TEXT_DIR, parser kind), read in this order (first occurrence wins on duplicates)
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("ita_emotion", "ita_corpus/emotion_transcript_utf8.txt", "ita"),
    ("ita_recitation", "ita_corpus/recitation_transcript_utf8.txt", "ita"),
    ("cv_sentence_collector", "common_voice_ja/sentence-collector.txt", "plain"),
    ("cv_sentence_collector_034081a", "common_voice_ja/sentence-collector_034081a_chars0-16000.txt", "plain"),
    ("cv_yumie", "common_voice_ja/yumie-text-1.txt", "yumie"),
)

# Inline readings in yumie-text-1.txt that the automatic rule misses or deliberately skips (readings of one or
# two kana are too ambiguous to remove automatically: 人ひとり, 歌うたび are normal text). Found by reading
# the Dazai and Ranpo parts of the file, where the readings occur.
YUMIE_MANUAL_RUBY: tuple[tuple[str, str], ...] = (
    ("首肯うなずき", "首肯き"),
    ("討うたなければ", "討たなければ"),
    ("茎くきが", "茎が"),
    ("請こいにおうじて", "請いにおうじて"),
    ("計はかったり", "計ったり"),
)
MIN_AUTO_RUBY_KANA = 3

_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヶ"
_HIRAGANA = "\u3041-\u3096ー"
_INLINE_RUBY_RE = re.compile(f"([{_KANJI}]+)([{_HIRAGANA}]+)")
_BRACKET_RUBY_RE = re.compile(
    f"[｜|]([^《｜|]+)《[^》]*》|([{_KANJI}]+)《[^》]*》|([{_KANJI}])[（(][{_HIRAGANA}\u30a1-\u30fa]+[）)]"
)
_SENTENCE_END_RE = re.compile(r"[。！？!?][」』）)]*")
_LINE_END_CHARS = "。！？!?」』）)"
_LATIN_RE = re.compile(r"[A-Za-z]")
_JAPANESE_RE = re.compile(f"[{_KANJI}\u3041-\u3096\u30a1-\u30fa]")
_NUMBER_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d,])|\d+(?:\.\d+)?")
_PROTECTED = {"…": "\ue000", "‥": "\ue001"}
_TO_FULLWIDTH = str.maketrans({"!": "！", "?": "？", "(": "（", ")": "）", ":": "：", ";": "；", "~": "～"})
_DIGITS = "〇一二三四五六七八九"


@dataclass(frozen=True)
class TextOptions:
    """Filters and split sizes. Lengths count characters without punctuation."""

    min_chars: int = 4
    max_chars: int = 100
    dev_permille: int = 30
    test_permille: int = 30
    numerals_to_kanji: bool = True


@dataclass(frozen=True)
class Sentence:
    text: str
    source: str
    line_no: int


# ----------------------------------------------------------------------------------------- normalisation


def int_to_kanji(n: int) -> str:
    """Kanji numeral of a non-negative integer: 1877 -> 千八百七十七, 20000 -> 二万, 0 -> 〇."""
    if n < 0:
        raise ValueError(f"int_to_kanji needs n >= 0, got {n}")
    if n == 0:
        return "〇"
    parts = []
    for unit in ("", "万", "億", "兆", "京"):
        n, rest = divmod(n, 10000)
        if rest:
            text = ""
            for value, name in ((1000, "千"), (100, "百"), (10, "十")):
                q, rest = divmod(rest, value)
                if q:
                    text += ("" if q == 1 else _DIGITS[q]) + name
            parts.append(text + (_DIGITS[rest] if rest else "") + unit)
        if n == 0:
            break
    if n:
        raise ValueError("int_to_kanji supports numbers below 10**20")
    return "".join(reversed(parts))


def numbers_to_kanji(text: str) -> str:
    """Write ASCII numbers as kanji numerals: 23区 -> 二十三区, 3.5 -> 三点五, 007 -> 〇〇七, 1,000 -> 千."""

    def repl(m: re.Match[str]) -> str:
        token = m.group(0).replace(",", "")
        whole, _, frac = token.partition(".")
        if len(whole) > 1 and whole.startswith("0"):
            head = "".join(_DIGITS[int(d)] for d in whole)
        else:
            head = int_to_kanji(int(whole))
        return head + ("点" + "".join(_DIGITS[int(d)] for d in frac) if frac else "")

    return _NUMBER_RE.sub(repl, text)


def expand_iteration_marks(text: str) -> str:
    """いゝ -> いい, かゞ -> かが (ゝゞヽヾ after a kana); other uses are left alone."""
    out: list[str] = []
    for ch in text:
        prev = out[-1] if out else ""
        if ch in "ゝヽ" and prev and _is_kana(prev):
            out.append(unicodedata.normalize("NFC", unicodedata.normalize("NFD", prev)[0]))
        elif ch in "ゞヾ" and prev and _is_kana(prev):
            base = unicodedata.normalize("NFD", prev)[0]
            out.append(unicodedata.normalize("NFC", base + "\u3099"))
        else:
            out.append(ch)
    return "".join(out)


def _is_kana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u3096" or "\u30a1" <= ch <= "\u30fa"


def normalize_sentence(text: str, opts: TextOptions) -> str:
    """Width normalisation (NFKC, Japanese punctuation kept full-width), no spaces, marks and numbers."""
    for ch, placeholder in _PROTECTED.items():
        text = text.replace(ch, placeholder)
    text = unicodedata.normalize("NFKC", text).translate(_TO_FULLWIDTH)
    for ch, placeholder in _PROTECTED.items():
        text = text.replace(placeholder, ch)
    text = "".join(ch for ch in text if not ch.isspace())
    text = expand_iteration_marks(text)
    if opts.numerals_to_kanji:
        text = numbers_to_kanji(text)
    return text


def content_chars(text: str) -> str:
    """The text without punctuation (Unicode P*) and spaces: used for lengths, duplicates and the split."""
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P") and not ch.isspace())


def reject_reason(text: str, opts: TextOptions) -> str | None:
    """Why a normalised sentence is not used (None = keep)."""
    if _LATIN_RE.search(text):
        return "latin"
    if not _JAPANESE_RE.search(text):
        return "no_japanese"
    n = len(content_chars(text))
    if n < opts.min_chars:
        return "too_short"
    if n > opts.max_chars:
        return "too_long"
    return None


# ----------------------------------------------------------------------------------------- ruby and lines


def strip_bracket_ruby(text: str) -> str:
    """Drop bracketed readings: ｜漢字《かんじ》 / 漢字《かんじ》 -> 漢字, 嘘(うそ) / 嘘（うそ） -> 嘘.

    A parenthesis is only treated as a reading when it directly follows a kanji and holds only kana, so
    ``有機的（生命的）`` or ``「機関」（オルガノン）`` stay.
    """
    return _BRACKET_RUBY_RE.sub(lambda m: next(g for g in m.groups() if g), text)


def find_inline_ruby(text: str, pron: ReadingFn, min_kana: int = MIN_AUTO_RUBY_KANA) -> list[tuple[int, int]]:
    """Spans of readings written inline right after their kanji without brackets (花婿はなむこ).

    For a kanji run K (or a suffix of it) followed by hiragana H, the reading of K + H must be X + reading(H)
    where X is the reading of some prefix P of H with at least `min_kana` kana: then P repeats the reading
    of K and is returned as a span to delete.
    """
    spans: list[tuple[int, int]] = []
    for m in _INLINE_RUBY_RE.finditer(text):
        run, hira = m.group(1), m.group(2)
        if len(hira) <= min_kana:  # P has >= min_kana kana (a reading is never longer) and is shorter than H
            continue
        hira_start = m.start(2)
        hira_pron = pron(hira)
        for k in range(len(run)):
            full = pron(run[k:] + hira)
            if not full.endswith(hira_pron):
                continue
            x = full[: len(full) - len(hira_pron)]
            if len(x) < min_kana:
                continue
            match = next((n for n in range(1, len(hira)) if pron(hira[:n]) == x), None)
            if match is not None:
                spans.append((hira_start, hira_start + match))
                break
    return spans


def strip_inline_ruby(text: str, pron: ReadingFn) -> str:
    for start, end in reversed(find_inline_ruby(text, pron)):
        text = text[:start] + text[end:]
    return text


def truncate_to_sentence_end(text: str) -> str | None:
    """Cut a line that stops mid-sentence after its last complete sentence; None if it has none.

    A line ending in 。！？ or a closing bracket is complete and kept whole.
    """
    text = text.rstrip()
    if text.endswith(tuple(_LINE_END_CHARS)):
        return text
    ends = list(_SENTENCE_END_RE.finditer(text))
    if not ends:
        return None
    return text[: ends[-1].end()]


def balance_quotes(text: str) -> str:
    """Remove 「」/『』 when a line has an unmatched one (lines cut out of a longer quotation)."""
    for open_q, close_q in (("「", "」"), ("『", "』")):
        if text.count(open_q) != text.count(close_q):
            text = text.replace(open_q, "").replace(close_q, "")
    return text


def clean_line(raw: str, kind: str, pron: ReadingFn | None, opts: TextOptions) -> tuple[str | None, str]:
    """Clean one source line. Returns (sentence or None, reason): reason is 'ok' or why it was dropped."""
    text = raw.strip()
    if kind == "ita":
        _, sep, rest = text.partition(":")
        text = rest.rsplit(",", 1)[0] if sep and "," in rest else ""
        if not text:
            return None, "malformed"
    text = strip_bracket_ruby(text)
    if kind == "yumie":
        for before, after in YUMIE_MANUAL_RUBY:
            text = text.replace(before, after)
        if pron is not None:
            text = strip_inline_ruby(text, pron)
        truncated = truncate_to_sentence_end(text)
        if truncated is None:
            return None, "fragment"
        text = balance_quotes(truncated)
    text = normalize_sentence(text, opts).rstrip("、，,")
    reason = reject_reason(text, opts)
    return (None, reason) if reason else (text, "ok")


# ----------------------------------------------------------------------------------------- corpus


def read_sentences(
    text_dir: Path = TEXT_DIR, opts: TextOptions = TextOptions(), pron: ReadingFn | None = None
) -> tuple[list[Sentence], Counter[str]]:
    """All cleaned, deduplicated sentences in source order, and counts of what happened to each line.

    `pron` is needed to remove yumie's inline readings; without it they stay (a warning is logged).
    """
    if pron is None:
        logger.warning("no reading function given: inline ruby in yumie-text-1.txt will not be removed")
    else:
        pron = _cached(pron)
    sentences: list[Sentence] = []
    seen: set[str] = set()
    stats: Counter[str] = Counter()
    for source, rel_path, kind in SOURCES:
        path = text_dir / rel_path
        if not path.is_file():
            raise FileNotFoundError(f"text source {path} is missing; expected the files listed in SOURCES")
        for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            text, reason = clean_line(raw, kind, pron, opts)
            if text is not None:
                key = content_chars(text)
                if key in seen:
                    text, reason = None, "duplicate"
                else:
                    seen.add(key)
                    sentences.append(Sentence(text, source, line_no))
            stats[reason] += 1
    return sentences, stats


def _cached(fn: ReadingFn) -> ReadingFn:
    cache: dict[str, str] = {}

    def wrapper(text: str) -> str:
        if text not in cache:
            cache[text] = fn(text)
        return cache[text]

    return wrapper


def split_of(text: str, opts: TextOptions = TextOptions()) -> str:
    """'train', 'dev' or 'test' from a hash of the punctuation-free sentence (stable across runs/machines)."""
    bucket = int.from_bytes(hashlib.sha256(content_chars(text).encode("utf-8")).digest()[:8], "big") % 1000
    if bucket < opts.test_permille:
        return "test"
    if bucket < opts.test_permille + opts.dev_permille:
        return "dev"
    return "train"


def split_sentences(
    sentences: list[Sentence], opts: TextOptions = TextOptions()
) -> dict[str, list[Sentence]]:
    """Group sentences by `split_of`, keeping source order inside each split."""
    out: dict[str, list[Sentence]] = {name: [] for name in SPLITS}
    for s in sentences:
        out[split_of(s.text, opts)].append(s)
    return out


def text_stats(sentences: list[Sentence]) -> dict[str, int]:
    chars = Counter(ch for s in sentences for ch in content_chars(s.text))
    return {
        "sentences": len(sentences),
        "characters": sum(chars.values()),
        "unique_characters": len(chars),
    }
