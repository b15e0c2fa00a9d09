"""Term recall with hotwords on the rare-term set (recipes/hotwords) and CER on utterances without the terms.

    python bench/hotword_recall.py [--model DIR] [--weights 0.5 1 1.5 2] [--thresholds 0 0.2] \
        [--evidence 0 3 4] [--modes fast normal] [--beam 10]

The set's first sentence of each term is the tuning half, the second the held-out half. The weight per
token, the acoustic threshold and the pass-1 evidence weight (`SearchOptions.hotword_evidence`, modes
normal/offline) are picked per mode on the tuning half together with the corpus dev set
(data/synth_ja_ortho/dev, or --dev): the highest term recall whose dev reading CER rises by at most 0.2
points over no hotwords (ties: the lower dev CER). The held-out half and the corpus test set
(data/synth_ja_ortho/test, no rare terms) are then decoded with and without the full hotword list
(recipes/hotwords/terms.txt, all 32 phrases, for every utterance). A term counts as recognised when the
written text contains it as given (its reading in the kana output is reported too).
Prints a JSON line per configuration and a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import uniasr  # noqa: E402
from uniasr.cer import NormalizeOptions, read_text_file, score_texts  # noqa: E402

SET = REPO / "data" / "hotwords_ja"
TERMS = REPO / "recipes" / "hotwords" / "terms.txt"


def load_split(d: Path) -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
    """keys, wavs, written text, reading of a Kaldi dir (text may be the reading itself)."""
    scp = read_text_file(d / "wav.scp")
    reading = read_text_file(d / ("reading" if (d / "reading").is_file() else "text"))
    written = read_text_file(d / "text")
    keys = sorted(scp)
    return keys, [scp[k] for k in keys], written, reading


BEAM = None
UNBIASED = 0  # SearchOptions.unbiased_beam


def decode(rec, wavs, mode, graph, evidence=None):
    opts = replace(rec.search_options(BEAM, 1), unbiased_beam=UNBIASED)
    if evidence is not None:
        opts = replace(opts, hotword_evidence=evidence)
    return rec.transcribe(wavs, mode=mode, hotwords=graph, search=opts)


def recall(results, keys, terms, readings) -> tuple[float, float]:
    text_hits = sum(terms[k] in r.text for k, r in zip(keys, results))
    kana_hits = sum(any(f in r.kana for f in readings[terms[k]]) for k, r in zip(keys, results))
    return text_hits / len(keys), kana_hits / len(keys)


def cer(results, keys, refs) -> float:
    total, _, _ = score_texts(refs, {k: r.kana for k, r in zip(keys, results)}, NormalizeOptions())
    return 100 * total.cer


def held_out(rec, mode, w, thr, ev, wavs, keys, held, terms, readings, twavs, tkeys, tread) -> dict:
    """Held-out term recall and corpus test CER, without and with the hotword list at weight `w`,
    acoustic threshold `thr` and evidence weight `ev`."""
    g = rec.hotword_graph(TERMS, w, ac_threshold=thr)
    hk = [keys[i] for i in held]
    h0 = recall(decode(rec, [wavs[i] for i in held], mode, None), hk, terms, readings)
    h1 = recall(decode(rec, [wavs[i] for i in held], mode, g, ev), hk, terms, readings)
    c0 = cer(decode(rec, twavs, mode, None), tkeys, tread)
    c1 = cer(decode(rec, twavs, mode, g, ev), tkeys, tread)
    return {"mode": mode, "weight": w, "beam": BEAM, "unbiased_beam": UNBIASED, "threshold": g.ac_threshold,
            "evidence": ev, "recall_without": h0, "recall_with": h1, "test_cer_without": c0,
            "test_cer_with": c1, "phrases": len(g.phrases)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    p.add_argument("--modes", nargs="+", default=["fast", "normal"])
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the model's)")
    p.add_argument("--weight", type=float, default=None, help="use this weight: no sweep on the tuning half")
    p.add_argument("--thresholds", type=float, nargs="+", default=[None],
                   help="acoustic thresholds to sweep (default: the library's)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=None, help="with --weight: this acoustic threshold")
    p.add_argument("--evidence", type=float, nargs="+", default=[None],
                   help="pass-1 evidence weights to sweep (with --weight: the first)")  # fmt: skip
    p.add_argument("--unbiased-beam", type=int, default=0, help="SearchOptions.unbiased_beam")
    p.add_argument("--dev", type=Path, default=REPO / "data" / "synth_ja_ortho" / "dev",
                   help="Kaldi dir of the dev set for the sweep's CER rule")  # fmt: skip
    args = p.parse_args()
    global BEAM, UNBIASED
    BEAM, UNBIASED = args.beam, args.unbiased_beam
    rec = uniasr.load(args.model)
    from uniasr.hotwords import parse_hotwords, token_forms

    readings = {hw.text: token_forms(hw, rec.tokens.index) for hw in parse_hotwords(TERMS)}
    keys, wavs, _, _ = load_split(SET)
    terms = read_text_file(SET / "terms")
    tune = [i for i, k in enumerate(keys) if int(k.split("_")[1]) % 2 == 0]
    held = [i for i, k in enumerate(keys) if int(k.split("_")[1]) % 2 == 1]
    dkeys, dwavs, _, dread = load_split(args.dev)
    tkeys, twavs, _, tread = load_split(REPO / "data" / "synth_ja_ortho" / "test")
    rows = []
    for mode in args.modes:
        if args.weight is not None:
            args_ = (wavs, keys, held, terms, readings, twavs, tkeys, tread)
            rows.append(held_out(rec, mode, args.weight, args.threshold, args.evidence[0], *args_))
            print(json.dumps(rows[-1]), flush=True)
            continue
        base_dev = cer(decode(rec, dwavs, mode, None), dkeys, dread)
        tune_base = recall(decode(rec, [wavs[i] for i in tune], mode, None), [keys[i] for i in tune], terms,
                           readings)  # fmt: skip
        print(
            json.dumps({"mode": mode, "weight": 0, "tune_recall": tune_base, "dev_cer": base_dev}), flush=True
        )
        best = None
        for w, thr, ev in itertools.product(args.weights, args.thresholds, args.evidence):
            g = rec.hotword_graph(TERMS, w, ac_threshold=thr)
            rc = recall(
                decode(rec, [wavs[i] for i in tune], mode, g, ev), [keys[i] for i in tune], terms, readings
            )
            dc = cer(decode(rec, dwavs, mode, g, ev), dkeys, dread)
            print(json.dumps({"mode": mode, "weight": w, "threshold": g.ac_threshold, "evidence": ev,
                              "tune_recall": rc, "dev_cer": dc}), flush=True)  # fmt: skip
            if dc - base_dev <= 0.2 and (best is None or (rc[0], -dc) > best[3:]):
                best = (w, thr, ev, rc[0], -dc)
        w, thr, ev = best[:3] if best else (min(args.weights), args.thresholds[0], args.evidence[0])
        rows.append(held_out(rec, mode, w, thr, ev, wavs, keys, held, terms, readings, twavs, tkeys, tread))
        print(json.dumps(rows[-1]), flush=True)
    head = "| mode | weight | threshold | evidence | recall without | with (kana) | test CER without | with |"
    print(head)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['mode']}` | {r['weight']} | {r['threshold']} | {r['evidence']} | "
              f"{100 * r['recall_without'][0]:.0f} % | "
              f"**{100 * r['recall_with'][0]:.0f} %** ({100 * r['recall_with'][1]:.0f} %) | "
              f"{r['test_cer_without']:.2f} % | {r['test_cer_with']:.2f} % |")  # fmt: skip


if __name__ == "__main__":
    main()
