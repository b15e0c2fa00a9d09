"""Hotword lists: phrases as users write them -> the model's token space -> a `ContextGraph` for the search.

Accepted forms (`parse_hotwords`): a file or text with one phrase a line, optionally followed by its weight
(FunASR's hotword files: `阿里巴巴 20`) and then by explicit readings (`御手洗 2.0 ミタライ オテアライ`); a
dict `{phrase: weight}` (FunASR's websocket `hotwords` JSON); a list of phrases. Lines starting with `#`
and blank lines are skipped.

Rules (documented, never a crash):
- weight: the bonus per token in nats (the search adds it to the decoder's log-probability for each token
  that extends a match and takes it back when the match fails); missing: the default weight. It must be a
  finite number in (0, MAX_WEIGHT]; FunASR's larger weights (20) are clipped to MAX_WEIGHT.
- a phrase is mapped to token sequences: as written when every character is one of the model's tokens
  (a kanji model, a katakana phrase), else to its readings (hiragana -> katakana; kanji, Latin: the
  readings Open JTalk gives when pyopenjtalk is installed, the orthographic and the spoken one, or those
  given on its line). A phrase none of whose forms the model can write is an error naming it and the
  character.
- a phrase of a single token is refused (it would bias that token everywhere); an empty list is no biasing;
  more than `limits.max_phrases` phrases or a phrase longer than `limits.max_chars` is an error.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uniasr.decode.context import ContextGraph, ContextPhrase

DEFAULT_WEIGHT = 2.0  # nats per token (the rare-term set's tuning half, beam 10: bench/RESULTS.md)
DEFAULT_AC_THRESHOLD = 0.1  # a phrase counts when its tokens' decoder probabilities average this much
MAX_WEIGHT = 10.0


class HotwordError(ValueError):
    """A hotword list that cannot be used; the message names the phrase or line."""


@dataclass(frozen=True)
class HotwordLimits:
    max_phrases: int = 100_000
    max_chars: int = 64


@dataclass(frozen=True)
class Hotword:
    """One phrase as given, its weight (None: the default) and its explicit readings (may be empty)."""

    text: str
    weight: float | None = None
    readings: tuple[str, ...] = ()


def _weight(value: Any, where: str) -> float:
    try:
        w = float(value)
    except (TypeError, ValueError) as e:
        raise HotwordError(f"{where}: weight {value!r} is not a number") from e
    if not math.isfinite(w) or w <= 0:
        raise HotwordError(f"{where}: weight {value!r} must be a finite number > 0")
    return min(w, MAX_WEIGHT)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_lines(lines: Iterable[str], source: str = "hotwords") -> list[Hotword]:
    """`phrase [weight [reading ...]]` per line (see the module docstring)."""
    out = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        where = f"{source}:{lineno}"
        if len(parts) >= 2 and _is_number(parts[1]):
            out.append(Hotword(parts[0], _weight(parts[1], where), tuple(parts[2:])))
        elif len(parts) >= 2 and _is_number(parts[-1]):  # a phrase with spaces, then its weight
            out.append(Hotword(" ".join(parts[:-1]), _weight(parts[-1], where)))
        else:
            out.append(Hotword(line))
    return out


def parse_hotwords(value: Any) -> list[Hotword]:
    """A path, a text of lines, a {phrase: weight} mapping, or a list of phrases / Hotword -> Hotwords."""
    if value is None:
        return []
    if isinstance(value, Path):
        try:
            return parse_lines(value.read_text(encoding="utf-8").splitlines(), str(value))
        except (OSError, UnicodeDecodeError) as e:
            raise HotwordError(f"cannot read hotword file {value}: {e}") from e
    if isinstance(value, str):
        return parse_lines(value.splitlines())
    if isinstance(value, Mapping):
        out = []
        for phrase, w in value.items():
            if not isinstance(phrase, str):
                raise HotwordError(f"hotword {phrase!r} is not a string")
            out.append(Hotword(phrase.strip(), None if w is None else _weight(w, f"hotword {phrase!r}")))
        return out
    if isinstance(value, Iterable):
        out = []
        for item in value:
            if isinstance(item, Hotword):
                out.append(item)
            elif isinstance(item, str):
                out.extend(parse_lines([item]))
            else:
                raise HotwordError(f"hotword {item!r} is not a string")
        return out
    raise HotwordError(f"hotwords of type {type(value).__name__}: give a path, text, dict or list")


_HIRA_FIRST, _HIRA_LAST, _SHIFT = ord("ぁ"), ord("ゖ"), ord("ァ") - ord("ぁ")


def to_katakana(text: str) -> str:
    return "".join(chr(ord(c) + _SHIFT) if _HIRA_FIRST <= ord(c) <= _HIRA_LAST else c for c in text)


def _is_kana(text: str) -> bool:
    return all(unicodedata.name(c, "").startswith(("KATAKANA", "HIRAGANA")) or c == "ー" for c in text)


def open_jtalk_readings(text: str) -> list[str]:
    """The orthographic and the spoken katakana reading Open JTalk gives `text` (see uniasr.kana_reading)."""
    try:
        import pyopenjtalk
    except ImportError as e:
        raise HotwordError(
            f"hotword {text!r}: reading kanji or Latin phrases needs pyopenjtalk (pip install "
            f"pyopenjtalk-plus); or give the reading after the weight: `{text} {DEFAULT_WEIGHT} ヨミ`"
        ) from e
    from uniasr.kana_reading import word_reading

    nodes = pyopenjtalk.run_frontend(text)
    ortho = "".join(word_reading(n["string"], n["pos"], n["read"], n["pron"]) for n in nodes)
    spoken = "".join(n["pron"].replace("’", "") for n in nodes)
    return list(dict.fromkeys([ortho, spoken]))


Reader = Callable[[str], list[str]]


def token_forms(
    hw: Hotword, token_index: Mapping[str, int], reader: Reader = open_jtalk_readings
) -> list[str]:
    """The forms of a phrase the model can write (character strings, one token each character)."""
    text = unicodedata.normalize("NFKC", hw.text).replace(" ", "")
    if all(c in token_index for c in text):
        forms = [text]
    elif hw.readings:
        forms = [to_katakana(r) for r in hw.readings]
    elif _is_kana(text):
        forms = [to_katakana(text)]
    else:
        forms = reader(text)
    bad = [(f, c) for f in forms for c in f if c not in token_index]
    if bad:
        form, ch = bad[0]
        raise HotwordError(f"hotword {hw.text!r}: the model cannot write {ch!r} (of {form!r})")
    return forms


def build_graph(
    hotwords: Iterable[Hotword],
    token_index: Mapping[str, int],
    default_weight: float = DEFAULT_WEIGHT,
    limits: HotwordLimits = HotwordLimits(),
    reader: Reader = open_jtalk_readings,
    ac_threshold: float = DEFAULT_AC_THRESHOLD,
) -> ContextGraph | None:
    """Hotwords -> the search's ContextGraph (None for an empty list). `token_index`: token -> id;
    `ac_threshold`: see `ContextGraph`."""
    hotwords = list(hotwords)
    if not hotwords:
        return None
    if len(hotwords) > limits.max_phrases:
        raise HotwordError(f"{len(hotwords)} hotwords: at most {limits.max_phrases} are allowed")
    default_weight = _weight(default_weight, "default hotword weight")
    phrases = []
    for hw in hotwords:
        if not hw.text:
            raise HotwordError("an empty hotword")
        if len(hw.text) > limits.max_chars:
            raise HotwordError(f"hotword {hw.text[:20]!r}... has {len(hw.text)} characters: at most "
                               f"{limits.max_chars}")  # fmt: skip
        weight = default_weight if hw.weight is None else hw.weight
        for form in token_forms(hw, token_index, reader):
            if len(form) < 2:
                raise HotwordError(f"hotword {hw.text!r} is a single token ({form!r}): give at least two")
            phrases.append(ContextPhrase(tuple(token_index[c] for c in form), weight, hw.text))
    try:
        return ContextGraph(phrases, ac_threshold)
    except ValueError as e:  # the graph checks the threshold
        raise HotwordError(str(e)) from None


def written_forms(graph: ContextGraph | None, tokens: Any) -> tuple[tuple[str, str], ...]:
    """(reading as the model writes it, phrase as given) for the phrases that were mapped to a reading:
    what a kana model's converter should write for them (longest reading first)."""
    if graph is None:
        return ()
    pairs: dict[str, str] = {}
    for ph in graph.phrases:
        reading = "".join(tokens[i] for i in ph.token_ids)
        if ph.text and reading != ph.text:
            pairs.setdefault(reading, ph.text)
    return tuple(sorted(pairs.items(), key=lambda rw: -len(rw[0])))
