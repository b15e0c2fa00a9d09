"""A long recording for the long-form checks: the sentences of one split read one after another with pauses.

    python -m recipes.synth_ja.make_long data/synth_ja/dev data/synth_ja_ortho/dev --out data/long_dev
    python -m recipes.synth_ja.make_long data/synth_ja/test data/synth_ja_ortho/test --out data/long_test \
        --max-utts 116

Writes OUT/long.wav (16 kHz PCM16: each sentence's clip, then a pause of --min-pause..--max-pause s of
-80 dBFS noise, seeded), OUT/wav.scp and OUT/text (one key, `long`: the written sentences joined, in
order), OUT/reading (the same for the orthographic readings) and OUT/sentences/{wav.scp,text,reading}
(the clips one by one, the reference for "decoded one by one"). Deterministic for a given corpus.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from uniasr.cer import read_text_file

RATE = 16000


def build(
    data_dir: Path,
    reading_dir: Path,
    out: Path,
    *,
    max_utts: int | None,
    pauses: tuple[float, float],
    seed: int,
) -> Path:
    wavs, texts = read_text_file(data_dir / "wav.scp"), read_text_file(data_dir / "text")
    readings = read_text_file(reading_dir / "text")
    keys = sorted(texts)[:max_utts]
    rng = np.random.default_rng(seed)
    (out / "sentences").mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(out / "long.wav", "w", RATE, 1, "PCM_16") as f:
        for key in keys:
            clip, rate = sf.read(wavs[key], dtype="float32")
            if rate != RATE:
                raise ValueError(f"{wavs[key]}: {rate} Hz, expected {RATE}")
            pause = 1e-4 * rng.standard_normal(int(rng.uniform(*pauses) * RATE))
            f.write(np.concatenate([clip, pause.astype(np.float32)]))
    (out / "wav.scp").write_text(f"long {(out / 'long.wav').resolve()}\n", encoding="utf-8")
    (out / "text").write_text("long " + "".join(texts[k] for k in keys) + "\n", encoding="utf-8")
    (out / "reading").write_text("long " + "".join(readings[k] for k in keys) + "\n", encoding="utf-8")
    for name, table in (("wav.scp", wavs), ("text", texts), ("reading", readings)):
        lines = "".join(f"{k} {table[k]}\n" for k in keys)
        (out / "sentences" / name).write_text(lines, encoding="utf-8")
    return out / "long.wav"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", type=Path, help="corpus split with wav.scp and text (written sentences)")
    p.add_argument("reading_dir", type=Path, help="the same split's orthographic-kana dir (its text)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-utts", type=int, default=None, help="the first N sentences (sorted keys)")
    p.add_argument("--min-pause", type=float, default=0.5)
    p.add_argument("--max-pause", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    path = build(
        a.data_dir, a.reading_dir, a.out, max_utts=a.max_utts, pauses=(a.min_pause, a.max_pause), seed=a.seed
    )
    print(f"{path}: {sf.info(path).duration / 60:.1f} min")


if __name__ == "__main__":
    main()
