"""Write the README's demo clip: one ~4 s TEST-split sentence (never in train/dev) in the bundled voice.

    python -m recipes.synth_ja.make_sample [--out-dir recipes/synth_ja]

Writes sample_ja.wav (16 kHz mono PCM16, clean: no noise or reverberation) and sample_ja.txt (the sentence),
sample_ja.kana.txt (its Open JTalk katakana pronunciation) and sample_ja.reading.txt (its orthographic
katakana reading, recipes/synth_ja/reading.py: what the bundled model writes before kana-kanji conversion).
Uses only the voice bundled with pyopenjtalk-plus, so anyone can regenerate it byte for byte.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from recipes.synth_ja import textprep
from recipes.synth_ja.reading import orthographic_kana
from recipes.synth_ja.synth import (
    BUNDLED_VOICE,
    SAMPLE_RATE,
    Synthesizer,
    UttParams,
    resolve_voices,
    write_wav,
)

logger = logging.getLogger("recipes.synth_ja.make_sample")
HERE = Path(__file__).resolve().parent

SAMPLE_PARAMS = UttParams(
    voice=BUNDLED_VOICE,
    speed=1.0,
    half_tone=0.0,
    alpha=0.55,
    gain_db=-3.0,
    lead_silence_s=0.3,
    trail_silence_s=0.3,
    rt60_s=None,
    noise_color=None,
    snr_db=None,
    aug_seed=0,
)


def pick_sentence(
    test: list[textprep.Sentence], target_s: float, synth: Synthesizer
) -> tuple[str, np.ndarray]:
    """First test sentence (source order) of 12-30 characters whose clip lasts target_s +- 0.5 s."""
    for s in test:
        n = len(textprep.content_chars(s.text))
        if not 12 <= n <= 30 or not s.text.endswith("。"):
            continue
        pcm = synth.utterance(s.text, SAMPLE_PARAMS)
        if abs(len(pcm) / SAMPLE_RATE - target_s) <= 0.5:
            return s.text, pcm
    raise RuntimeError(f"no test sentence gives a {target_s} s clip")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    synth = Synthesizer(resolve_voices([BUNDLED_VOICE]), args.out_dir / ".voice_cache_sample")
    sentences, _ = textprep.read_sentences(pron=synth.kana)
    test = textprep.split_sentences(sentences)["test"]
    text, pcm = pick_sentence(test, args.seconds, synth)
    write_wav(args.out_dir / "sample_ja.wav", pcm)
    (args.out_dir / "sample_ja.txt").write_text(text + "\n", encoding="utf-8")
    (args.out_dir / "sample_ja.kana.txt").write_text(synth.kana(text) + "\n", encoding="utf-8")
    (args.out_dir / "sample_ja.reading.txt").write_text(orthographic_kana(text) + "\n", encoding="utf-8")
    for f in (args.out_dir / ".voice_cache_sample").glob("*"):
        f.unlink()
    (args.out_dir / ".voice_cache_sample").rmdir()
    logger.info("wrote %s (%.2f s): %s", args.out_dir / "sample_ja.wav", len(pcm) / SAMPLE_RATE, text)


if __name__ == "__main__":
    main()
