"""Decoding speed with hotwords (1, 100, 1,000 phrases) and with the token LM, against plain decoding in
the same process (same inputs, same model).

    python bench/bench_hotwords.py [--model DIR] [--lm exp/token_lm/train_5gram.arpa.gz] [--utts 20]

Phrases are random katakana strings of 3-8 tokens (seeded), so the prefix tree has about 5 nodes a phrase.
Each configuration decodes the first --utts utterances of data/synth_ja_ortho/test in `fast` and `normal`,
--repeats times (the best wall time counts). Prints wall seconds and the ratio to plain decoding. In
`normal` hotwords also run the pass-1 search (for its evidence); a row without it shows that cost, and one
without the model's pass-1 agreement shows what that costs plain decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import uniasr  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.cer import read_text_file  # noqa: E402


def random_phrases(tokens: list[str], n: int, seed: int = 0) -> dict[str, float]:
    kana = [t for t in tokens if len(t) == 1 and "ァ" <= t <= "ヶ"]
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    while len(out) < n:
        out["".join(rng.choice(kana, size=int(rng.integers(3, 9))))] = 2.0
    return out


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--lm", default=str(REPO / "exp" / "token_lm" / "train_5gram.arpa.gz"))
    p.add_argument("--utts", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--hotword-beam", type=int, default=None, help="beam width with hotwords (default: the model's)"
    )
    args = p.parse_args()
    hb = args.hotword_beam
    rec = uniasr.load(args.model)
    scp = read_text_file(REPO / "data" / "synth_ja_ortho" / "test" / "wav.scp")
    audio = [load_audio(scp[k]) for k in sorted(scp)[: args.utts]]
    seconds = sum(len(a) for a in audio) / 16000
    print(f"{len(audio)} utterances, {seconds:.1f} s of audio; load average {os.getloadavg()[0]:.1f}")
    graphs = {n: rec.hotword_graph(random_phrases(list(rec.tokens.tokens), n)) for n in (1, 100, 1000)}
    rows = []
    for mode in ("fast", "normal"):
        rec.use_lm(None, 0.0)
        base = best_time(lambda m=mode: rec.transcribe(audio, mode=m), args.repeats)
        rows.append((mode, "plain", base, 1.0))
        first = len(rows) - 1
        if mode == "normal" and rec.defaults.agreement_weight > 0:  # what pass-1 agreement costs
            plain = replace(rec.search_options(None, 1), agreement_weight=0.0)
            t = best_time(lambda o=plain: rec.transcribe(audio, mode="normal", search=o), args.repeats)
            rows.append((mode, "plain, agreement_weight 0", t, t / base))
        beam = f", beam {hb}" if hb else ""
        if hb:
            t = best_time(lambda m=mode: rec.transcribe(audio, mode=m, beam_size=hb), args.repeats)
            rows.append((mode, f"plain{beam}", t, t / base))
        for n, g in graphs.items():
            t = best_time(
                lambda g=g, m=mode: rec.transcribe(audio, mode=m, hotwords=g, beam_size=hb), args.repeats
            )
            rows.append((mode, f"{n} hotwords ({len(g)} nodes){beam}", t, t / base))
        if mode == "normal":  # the pass-1 search the evidence needs (SearchOptions.hotword_evidence)
            off = replace(rec.search_options(hb, 1), hotword_evidence=0.0)
            t = best_time(lambda o=off: rec.transcribe(audio, mode="normal", hotwords=graphs[1000], search=o),
                          args.repeats)  # fmt: skip
            rows.append((mode, f"1000 hotwords{beam}, no pass-1 evidence", t, t / base))
        if Path(args.lm).is_file():
            rec.use_lm(args.lm, 0.2, 0.0)
            t = best_time(lambda m=mode: rec.transcribe(audio, mode=m), args.repeats)
            rows.append((mode, f"token LM ({Path(args.lm).name}, w 0.2)", t, t / base))
            rec.use_lm(None, 0.0)
        for r in rows[first:]:
            print(
                json.dumps({"mode": r[0], "config": r[1], "wall_s": round(r[2], 3), "ratio": round(r[3], 3)})
            )
    print("| mode | configuration | wall s | x plain |")
    print("|---|---|---|---|")
    for mode, cfg, t, ratio in rows:
        print(f"| `{mode}` | {cfg} | {t:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
