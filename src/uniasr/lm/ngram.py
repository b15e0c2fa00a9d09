"""Back-off n-gram language models: ARPA files (the format KenLM and SRILM write), and a small trainer.

`NgramLM` holds log10 probabilities and back-off weights as in an ARPA file and scores sequences of
symbols (characters or tokens) with the usual back-off rule

    p(w | h) = P(h w)                    if the n-gram h w is listed
             = bow(h) * p(w | h[1:])     otherwise (bow = 1 for an unlisted h)

`train_kneser_ney` estimates an interpolated Kneser-Ney model (one absolute discount per order,
D = n1 / (n1 + 2 n2); lower orders from continuation counts) and stores it in that back-off form, so
`NgramLM.logprob` computes exactly the interpolated probability for every listed n-gram and the
back-off chain for the rest. Sentence boundaries are `<s>` and `</s>`; symbols never seen map to `<unk>`,
which gets the unigram mass a discount leaves over.

>>> lm = train_kneser_ney([list("abc"), list("abd")], order=3)
>>> lm.sentence_logprob(list("abc")) > lm.sentence_logprob(list("acb"))
True
"""

from __future__ import annotations

import gzip
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
Gram = tuple[str, ...]


class ArpaError(ValueError):
    """An ARPA file that cannot be read; the message names the file and line."""


@dataclass
class NgramLM:
    """order: the highest n; probs[n][gram] = log10 P; bows[n][context] = log10 back-off weight."""

    order: int
    probs: list[dict[Gram, float]] = field(default_factory=list)
    bows: list[dict[Gram, float]] = field(default_factory=list)

    def logprob(self, history: Sequence[str], word: str) -> float:
        """log10 p(word | the last order-1 symbols of history)."""
        if (word,) not in self.probs[1]:
            word = UNK
        hist = tuple(history[len(history) - self.order + 1 :]) if self.order > 1 else ()
        backoff = 0.0
        while True:
            p = self.probs[len(hist) + 1].get((*hist, word))
            if p is not None:
                return backoff + p
            if not hist:
                return backoff + self.probs[1].get((UNK,), -99.0)
            backoff += self.bows[len(hist)].get(hist, 0.0)
            hist = hist[1:]

    def sentence_logprob(self, symbols: Sequence[str], eos: bool = True) -> float:
        """log10 probability of `symbols` after <s> (and of </s> after them when `eos`)."""
        history: list[str] = [BOS]
        total = 0.0
        for s in (*symbols, EOS) if eos else symbols:
            total += self.logprob(history, s)
            history.append(s)
        return total

    # --- ARPA ---------------------------------------------------------------------------------------------
    def write_arpa(self, path: str | Path) -> Path:
        """Write the model as ARPA text (gzip-compressed when the name ends in .gz)."""
        path = Path(path)
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={len(self.probs[n])}" for n in range(1, self.order + 1)]
        for n in range(1, self.order + 1):
            lines += ["", f"\\{n}-grams:"]
            for gram in sorted(self.probs[n]):
                bow = self.bows[n].get(gram) if n < self.order else None
                tail = f"\t{bow:.6f}" if bow is not None else ""
                lines.append(f"{self.probs[n][gram]:.6f}\t{' '.join(gram)}{tail}")
        lines += ["", "\\end\\", ""]
        text = "\n".join(lines)
        if path.suffix == ".gz":
            with gzip.open(path, "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def read_arpa(cls, path: str | Path) -> NgramLM:
        """Read an ARPA file (plain or .gz)."""
        path = Path(path)
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as f:
                return cls._parse(f, path)
        except (OSError, UnicodeDecodeError, EOFError) as e:
            raise ArpaError(f"cannot read ARPA file {path}: {e}") from e

    @classmethod
    def _parse(cls, lines: Iterable[str], path: Path) -> NgramLM:
        counts: dict[int, int] = {}
        probs: list[dict[Gram, float]] = [{}]
        bows: list[dict[Gram, float]] = [{}]
        section: str | int | None = None  # "data" or n
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = "data"
            elif line == "\\end\\":
                break
            elif line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1 : line.index("-")])
                if section != len(probs):
                    raise ArpaError(f"{path}:{lineno}: \\{section}-grams: out of order")
                probs.append({})
                bows.append({})
            elif section == "data" and line.startswith("ngram "):
                n_text, _, count_text = line[6:].partition("=")
                counts[int(n_text)] = int(count_text)
            elif isinstance(section, int):
                parts = line.split()
                try:
                    prob = float(parts[0])
                    gram = tuple(parts[1 : 1 + section])
                    if len(gram) != section:
                        raise ValueError("too few symbols")
                    probs[section][gram] = prob
                    if len(parts) > 1 + section:
                        bows[section][gram] = float(parts[1 + section])
                except (ValueError, IndexError) as e:
                    raise ArpaError(f"{path}:{lineno}: bad {section}-gram line {line!r}: {e}") from e
            else:
                raise ArpaError(f"{path}:{lineno}: unexpected line {line!r}")
        order = len(probs) - 1
        if order < 1 or not counts:
            raise ArpaError(f"{path}: no \\data\\ section or n-grams")
        for n, count in counts.items():
            if n > order or len(probs[n]) != count:
                found = len(probs[n]) if n <= order else 0
                raise ArpaError(f"{path}: \\data\\ says ngram {n}={count}, found {found}")
        return cls(order, probs, bows)


