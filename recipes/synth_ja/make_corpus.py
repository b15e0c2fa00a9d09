"""Build the synthetic Japanese speech corpus (Open JTalk voices + augmentation) as Kaldi dirs and jsonl.

    python -m recipes.synth_ja.make_corpus --out data/synth_ja --num-utts 20000 --jobs 8
    python recipes/synth_ja/make_corpus.py --out data/synth_ja --hours 50 --jobs 8 --broaden 5000

Output (see README.md): <out>/{train,dev,test}/{wav.scp,text,kana,utt2dur}, <out>/{split}.jsonl,
<out>/wav/<split>/NNNN/<key>.wav (16 kHz mono PCM16), <out>/sentences/<split>.txt, <out>/corpus_info.json.
Deterministic for a given --seed (and text, voices, options); a bigger --num-utts extends a smaller run with
the same utterances; existing wavs are kept (resumable).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from recipes.synth_ja import textprep
from recipes.synth_ja.synth import (
    DEFAULT_VOICES,
    AugmentOptions,
    Synthesizer,
    UttParams,
    parse_voice_mix,
    resolve_voices,
    sample_params,
    write_wav,
)

logger = logging.getLogger("recipes.synth_ja.make_corpus")

# Mean seconds of speech per content character at speed 1.0, measured on 60 utterances of the default voice
# mix (README, "Synthesis speed"); only used to turn --hours into a number of utterances.
SECONDS_PER_CHAR = 0.20
HTS_EDGE_SILENCE_S = 0.7  # silence Open JTalk itself leaves before and after the speech (~0.3 s + ~0.4 s)


@dataclass(frozen=True)
class UttSpec:
    key: str
    split: str
    index: int
    text: str
    source: str
    wav_path: str
    params: UttParams


def sentence_index(
    index: int, num_sentences: int, seed: int, split_id: int, _cache: dict | None = None
) -> int:
    """Sentence used by utterance `index`: each pass over the sentences is a fresh seeded permutation."""
    cycle, pos = divmod(index, num_sentences)
    cache = _cache if _cache is not None else {}
    key = (seed, split_id, cycle, num_sentences)
    if key not in cache:
        cache[key] = np.random.default_rng([seed, split_id, 1_000_003, cycle]).permutation(num_sentences)
    return int(cache[key][pos])


def plan_split(
    split: str,
    sentences: list[textprep.Sentence],
    num_utts: int,
    seed: int,
    voice_mix: dict[str, float],
    aug: AugmentOptions,
    out: Path,
) -> list[UttSpec]:
    """The first `num_utts` utterances of a split (prefix-stable: planning more never changes these)."""
    if num_utts > 0 and not sentences:
        raise ValueError(f"split {split!r} has no sentences but {num_utts} utterances were asked for")
    split_id = textprep.SPLITS.index(split)
    cache: dict = {}
    specs = []
    for i in range(num_utts):
        sent = sentences[sentence_index(i, len(sentences), seed, split_id, cache)]
        params = sample_params(np.random.default_rng([seed, split_id, i]), voice_mix, aug)
        key = f"synthja_{split}_{i:07d}"
        wav = out / "wav" / split / f"{i // 1000:04d}" / f"{key}.wav"
        specs.append(UttSpec(key, split, i, sent.text, f"{sent.source}:{sent.line_no}", str(wav), params))
    return specs


def allocate(num_total: int, splits: dict[str, list], dev_utts: int | None, test_utts: int | None) -> dict:
    """Utterances per split: dev/test default to ~3 % of the total each (at most one per sentence)."""
    counts = {}
    for name, given in (("dev", dev_utts), ("test", test_utts)):
        default = min(len(splits[name]), max(1, round(0.03 * num_total)))
        counts[name] = default if given is None else given
    counts["train"] = num_total - counts["dev"] - counts["test"]
    if counts["train"] < 0:
        raise ValueError(
            f"--num-utts {num_total} is smaller than dev {counts['dev']} + test {counts['test']}"
        )
    return counts


def utts_for_hours(hours: float, sentences: list[textprep.Sentence], aug: AugmentOptions) -> int:
    """Utterances expected to give `hours` of audio (estimated from text length, see SECONDS_PER_CHAR)."""
    chars = np.mean([len(textprep.content_chars(s.text)) for s in sentences])
    lo, hi = aug.speed
    mean_inverse_speed = (math.log(hi) - math.log(lo)) / (hi - lo) if hi > lo else 1.0 / lo
    silence = float(np.mean(aug.lead_silence_s) + np.mean(aug.trail_silence_s)) + HTS_EDGE_SILENCE_S
    per_utt = chars * SECONDS_PER_CHAR * mean_inverse_speed + silence
    return max(3, math.ceil(hours * 3600 / per_utt))


# ------------------------------------------------------------------------------------------- workers

_SYNTH: Synthesizer | None = None


def _init_worker(voice_paths: dict, cache_dir: str, aug: AugmentOptions, log_level: int) -> None:
    global _SYNTH
    logging.basicConfig(level=log_level)
    _SYNTH = Synthesizer(voice_paths, Path(cache_dir), aug)


def _synthesize(spec: UttSpec) -> tuple[str, float, float]:
    """Worker: write one wav; returns (key, duration s, CPU s)."""
    assert _SYNTH is not None, "worker not initialised"
    cpu0 = time.process_time()
    pcm = _SYNTH.utterance(spec.text, spec.params)
    write_wav(Path(spec.wav_path), pcm)
    return spec.key, len(pcm) / 16000, time.process_time() - cpu0


@dataclass
class SynthesisStats:
    utterances: int = 0  # synthesised in this run (not found on disk)
    audio_s: float = 0.0
    cpu_s: float = 0.0  # worker CPU time (process_time) spent on them

    @property
    def audio_s_per_cpu_s(self) -> float:
        return self.audio_s / self.cpu_s if self.cpu_s else 0.0


def run_synthesis(
    specs: list[UttSpec], voice_paths: dict, cache_dir: Path, aug: AugmentOptions, jobs: int
) -> tuple[dict[str, float], SynthesisStats]:
    """Synthesise the specs whose wav is missing. Returns (key -> duration of every spec, run stats)."""
    import soundfile as sf

    durations: dict[str, float] = {}
    todo = []
    for spec in specs:
        path = Path(spec.wav_path)
        if path.is_file() and path.stat().st_size > 44:
            durations[spec.key] = sf.info(str(path)).frames / 16000
        else:
            todo.append(spec)
    logger.info("%d utterances: %d already on disk, %d to synthesise", len(specs), len(durations), len(todo))
    stats = SynthesisStats()
    if not todo:
        return durations, stats
    progress = _progress(len(todo))
    init_args = (voice_paths, str(cache_dir), aug, logging.getLogger().level)
    if jobs <= 1:
        _init_worker(*init_args)
        results = map(_synthesize, todo)
        for key, dur, cpu in results:
            durations[key] = dur
            stats.utterances, stats.audio_s, stats.cpu_s = (
                stats.utterances + 1,
                stats.audio_s + dur,
                stats.cpu_s + cpu,
            )
            progress.update(1)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(jobs, initializer=_init_worker, initargs=init_args) as pool:
            for key, dur, cpu in pool.imap_unordered(_synthesize, todo, chunksize=4):
                durations[key] = dur
                stats.utterances, stats.audio_s, stats.cpu_s = (
                    stats.utterances + 1,
                    stats.audio_s + dur,
                    stats.cpu_s + cpu,
                )
                progress.update(1)
    progress.close()
    return durations, stats


def _progress(total: int):
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="utt", desc="synthesising", disable=total < 50)
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return type("NoBar", (), {"update": lambda self, n: None, "close": lambda self: None})()


# ------------------------------------------------------------------------------------------- outputs


def write_split(out: Path, split: str, specs: list[UttSpec], durations: dict, kana: dict[str, str]) -> float:
    """Write <out>/<split>/{wav.scp,text,kana,utt2dur} and <out>/<split>.jsonl; returns the split's hours."""
    split_dir = out / split
    split_dir.mkdir(parents=True, exist_ok=True)
    specs = sorted(specs, key=lambda s: s.key)
    files = {
        name: (split_dir / name).open("w", encoding="utf-8")
        for name in ("wav.scp", "text", "kana", "utt2dur")
    }
    with (out / f"{split}.jsonl").open("w", encoding="utf-8") as jsonl:
        for s in specs:
            dur = round(durations[s.key], 3)
            files["wav.scp"].write(f"{s.key} {s.wav_path}\n")
            files["text"].write(f"{s.key} {s.text}\n")
            files["kana"].write(f"{s.key} {kana[s.text]}\n")
            files["utt2dur"].write(f"{s.key} {dur}\n")
            record = {
                "key": s.key,
                "audio": s.wav_path,
                "text": s.text,
                "duration": dur,
                "kana": kana[s.text],
            }
            record.update({"source": s.source, "synth": s.params.to_dict()})
            jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
    for f in files.values():
        f.close()
    return sum(durations[s.key] for s in specs) / 3600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (paths in wav.scp start with it)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--num-utts", type=int, help="total utterances (train + dev + test)")
    size.add_argument("--hours", type=float, help="total hours (converted to --num-utts by an estimate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--voices", default=DEFAULT_VOICES, help="name[:weight],... (default: %(default)s)")
    p.add_argument("--voice-dir", type=Path, default=None, help="folder of fetched voices (default: voices/)")
    p.add_argument("--dev-utts", type=int, help="dev utterances (default ~3%% of the total)")
    p.add_argument("--test-utts", type=int, help="test utterances (default ~3%% of the total)")
    p.add_argument("--broaden", type=int, default=0, help="add N dictionary/number phrases to train")
    p.add_argument("--min-chars", type=int, default=4)
    p.add_argument("--max-chars", type=int, default=100)
    p.add_argument("--noise-prob", type=float, default=AugmentOptions.noise_prob)
    p.add_argument("--reverb-prob", type=float, default=AugmentOptions.reverb_prob)
    p.add_argument("--clean", action="store_true", help="no noise, no reverb (voice variation stays)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def prepare_text(
    opts: textprep.TextOptions, broaden_count: int, seed: int
) -> dict[str, list[textprep.Sentence]]:
    from recipes.synth_ja.synth import import_pyopenjtalk

    g2p = import_pyopenjtalk().g2p
    sentences, stats = textprep.read_sentences(textprep.TEXT_DIR, opts, lambda text: g2p(text, kana=True))
    logger.info("text lines: %s", dict(stats))
    splits = textprep.split_sentences(sentences, opts)
    if broaden_count:
        from recipes.synth_ja.broaden import broaden_phrases

        covered = {ch for s in sentences for ch in s.text}
        known = {textprep.content_chars(s.text) for s in sentences}
        extra: dict[str, str] = {}  # content -> phrase; no repeats, nothing that is already a sentence
        for phrase in broaden_phrases(broaden_count, covered, seed):
            key = textprep.content_chars(phrase)
            if key not in known and key not in extra:
                extra[key] = phrase
        splits["train"] += [textprep.Sentence(p, "broaden", i + 1) for i, p in enumerate(extra.values())]
    return splits


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    wall0 = time.perf_counter()
    text_opts = textprep.TextOptions(min_chars=args.min_chars, max_chars=args.max_chars)
    noise, reverb = (0.0, 0.0) if args.clean else (args.noise_prob, args.reverb_prob)
    aug = AugmentOptions(noise_prob=noise, reverb_prob=reverb)
    voice_mix = parse_voice_mix(args.voices)
    voice_paths = resolve_voices(sorted(voice_mix), *([args.voice_dir] if args.voice_dir else []))
    splits = prepare_text(text_opts, args.broaden, args.seed)
    out: Path = args.out
    (out / "sentences").mkdir(parents=True, exist_ok=True)
    for name, sents in splits.items():
        (out / "sentences" / f"{name}.txt").write_text(
            "".join(s.text + "\n" for s in sents), encoding="utf-8"
        )
    num_total = (
        args.num_utts if args.num_utts is not None else utts_for_hours(args.hours, splits["train"], aug)
    )
    counts = allocate(num_total, splits, args.dev_utts, args.test_utts)
    specs = {n: plan_split(n, splits[n], counts[n], args.seed, voice_mix, aug, out) for n in textprep.SPLITS}
    all_specs = [s for n in textprep.SPLITS for s in specs[n]]
    durations, stats = run_synthesis(all_specs, voice_paths, out / ".voice_cache", aug, args.jobs)
    from recipes.synth_ja.synth import import_pyopenjtalk

    g2p = import_pyopenjtalk().g2p
    kana = {t: g2p(t, kana=True) for t in sorted({s.text for s in all_specs})}
    hours = {n: write_split(out, n, specs[n], durations, kana) for n in textprep.SPLITS}
    info = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "utterances": counts,
        "hours": {n: round(h, 4) for n, h in hours.items()},
        "sentences": {n: textprep.text_stats(s) for n, s in splits.items()},
        "augment": asdict(aug),
        "voices": {n: str(p) for n, p in voice_paths.items()},
        "wall_s": round(time.perf_counter() - wall0, 2),
        "this_run": {
            "synthesised_utterances": stats.utterances,
            "audio_s": round(stats.audio_s, 2),
            "worker_cpu_s": round(stats.cpu_s, 2),
            "audio_s_per_cpu_s": round(stats.audio_s_per_cpu_s, 2),
        },
    }
    (out / "corpus_info.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    logger.info("done: %s utterances, hours %s, wall %.1f s", counts, info["hours"], info["wall_s"])
    return info


if __name__ == "__main__":
    main()
