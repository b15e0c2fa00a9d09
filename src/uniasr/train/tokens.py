"""Character token lists with the UniASR conventions, and transcript -> token ids.

Conventions (spec §2): id 0 ``<blank>``, 1 ``<s>`` (sos), 2 ``</s>`` (eos), the characters, ``<unk>`` last.

>>> tokens = build_token_list(["アイ ウ", "イ"])
>>> tokens
['<blank>', '<s>', '</s>', 'ア', 'イ', 'ウ', '<unk>']
>>> Tokenizer(tokens).encode("イエ")
[4, 6]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

BLANK, SOS, EOS = 0, 1, 2
SPECIALS = ("<blank>", "<s>", "</s>")
UNK = "<unk>"


def text_units(text: str, vocab: frozenset[str] = frozenset()) -> list[str]:
    """Token strings of a transcript: its characters without whitespace.

    With a vocabulary that holds multi-character tokens (FunASR `split_with_space`), a space-separated
    word found in `vocab` stays one token; every other word is split into characters.
    """
    units: list[str] = []
    for word in text.split():
        if len(word) > 1 and word in vocab:
            units.append(word)
        else:
            units.extend(word)
    return units


def build_token_list(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Character token list from training transcripts (characters in code-point order).

    Characters seen fewer than `min_count` times are left to ``<unk>``.
    """
    if min_count < 1:
        raise ValueError(f"min_count={min_count} must be >= 1")
    counts = Counter(ch for text in texts for ch in text_units(text))
    chars = sorted(c for c, n in counts.items() if n >= min_count and c not in SPECIALS and c != UNK)
    if not chars:
        raise ValueError("the training transcripts hold no characters: cannot build a token list")
    return [*SPECIALS, *chars, UNK]


def check_token_list(tokens: Sequence[str], where: str = "token list") -> None:
    """Raise ValueError unless `tokens` follows the UniASR conventions."""
    if len(tokens) < 4 or list(tokens[:3]) != list(SPECIALS):
        raise ValueError(f"{where}: tokens 0..2 must be {list(SPECIALS)}, got {list(tokens[:3])}")
    if len(set(tokens)) != len(tokens):
        dup = sorted({t for t in tokens if list(tokens).count(t) > 1})[:5]
        raise ValueError(f"{where}: duplicate tokens {dup}")


def read_token_list(path: str | Path) -> list[str]:
    """A tokens.json (JSON list) or a text file with one token per line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read token list {path}: {e}") from e
    if path.suffix == ".json":
        try:
            tokens = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{path}: expected a JSON list of strings")
    else:
        tokens = [line.split()[0] for line in text.splitlines() if line.strip()]
    check_token_list(tokens, str(path))
    return tokens


def write_token_list(tokens: Sequence[str], path: str | Path) -> None:
    Path(path).write_text(json.dumps(list(tokens), ensure_ascii=False, indent=0), encoding="utf-8")


class Tokenizer:
    """Transcript -> token ids with a fixed token list (unknown characters -> ``<unk>``)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        check_token_list(tokens)
        self.tokens = tuple(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk = self.index.get(UNK, len(self.tokens) - 1)
        self.multi = frozenset(t for t in self.tokens if len(t) > 1)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(u, self.unk) for u in text_units(text, self.multi)]

    def unknown(self, text: str) -> list[str]:
        """The units of `text` that map to ``<unk>``."""
        return [u for u in text_units(text, self.multi) if u not in self.index]
