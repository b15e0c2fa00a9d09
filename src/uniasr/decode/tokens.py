"""The token table (ids <-> token strings, transcript -> ids), detokenisation, and token timestamps from
CIF fire positions.

Conventions (spec §2): id 0 ``<blank>``, 1 ``<s>`` (sos), 2 ``</s>`` (eos), the tokens, ``<unk>`` last.

>>> tokens = build_token_list(["アイ ウ", "イ"])
>>> tokens
['<blank>', '<s>', '</s>', 'ア', 'イ', 'ウ', '<unk>']
>>> TokenTable(tokens).encode("イエ")
[4, 6]
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

BLANK, SOS, EOS = 0, 1, 2
RESERVED_TOKENS = ("<blank>", "<s>", "</s>")  # ids 0, 1, 2
UNK = "<unk>"
SPECIAL_TOKENS = frozenset({*RESERVED_TOKENS, UNK, "<OOV>"})  # dropped from text


class TokenTable:
    """id <-> token string with the UniASR conventions, and transcript -> ids (unknown units -> ``<unk>``)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tuple(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unk = self.index.get(UNK, len(self.tokens) - 1)
        self.multi = frozenset(t for t in self.tokens if len(t) > 1)
        plain = [t for t in self.tokens if t not in SPECIAL_TOKENS]
        self.char_level = sum(len(t) == 1 for t in plain) >= 0.9 * max(len(plain), 1)

    def __len__(self) -> int:
        return len(self.tokens)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, char_level=self.char_level)

    def to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, self.unk) for t in tokens]

    def encode(self, text: str) -> list[int]:
        """A transcript -> token ids (the training targets), see `text_units`."""
        return self.to_ids(text_units(text, self.multi))

    def unknown(self, text: str) -> list[str]:
        """The units of `text` that map to ``<unk>``."""
        return [u for u in text_units(text, self.multi) if u not in self.index]


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
    chars = sorted(c for c, n in counts.items() if n >= min_count and c not in RESERVED_TOKENS and c != UNK)
    if not chars:
        raise ValueError("the training transcripts hold no characters: cannot build a token list")
    return [*RESERVED_TOKENS, *chars, UNK]


def check_token_list(tokens: Sequence[str], where: str = "token list", unique: bool = True) -> None:
    """Raise ValueError unless `tokens` follows the UniASR conventions (and, with `unique`, has no token
    twice: training needs one id per token; a model dir's list is read as it is)."""
    if len(tokens) < 4 or list(tokens[:3]) != list(RESERVED_TOKENS):
        raise ValueError(
            f"{where}: need at least 4 tokens, 0..2 being {list(RESERVED_TOKENS)}; got {list(tokens[:3])} "
            f"({len(tokens)} tokens)"
        )
    if unique and len(set(tokens)) != len(tokens):
        dup = sorted({t for t in tokens if list(tokens).count(t) > 1})[:5]
        raise ValueError(f"{where}: duplicate tokens {dup}")


def _is_wordlike(token: str) -> bool:
    """Latin-script (or digit-only latin) tokens are separated by spaces; CJK and kana are not."""
    ch = token[0]
    if ch.isascii():
        return ch.isalnum() or ch == "'"
    return unicodedata.category(ch).startswith("L") and "LATIN" in unicodedata.name(ch, "")


def detokenize(tokens: Sequence[str], char_level: bool = True) -> str:
    """Join output tokens into text.

    A character vocabulary (the Japanese models) is joined without spaces. In a word-piece vocabulary
    `@@` marks a piece that continues into the next token and Latin-script words are separated by single
    spaces, while CJK and kana are still joined. Special tokens (<s>, </s>, <unk>, <blank>, <OOV>) drop.
    """
    out: list[str] = []
    glue = True  # no space before the next token
    for tok in tokens:
        if tok in SPECIAL_TOKENS or not tok:
            continue
        piece, cont = (tok[:-2], True) if tok.endswith("@@") and len(tok) > 2 else (tok, False)
        if out and not glue and not char_level and _is_wordlike(piece) and _is_wordlike(out[-1][-1]):
            out.append(" ")
        out.append(piece)
        glue = cont
    return "".join(out)


def token_times(
    positions: Sequence[int],
    fire_frames: Any,
    alphas: Any,
    frame_ms: float,
    min_alpha: float = 0.1,
) -> list[tuple[int, int]]:
    """[start_ms, end_ms] per output token.

    `positions` are the decoding steps of the output tokens; step i is the i-th CIF token, which fires at
    frame `fire_frames[i]` (encoder frames of `frame_ms`); `fire_frames` [n] and `alphas` [T] are numpy
    arrays or torch tensors. A token ends after its fire frame and starts at the first frame after the
    previous fire whose alpha reaches `min_alpha` (so silences are skipped).
    Steps past the last fired token (the beam may run a few steps longer) share the last frame.
    """
    num_frames = int(alphas.shape[0])
    fires = fire_frames.tolist()
    heavy = (alphas >= min_alpha).tolist()
    times = []
    for i in positions:
        if not fires:
            end = num_frames - 1
            prev = -1
        else:
            end = fires[min(i, len(fires) - 1)]
            prev = fires[i - 1] if 0 < i <= len(fires) else (-1 if i == 0 else end - 1)
        start = prev + 1
        while start < end and not heavy[start]:
            start += 1
        start = min(start, end)
        times.append((int(round(start * frame_ms)), int(round((end + 1) * frame_ms))))
    return times
