"""The default model's kana -> written text LM: a character 4-gram (interpolated Kneser-Ney) of the
training split's written sentences, saved as `written_lm.arpa.gz` in a model dir (see uniasr.kana_kanji).

    python -m recipes.synth_ja.written_lm data/synth_ja/sentences/train.txt --out src/uniasr/models/default

Only the training sentences: dev and test sentences never reach it (the corpus split is by sentence).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from uniasr.kana_kanji import LM_FILE
from uniasr.lm.ngram import train_kneser_ney

ORDER = 4


def build(sentences_file: Path, out_dir: Path, order: int = ORDER) -> Path:
    sentences = [line.strip() for line in sentences_file.read_text(encoding="utf-8").splitlines()]
    lm = train_kneser_ney([list(s) for s in sentences if s], order)
    return lm.write_arpa(Path(out_dir) / LM_FILE)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sentences", type=Path, help="one written sentence a line (the training split's)")
    p.add_argument("--out", type=Path, required=True, help="model dir to write written_lm.arpa.gz into")
    p.add_argument("--order", type=int, default=ORDER)
    args = p.parse_args(argv)
    path = build(args.sentences, args.out, args.order)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
