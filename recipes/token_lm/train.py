"""A token-level n-gram LM for shallow fusion (`uniasr transcribe --lm FILE --lm-weight W`), trained on the
training split's transcripts only, in the model's token space (the default model: orthographic kana, one
character a token).

    python -m recipes.token_lm.train data/synth_ja_ortho/train/text --model src/uniasr/models/default \\
        --out exp/token_lm/train_5gram.arpa.gz --order 5

Each line of the Kaldi `text` file (`key transcript`) becomes the sequence of its characters; a character
that is not one of the model's tokens becomes `<unk>`. Interpolated modified Kneser-Ney (uniasr.lm.ngram).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from uniasr.funasr.model_dir import read_model_dir
from uniasr.lm.ngram import UNK, train_kneser_ney


def token_sentences(text_file: Path, tokens: set[str]) -> list[list[str]]:
    """Kaldi text (key transcript) -> per line the token strings of its transcript (characters)."""
    out = []
    for line in text_file.read_text(encoding="utf-8").splitlines():
        _, _, text = line.partition(" ")
        syms = [ch if ch in tokens else UNK for ch in text.strip() if not ch.isspace()]
        if syms:
            out.append(syms)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", type=Path, help="Kaldi text file of the training split (key transcript)")
    p.add_argument("--model", type=Path, required=True, help="model dir whose tokens the LM predicts")
    p.add_argument("--out", type=Path, required=True, help="ARPA file to write (.gz: compressed)")
    p.add_argument("--order", type=int, default=5)
    args = p.parse_args(argv)
    tokens = set(read_model_dir(args.model).tokens)
    sentences = token_sentences(args.text, tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = train_kneser_ney(sentences, args.order).write_arpa(args.out)
    unk = sum(s.count(UNK) for s in sentences)
    print(
        f"{path}: {len(sentences)} sentences, {sum(map(len, sentences))} tokens ({unk} <unk>), "
        f"{path.stat().st_size / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
