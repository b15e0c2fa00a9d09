"""Orthographic katakana readings: what the default model writes (and a kana-kanji converter reads back).

Open JTalk gives every word two readings: `read`, the reading as kana orthography writes it (コウエン, ハ for
the particle は), and `pron`, what its synthesiser says (コーエン, ワ). A kana-kanji converter needs the
orthographic form (こうえん -> 公園; こーえん is not a word), but the audio says the pronunciation. The
orthographic reading here takes `read` only where it differs from `pron` by spelling alone, position by
position: a long-vowel mark (ー for ウ/イ/エ/オ), the particles は/へ (ワ/エ), づ (ズ) and いう (ユー). Where
the sound itself differs (gemination 一本 イッ, voicing 三百 ビャク, ヘエー vs ヘー) it keeps `pron`, so the
label never asks the model to write a sound it did not hear. Punctuation is kept as written, as in the
corpus's `kana` files.

>>> orthographic_kana("東京へ行って公園でラーメンを食べた。")  # doctest: +SKIP
'トウキョウヘイッテコウエンデラーメンヲタベタ。'
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from uniasr.kana_reading import word_reading

Frontend = Callable[[str], Iterable[dict]]


def orthographic_kana(text: str, frontend: Frontend | None = None) -> str:
    """Sentence -> orthographic katakana reading, punctuation kept. `frontend` defaults to
    `pyopenjtalk.run_frontend` (the same analysis the corpus was synthesised with)."""
    if frontend is None:
        import pyopenjtalk

        frontend = pyopenjtalk.run_frontend
    return "".join(word_reading(n["string"], n["pos"], n["read"], n["pron"]) for n in frontend(text))


def write_reading_dirs(corpus: Path, out: Path, splits: Iterable[str] = ("train", "dev", "test")) -> None:
    """<corpus>/<split>/{wav.scp,utt2dur,text} -> <out>/<split>/ with `text` the orthographic kana."""
    for split in splits:
        src, dst = corpus / split, out / split
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("wav.scp", "utt2dur"):
            shutil.copyfile(src / name, dst / name)
        with (src / "text").open(encoding="utf-8") as fin, (dst / "text").open("w", encoding="utf-8") as fout:
            for line in fin:
                key, _, text = line.rstrip("\n").partition(" ")
                fout.write(f"{key} {orthographic_kana(text)}\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="corpus dirs -> the same dirs with orthographic kana as `text`")
    p.add_argument("corpus", type=Path, help="make_corpus.py output (with train/ dev/ test/)")
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    write_reading_dirs(args.corpus, args.out)


if __name__ == "__main__":
    main()
