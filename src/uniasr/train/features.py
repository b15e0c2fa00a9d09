"""Training features: utterance -> (augmented) CMVN'd LFR features; CMVN statistics; feature-shard dumps.

The fbank, LFR and CMVN steps are the inference frontend's (`uniasr.audio.features`), so a model trained here
sees exactly the features `uniasr.load(...)` computes at decoding time (without the augmentation).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from uniasr.audio.decoding import load_audio
from uniasr.audio.errors import AudioError
from uniasr.audio.features import Cmvn, Frontend, FrontendConfig, apply_lfr, compute_fbank
from uniasr.train.augment import (
    NO_AUGMENT,
    AugmentConfig,
    add_dither,
    add_edge_silence,
    example_rng,
    spec_augment_lfr,
    speed_perturb,
)
from uniasr.train.data import DataIssue, Utterance

log = logging.getLogger(__name__)

NPZ_CACHE = 4


class FeatureMaker:
    """Utterance + epoch -> features [T, feature_dim] float32 (what the encoder is trained on).

    Audio goes: load (16 kHz mono) -> speed perturbation -> edge silence -> dither -> fbank; stored fbank
    (feature shards) skips the waveform steps. Then LFR -> CMVN (if any) -> SpecAugment. With `NO_AUGMENT`
    the result equals `Frontend(cfg, cmvn)(load_audio(path))`.
    """

    def __init__(
        self, cfg: FrontendConfig, cmvn: Cmvn | None, augment: AugmentConfig = NO_AUGMENT, seed: int = 0
    ) -> None:
        self.cfg = replace(cfg, dither=0.0)  # dither is ours (seeded), not kaldi-native-fbank's
        self.frontend = Frontend(self.cfg, cmvn)
        self.augment = augment
        self.seed = seed
        self._npz: OrderedDict[str, np.lib.npyio.NpzFile] = OrderedDict()
        self._warned = False

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_npz"] = OrderedDict()  # open files do not travel to worker processes
        return state

    def _stored_fbank(self, utt: Utterance, path: str) -> np.ndarray:
        npz = self._npz.get(path)
        if npz is None:
            npz = np.load(path)
            self._npz[path] = npz
            if len(self._npz) > NPZ_CACHE:
                self._npz.popitem(last=False)[1].close()
        if utt.key not in npz.files:
            raise AudioError(f"{utt.key}: not found in feature file {path}")
        return np.asarray(npz[utt.key], dtype=np.float32)

    def fbank(self, utt: Utterance, rng: np.random.Generator | None) -> np.ndarray:
        """[n, n_mels] fbank of the utterance (speed-perturbed and dithered when `rng` is given)."""
        a = self.augment
        if utt.fbank is not None:
            waveform_steps = a.dither or a.edge_silence_s or set(a.speed_factors) - {1.0}
            if rng is not None and not self._warned and waveform_steps:
                log.warning("stored fbank features: speed perturbation, edge silence and dither do not apply")
                self._warned = True
            return self._stored_fbank(utt, utt.fbank)
        if utt.audio is None:
            raise AudioError(f"{utt.key}: has neither audio nor fbank")
        samples = load_audio(utt.audio, self.cfg.sample_rate, name=utt.key)
        if rng is not None and a.speed_factors:
            factor = float(rng.choice(a.speed_factors))
            samples = speed_perturb(samples, factor, self.cfg.sample_rate)
        if rng is not None:
            samples = add_edge_silence(samples, a.edge_silence_s, a.edge_level_db, self.cfg.sample_rate, rng)
            samples = add_dither(samples, a.dither, rng)
        return compute_fbank(samples, self.cfg)

    def lfr(self, utt: Utterance, rng: np.random.Generator | None = None) -> np.ndarray:
        """LFR features before CMVN [T, feature_dim]."""
        fbank = self.fbank(utt, rng)
        if fbank.shape[0] == 0:
            raise AudioError(f"{utt.key}: audio too short for one feature frame")
        return apply_lfr(fbank, self.cfg.lfr_m, self.cfg.lfr_n)

    def __call__(self, utt: Utterance, epoch: int) -> np.ndarray:
        augmenting = self.augment != NO_AUGMENT
        rng = example_rng(self.seed, epoch, utt.key) if augmenting else None
        feats = self.frontend.normalize(self.lfr(utt, rng))
        if rng is not None and self.augment.specaug:
            feats = spec_augment_lfr(feats, self.cfg.n_mels, self.augment, rng)
        return feats


# --- CMVN ---------------------------------------------------------------------------------------------------


class _StatsDataset(torch.utils.data.Dataset):
    def __init__(self, utts: Sequence[Utterance], maker: FeatureMaker) -> None:
        self.utts, self.maker = list(utts), maker

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int):
        try:
            x = self.maker.lfr(self.utts[i]).astype(np.float64)
        except (AudioError, OSError, ValueError) as e:
            return str(e)
        return x.sum(0), (x * x).sum(0), x.shape[0]


def _identity(x):
    return x


def compute_cmvn(
    utts: Sequence[Utterance],
    cfg: FrontendConfig,
    max_utts: int | None = 2000,
    seed: int = 0,
    num_workers: int = 0,
) -> Cmvn:
    """Global mean/std of the LFR features of (a seeded random subset of at most `max_utts`) utterances."""
    if max_utts and len(utts) > max_utts:
        pick = np.random.default_rng(seed).choice(len(utts), size=max_utts, replace=False)
        utts = [utts[i] for i in sorted(pick)]
    dataset = _StatsDataset(utts, FeatureMaker(cfg, None))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=num_workers, collate_fn=_identity
    )
    dim = cfg.feature_dim
    total, squares, frames = np.zeros(dim), np.zeros(dim), 0
    for item in loader:
        if isinstance(item, str):
            log.warning("CMVN statistics: skipped %s", item)
            continue
        total += item[0]
        squares += item[1]
        frames += item[2]
    if frames == 0:
        raise ValueError("no readable training audio: cannot compute CMVN statistics")
    mean = total / frames
    std = np.sqrt(np.maximum(squares / frames - mean * mean, 1e-20))
    log.info("CMVN statistics from %d utterances, %d frames", len(utts), frames)
    return Cmvn(shift=(-mean).astype(np.float32), scale=(1.0 / std).astype(np.float32))


def write_cmvn(cmvn: Cmvn, path: str | Path) -> Path:
    """Write Kaldi nnet1 text (`<AddShift>` = -mean, `<Rescale>` = 1/std), the format of FunASR's am.mvn."""
    d = cmvn.dim

    def vec(v: np.ndarray) -> str:
        return " ".join(format(float(x), ".9g") for x in v)

    text = (
        f"<Nnet>\n<Splice> {d} {d}\n[ 0 ]\n"
        f"<AddShift> {d} {d}\n<LearnRateCoef> 0 [ {vec(cmvn.shift)} ]\n"
        f"<Rescale> {d} {d}\n<LearnRateCoef> 0 [ {vec(cmvn.scale)} ]\n</Nnet>\n"
    )
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


