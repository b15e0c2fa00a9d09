"""Joint rescoring (uniasr.rescore): sweep its two settings on a dev set; time it against the search alone.

    python bench/joint_rescore.py --data data/synth_ja_dev325_ortho/dev [--mode normal] [--beam 5] \
        [--weights 0.4 0.5 0.6] [--bonuses 0 1 2 2.5 3] [--time 60] \
        [--written data/synth_ja_dev325/dev --written-weights 0 0.5 1]

Each utterance is decoded once: both passes' n-best lists (the model's decoding.yaml otherwise, agreement
included) and each candidate's forced score under both decoders (`forced_scores`); every (pass-1 weight,
length bonus) pair then picks its candidate without decoding again. Prints the reading CER of pass 1's
best, pass 2's search best and each pair (best first). `--written DIR` (the written sentences): each
candidate is also converted to written text (the model's converter) and scored by the model dir's written
LM (`ModelBundle.written_logprob`); the sweep adds that score's weight and prints written and reading CER
(decoding.yaml's own `joint_written_weight` is then ignored). `--time N`:
then decodes the first N utterances with `transcribe` with rescoring on and off (same process, same
settings otherwise) and prints the time ratio.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import uniasr  # noqa: E402
from uniasr.acoustic import _search, run_passes, to_numpy  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.cer import ErrorCounts, NormalizeOptions, align, normalize_text, read_text_file  # noqa: E402
from uniasr.decode.context import pass2_options  # noqa: E402
from uniasr.decode.search import hypothesis_tokens  # noqa: E402
from uniasr.rescore import candidate_options, forced_scores  # noqa: E402


def collect(
    rec,
    wavs: dict[str, str],
    refs: dict[str, str],
    mode: str,
    beam: int,
    written: dict[str, str] | None = None,
) -> list[dict]:
    """Per utterance: candidates, their forced scores per pass, their errors, which search found each;
    with `written` refs also each candidate's written errors and written-LM score (ln)."""
    opts = candidate_options(replace(rec.search_options(beam, 1), joint_pass1_weight=0.5))
    norm = NormalizeOptions()
    be, rows = rec.backend, []
    for key, path in wavs.items():
        feats = to_numpy(rec.features(load_audio(path), key))
        with be.inference():
            out = run_passes(be, [feats], mode, with_first=True)[0]
            assert out.first is not None
            h1 = _search(be, [out.first], opts)[0]
            h2 = _search(be, [out], [pass2_options(opts, h1[0])])[0]
            cands: list[list[int]] = []
            for h in (*h1, *h2):
                if hypothesis_tokens(h) not in cands:
                    cands.append(hypothesis_tokens(h))
            s1, s2 = (forced_scores(be, [o], [cands])[0] for o in (out.first, out))
        ref = normalize_text(refs[key], norm)
        err = [
            align(ref, normalize_text(rec.tokens.detokenize(rec.tokens.to_tokens(y)), norm)) for y in cands
        ]
        first, second = cands.index(hypothesis_tokens(h1[0])), cands.index(hypothesis_tokens(h2[0]))
        lengths = np.array([len(y) for y in cands])
        row = dict(s1=s1, s2=s2, err=err, first=first, second=second, lengths=lengths)
        if written is not None:
            texts = [rec.converter(rec.tokens.detokenize(rec.tokens.to_tokens(y))) for y in cands]
            wref = normalize_text(written[key], norm)
            row["werr"] = [align(wref, normalize_text(t, norm)) for t in texts]
            row["wlm"] = np.array([rec.written_logprob(y) for y in cands])
        rows.append(row)
    return rows


def total(rows: list[dict], pick, field: str = "err") -> ErrorCounts:
    out = ErrorCounts()
    for r in rows:
        out = out + r[field][pick(r)]
    return out


def show(name: str, t: ErrorCounts) -> None:
    print(f"{name:34s} {100 * t.cer:6.2f} %  S/D/I {t.substitutions}/{t.deletions}/{t.insertions}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="Kaldi dir: wav.scp and text (the reading)")
    p.add_argument("--model", default=None, help="model dir (default: the bundled model)")
    p.add_argument("--mode", default="normal", choices=("normal", "offline"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7])
    p.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    p.add_argument("--time", type=int, default=0, metavar="N", help="time N utterances with and without")
    p.add_argument("--written", type=Path, default=None, help="Kaldi dir of the written sentences")
    p.add_argument("--written-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    args = p.parse_args()
    rec = uniasr.load(args.model)
    wavs, refs = read_text_file(args.data / "wav.scp"), read_text_file(args.data / "text")
    written = read_text_file(args.written / "text") if args.written else None
    rows = collect(rec, wavs, refs, args.mode, args.beam, written)
    show("pass 1 best (fast)", total(rows, lambda r: r["first"]))
    show("pass 2 search best", total(rows, lambda r: r["second"]))
    if written is not None:
        sweep_written(rows, args.weights, args.bonuses, args.written_weights)
        return
    grid = []
    for a, b in itertools.product(args.weights, args.bonuses):
        t = total(
            rows, lambda r, a=a, b=b: int(np.argmax(a * r["s1"] + (1 - a) * r["s2"] + b * r["lengths"]))
        )
        grid.append((t.cer, a, b, t))
    grid.sort(key=lambda g: g[0])
    for _, a, b, t in grid:
        show(f"joint a={a:g} b={b:g}", t)
    if args.time:
        audio = [load_audio(w) for w in list(wavs.values())[: args.time]]
        on = replace(
            rec.search_options(args.beam, 1), joint_pass1_weight=grid[0][1], joint_length_bonus=grid[0][2]
        )
        seconds = {}
        for name, opts in (
            ("off", replace(on, joint_pass1_weight=None)),
            ("on", on),
            ("off again", replace(on, joint_pass1_weight=None)),
        ):
            t0 = time.perf_counter()
            rec.transcribe(audio, mode=args.mode, search=opts)
            seconds[name] = time.perf_counter() - t0
        off = min(seconds["off"], seconds["off again"])
        print(
            f"time for {len(audio)} utterances: off {off:.2f} s, on {seconds['on']:.2f} s, "
            f"ratio {seconds['on'] / off:.2f}"
        )


def sweep_written(rows: list[dict], weights, bonuses, lm_weights) -> None:
    """Written and reading CER per (pass-1 weight, length bonus, written-LM weight), best written first."""
    show("written: pass 1 best (fast)", total(rows, lambda r: r["first"], "werr"))
    grid = []
    for a, b, c in itertools.product(weights, bonuses, lm_weights):

        def pick(r, a=a, b=b, c=c):
            return int(np.argmax(a * r["s1"] + (1 - a) * r["s2"] + b * r["lengths"] + c * r["wlm"]))

        grid.append((total(rows, pick, "werr").cer, a, b, c, total(rows, pick)))
    grid.sort(key=lambda g: g[0])
    for w, a, b, c, t in grid[:25]:
        print(f"a={a:g} b={b:g} lm={c:g}  written {100 * w:6.2f} %  reading {100 * t.cer:6.2f} %")
    for w, a, b, c, t in grid:
        if (a, b, c) == (0.5, 2.5, 0.0):
            print(f"no written LM (0.5, 2.5): written {100 * w:6.2f} %  reading {100 * t.cer:6.2f} %")


if __name__ == "__main__":
    main()
