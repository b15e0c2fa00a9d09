"""The rare-term test set for hotwords: sentences naming people, places and terms that are not in the
training text, synthesised as the corpus is (recipes/synth_ja: its Open JTalk voice mix and augmentation).

    python -m recipes.hotwords.make_set --out data/hotwords_ja

Reads `sentences.tsv` (term TAB sentence) beside this file and writes <out>/{wav.scp,text,reading,terms,
utt2dur} and <out>/wav/<key>.wav: `text` the written sentence, `reading` its orthographic kana (what the
default model writes), `terms` the key and its term. Refuses a term found in the training text
(data/synth_ja/sentences/train.txt and the shared Japanese text sources). Deterministic for a --seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from recipes.synth_ja.reading import orthographic_kana
from recipes.synth_ja.synth import (
    DEFAULT_VOICES,
    AugmentOptions,
    Synthesizer,
    parse_voice_mix,
    resolve_voices,
    sample_params,
    write_wav,
)

HERE = Path(__file__).resolve().parent
TRAIN_TEXT = ("data/synth_ja/sentences/train.txt", "../shared/data/ja_text")


def read_sentences(path: Path = HERE / "sentences.tsv") -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            term, sentence = line.split("\t")
            if term not in sentence:
                raise ValueError(f"{path}: sentence {sentence!r} does not contain its term {term!r}")
            rows.append((term, sentence))
    return rows


def check_unseen(terms: set[str], sources: list[Path]) -> None:
    """Raise if any term occurs in the training text."""
    files = [f for s in sources for f in ([s] if s.is_file() else sorted(s.rglob("*.txt")))]
    if not files:
        raise FileNotFoundError(f"no training text found under {', '.join(map(str, sources))}")
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        seen = sorted(t for t in terms if t in text)
        if seen:
            raise ValueError(f"terms found in the training text {f}: {', '.join(seen)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--voices", default=DEFAULT_VOICES)
    p.add_argument("--train-text", type=Path, nargs="*", default=[Path(t) for t in TRAIN_TEXT])
    args = p.parse_args(argv)
    rows = read_sentences()
    check_unseen({t for t, _ in rows}, args.train_text)
    voices = resolve_voices(sorted(parse_voice_mix(args.voices)))
    aug = AugmentOptions()
    synth = Synthesizer(voices, args.out / "voice_cache", aug)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        n: (args.out / n).open("w", encoding="utf-8")
        for n in ("wav.scp", "text", "reading", "terms", "utt2dur")
    }
    for i, (term, sentence) in enumerate(rows):
        key = f"hotwords_{i:04d}"
        params = sample_params(rng, parse_voice_mix(args.voices), aug)
        wav = (args.out / "wav" / f"{key}.wav").resolve()
        pcm = synth.utterance(sentence, params)
        write_wav(wav, pcm)
        files["wav.scp"].write(f"{key} {wav}\n")
        files["text"].write(f"{key} {sentence}\n")
        files["reading"].write(f"{key} {orthographic_kana(sentence)}\n")
        files["terms"].write(f"{key} {term}\n")
        files["utt2dur"].write(f"{key} {len(pcm) / 16000:.3f}\n")
    for f in files.values():
        f.close()
    print(f"{args.out}: {len(rows)} utterances, {len({t for t, _ in rows})} terms")


if __name__ == "__main__":
    main()
