"""Token table, detokenisation and token timestamps from CIF fire positions."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

SPECIAL_TOKENS = frozenset({"<blank>", "<s>", "</s>", "<unk>", "<OOV>"})


class TokenTable:
    """id <-> token string, with the UniASR conventions (<blank>=0, <s>=1, </s>=2, <unk> last)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = tuple(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        plain = [t for t in self.tokens if t not in SPECIAL_TOKENS]
        self.char_level = sum(len(t) == 1 for t in plain) >= 0.9 * max(len(plain), 1)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, char_level=self.char_level)

    def __len__(self) -> int:
        return len(self.tokens)

    def to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_ids(self, tokens: Sequence[str]) -> list[int]:
        unk = self.index.get("<unk>", len(self.tokens) - 1)
        return [self.index.get(t, unk) for t in tokens]


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