# --- feature shards -----------------------------------------------------------------------------------------


class _FbankDataset(_StatsDataset):
    def __getitem__(self, i: int):
        utt = self.utts[i]
        try:
            return utt, self.maker.fbank(utt, None)
        except (AudioError, OSError, ValueError) as e:
            return utt, str(e)


def dump_features(
    utts: Sequence[Utterance],
    out_dir: str | Path,
    cfg: FrontendConfig,
    shard_size: int = 1000,
    num_workers: int = 0,
) -> tuple[list[Path], list[DataIssue]]:
    """Write 80-dim fbank (no dither, no CMVN) as shards: ``shard_NNNNN.npz`` (one array per key) plus
    ``shard_NNNNN.jsonl`` (``{"key", "text", "fbank", "frames", "duration"}``). Returns (jsonl paths, issues).

    Training reads such a dir with ``--train DIR``; speed perturbation and dither do not apply to it.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size={shard_size} must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("shard_*.jsonl")):
        raise FileExistsError(f"{out} already holds shard_*.jsonl files; choose an empty directory")
    loader = torch.utils.data.DataLoader(
        _FbankDataset(utts, FeatureMaker(cfg, None)),
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_identity,
    )
    shards: list[Path] = []
    issues: list[DataIssue] = []
    arrays: dict[str, np.ndarray] = {}
    lines: list[str] = []

    def flush() -> None:
        name = f"shard_{len(shards):05d}"
        np.savez(out / f"{name}.npz", allow_pickle=False, **arrays)
        (out / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
        shards.append(out / f"{name}.jsonl")
        arrays.clear()
        lines.clear()

    for utt, fbank in loader:
        if isinstance(fbank, str):
            issues.append(DataIssue(utt.key, fbank))
            continue
        if fbank.shape[0] == 0:
            issues.append(DataIssue(utt.key, "audio too short for one feature frame"))
            continue
        arrays[utt.key] = fbank
        entry = {
            "key": utt.key,
            "text": utt.text,
            "fbank": f"shard_{len(shards):05d}.npz",
            "frames": cfg.num_lfr_frames(fbank.shape[0]),
            "duration": round(fbank.shape[0] * cfg.frame_shift_ms / 1000.0, 3),
        }
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
        if len(arrays) >= shard_size:
            flush()
    if arrays:
        flush()
    return shards, issues