def train_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 4) -> NgramLM:
    """Interpolated Kneser-Ney over symbol sequences (e.g. `list(sentence)` for characters)."""
    if order < 1:
        raise ValueError(f"order={order}: must be at least 1")
    highest: Counter[Gram] = Counter()
    for sent in sentences:
        seq = (BOS, *sent, EOS)
        for i in range(1, len(seq)):
            highest[tuple(seq[max(0, i - order + 1) : i + 1])] += 1
    # the highest order and grams that start at <s> (nothing can precede them) keep raw counts; every other
    # lower-order gram counts the distinct symbols seen before it (continuation counts)
    counts: list[Counter[Gram]] = [Counter() for _ in range(order + 1)]
    for gram, c in highest.items():
        counts[len(gram)][gram] += c
    for n in range(order, 1, -1):
        for gram in counts[n]:
            counts[n - 1][gram[1:]] += 1
    probs: list[dict[Gram, float]] = [{} for _ in range(order + 1)]
    bows: list[dict[Gram, float]] = [{} for _ in range(order + 1)]
    lower: dict[Gram, float] = {}
    for n in range(1, order + 1):
        d = _discount(counts[n])
        totals: dict[Gram, int] = defaultdict(int)
        types: dict[Gram, int] = defaultdict(int)
        for gram, c in counts[n].items():
            totals[gram[:-1]] += c
            types[gram[:-1]] += 1
        current: dict[Gram, float] = {}
        if n == 1:
            vocab = [g for g in counts[1] if g != (BOS,)]
            total = totals[()]
            left = d * types[()] / total
            uniform = 1.0 / (len(vocab) + 1)  # + <unk>
            for gram in vocab:
                current[gram] = (max(counts[1][gram] - d, 0.0)) / total + left * uniform
            current[(UNK,)] = left * uniform
            current[(BOS,)] = 0.0  # never predicted; ARPA convention -99
        else:
            for gram, c in counts[n].items():
                ctx = gram[:-1]
                gamma = d * types[ctx] / totals[ctx]
                back = _lower_prob(lower, probs, bows, gram[1:])
                current[gram] = max(c - d, 0.0) / totals[ctx] + gamma * back
            for ctx in totals:
                bows[n - 1][ctx] = math.log10(d * types[ctx] / totals[ctx]) if d > 0 else -99.0
        probs[n] = {g: (math.log10(p) if p > 0 else -99.0) for g, p in current.items()}
        lower = current
    for n in range(1, order):  # a context never followed by anything has no back-off weight
        bows[n] = {g: w for g, w in bows[n].items() if g in probs[n]}
    return NgramLM(order, probs, bows)


def _lower_prob(lower: dict[Gram, float], probs, bows, gram: Gram) -> float:
    """p(gram[-1] | gram[:-1]) in the model of order len(gram) (back-off form for unlisted grams)."""
    if gram in lower:
        return lower[gram]
    lm = NgramLM(len(gram), probs[: len(gram) + 1], bows[: len(gram) + 1])
    return 10.0 ** lm.logprob(gram[:-1], gram[-1])


def _discount(counts: Counter[Gram]) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
