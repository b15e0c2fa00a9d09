"""The level rescue's cost: Silero alone vs `silero+level` on the same recording (detection only).

    .venv/bin/python bench/bench_vad_rescue.py data/long_test/long.wav [--repeats 3]

Prints the segments each finds, the best-of-N time of each and the ratio (the rescue's extra work is one
level per 32 ms frame).
"""

from __future__ import annotations

import argparse
import time

import soundfile as sf

from uniasr.vad import load_vad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wav")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    audio, rate = sf.read(a.wav, dtype="float32")
    best = {}
    for spec, suffix in (("silero", ""), ("silero+level", "+level")):
        vad = load_vad(f"silero:{rate}{suffix}")
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            segments = vad.detect(audio)
            times.append(time.perf_counter() - t0)
        best[spec] = min(times)
        speech = sum(s.end_ms - s.start_ms for s in segments) / 1000
        print(f"{spec:14s} {len(segments):4d} segments, {speech:7.1f} s of speech, best {best[spec]:.3f} s")
    print(
        f"ratio silero+level / silero: {best['silero+level'] / best['silero']:.3f}"
        f" ({len(audio) / rate / 60:.1f} min of audio)"
    )


if __name__ == "__main__":
    main()
