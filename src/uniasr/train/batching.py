"""Batches by `batch_bins`, length-sorted buckets, the two dataset types and DDP sharding.

* `batch_bins` bounds ``utterances x longest LFR length`` of a batch on one process (the padded size the
  decoder and cross-attention see; the block-wise encoders need no padding).
* `small`: the utterance index lives in memory; each epoch the utterances are shuffled (seeded), sorted by
  length rounded to `length_bucket` frames (so equal-length neighbours change between epochs), cut into
  batches and the batch order shuffled. Under DDP one *global* batch (bins x world) is split over the ranks
  by length, so a step sees the same utterances whatever the number of processes.
* `large`: shards (feature-shard jsonl files, or pieces of `shard_size` utterances of any other source) are
  shuffled per epoch, dealt to ranks and then to DataLoader workers, and streamed one at a time; batches are
  formed inside a shard. Each batch carries its logical worker id so the trainer can record and resume the
  exact position of every worker stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from uniasr.audio.errors import AudioError
from uniasr.decode.tokens import TokenTable
from uniasr.train.data import DataIssue, Utterance, check_utterances, drop_long, read_manifest, with_frames
from uniasr.train.features import FeatureMaker


@dataclass(frozen=True)
class BatchConfig:
    batch_bins: int = 4000
    max_utts: int | None = None
    length_bucket: int = 10
    max_frames: int | None = 3000

    def __post_init__(self) -> None:
        if self.batch_bins < 1 or self.length_bucket < 1:
            raise ValueError(
                f"batch_bins={self.batch_bins} and length_bucket={self.length_bucket} must be >= 1"
            )
        if self.max_utts is not None and self.max_utts < 1:
            raise ValueError(f"max_utts={self.max_utts} must be >= 1")


@dataclass
class Batch:
    """A batch on one process: features [T_i, F] (CMVN'd, augmented), token ids [L_i] (no sos/eos)."""

    keys: list[str]
    feats: list[torch.Tensor]
    targets: list[torch.Tensor]
    texts: list[str]
    skipped: list[DataIssue] = field(default_factory=list)
    worker: int = 0

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def num_tokens(self) -> int:
        """Decoder targets: len(y) + 1 (the </s>) per utterance."""
        return sum(int(t.shape[0]) + 1 for t in self.targets)

    def to(self, device: torch.device) -> Batch:
        self.feats = [f.to(device, non_blocking=True) for f in self.feats]
        self.targets = [t.to(device, non_blocking=True) for t in self.targets]
        return self


def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, stream])


def plan_batches(
    lengths: Sequence[int],
    batch_bins: int,
    max_utts: int | None = None,
    min_utts: int = 1,
    rng: np.random.Generator | None = None,
    length_bucket: int = 1,
) -> list[list[int]]:
    """Indices -> batches with ``len(batch) * max(length) <= batch_bins`` (a batch is never smaller than
    `min_utts` unless the data is; an over-long utterance goes alone). With `rng`, ties within a length
    bucket are broken at random and the batch order is shuffled; without, sorted by length, in order.
    """
    lens = np.asarray(lengths, dtype=np.int64)
    if rng is not None:
        perm = rng.permutation(len(lens))
        order = perm[np.argsort(lens[perm] // length_bucket, kind="stable")]
    else:
        order = np.argsort(lens, kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order.tolist():
        top = max(longest, int(lens[i]))
        full = (len(cur) + 1) * top > batch_bins or (max_utts is not None and len(cur) >= max_utts)
        if cur and len(cur) >= min_utts and full:
            batches.append(cur)
            cur, top = [], int(lens[i])
        cur.append(i)
        longest = top
    if cur:
        if len(cur) < min_utts and batches:
            batches[-1].extend(cur)
        else:
            batches.append(cur)
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def split_for_rank(batch: Sequence[int], lengths: Sequence[int], rank: int, world: int) -> list[int]:
    """This rank's part of a global batch: the utterances sorted by length, dealt round-robin."""
    ordered = sorted(batch, key=lambda i: (-lengths[i], i))
    return ordered[rank::world]


def small_epoch_plan(
    lengths: Sequence[int],
    cfg: BatchConfig,
    seed: int,
    epoch: int,
    rank: int,
    world: int,
    shuffle: bool = True,
) -> list[list[int]]:
    """This rank's batches (utterance indices) for one epoch of a `small` dataset."""
    if len(lengths) < world:
        raise ValueError(f"{len(lengths)} utterances cannot be split over {world} processes")
    rng = epoch_rng(seed, epoch) if shuffle else None
    max_utts = None if cfg.max_utts is None else cfg.max_utts * world
    batches = plan_batches(lengths, cfg.batch_bins * world, max_utts, world, rng, cfg.length_bucket)
    return [split_for_rank(b, lengths, rank, world) for b in batches]


# --- examples and collation ---------------------------------------------------------------------------------


@dataclass
class Example:
    key: str
    feats: np.ndarray
    ids: np.ndarray
    text: str


def make_example(
    utt: Utterance, epoch: int, maker: FeatureMaker, tokenizer: TokenTable
) -> Example | DataIssue:
    """Features and token ids of one utterance, or the reason it cannot be used."""
    try:
        feats = maker(utt, epoch)
    except (AudioError, OSError, ValueError) as e:
        return DataIssue(utt.key, f"cannot read audio/features: {e}")
    ids = np.asarray(tokenizer.encode(utt.text), dtype=np.int64)
    if ids.size == 0:
        return DataIssue(utt.key, "transcript has no tokens")
    return Example(utt.key, feats, ids, utt.text)


def collate(items: Sequence[Example | DataIssue]) -> Batch:
    good = [x for x in items if isinstance(x, Example)]
    return Batch(
        keys=[x.key for x in good],
        feats=[torch.from_numpy(np.ascontiguousarray(x.feats)) for x in good],
        targets=[torch.from_numpy(x.ids) for x in good],
        texts=[x.text for x in good],
        skipped=[x for x in items if isinstance(x, DataIssue)],
    )


def _identity(x):
    return x


class UtteranceDataset(Dataset):
    """Map-style dataset for `small`: item (epoch, index) -> Example or DataIssue."""

    def __init__(self, utts: Sequence[Utterance], maker: FeatureMaker, tokenizer: TokenTable) -> None:
        self.utts, self.maker, self.tokenizer = list(utts), maker, tokenizer

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def lengths(self) -> list[int]:
        return [int(u.frames or 0) for u in self.utts]

    def __getitem__(self, item: tuple[int, int]) -> Example | DataIssue:
        epoch, index = item
        return make_example(self.utts[index], epoch, self.maker, self.tokenizer)


def small_loader(
    dataset: UtteranceDataset, batches: Sequence[Sequence[int]], epoch: int, start: int, num_workers: int
) -> DataLoader:
    """DataLoader over `batches[start:]` (resuming skips batches without loading them)."""
    sampler = [[(epoch, i) for i in b] for b in batches[start:]]
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        generator=torch.Generator(),  # never draw from the global RNG (exact resume)
    )


# --- large: streamed shards ---------------------------------------------------------------------------------


Shard = Path | list[Utterance]


def _frames(u: Utterance) -> int:
    """The utterance's LFR frame count (`with_frames` fills it in)."""
    if u.frames is None:
        raise ValueError(f"{u.key}: frame count unknown")
    return u.frames


def virtual_shards(utts: Sequence[Utterance], shard_size: int) -> list[list[Utterance]]:
    """An in-memory source cut into shards of `shard_size` utterances."""
    return [list(utts[i : i + shard_size]) for i in range(0, len(utts), shard_size)]


@dataclass
class StreamPosition:
    """Batches consumed per logical worker in the current epoch, and the worker due next."""

    consumed: dict[int, int] = field(default_factory=dict)
    next_worker: int = 0

    def advance(self, worker: int, num_workers: int) -> None:
        self.consumed[worker] = self.consumed.get(worker, 0) + 1
        self.next_worker = (worker + 1) % max(num_workers, 1)


class ShardStream(IterableDataset):
    """`large`: yields whole Batches; shard order per epoch and the rank/worker deal are seeded."""

    def __init__(
        self,
        shards: Sequence[Shard],
        maker: FeatureMaker,
        tokenizer: TokenTable,
        cfg: BatchConfig,
        seed: int,
        epoch: int,
        rank: int = 0,
        world: int = 1,
        position: StreamPosition | None = None,
    ) -> None:
        self.shards, self.maker, self.tokenizer, self.cfg = list(shards), maker, tokenizer, cfg
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world
        self.position = position or StreamPosition()

    def worker_shards(self, logical: int, num_workers: int) -> list[tuple[int, Shard]]:
        order = epoch_rng(self.seed, self.epoch, 1).permutation(len(self.shards)).tolist()
        mine = order[self.rank :: self.world][logical::num_workers]
        return [(i, self.shards[i]) for i in mine]

    def _shard_utts(self, shard: Shard) -> tuple[list[Utterance], list[DataIssue]]:
        if isinstance(shard, Path):
            utts, issues = read_manifest(shard)
            utts, more = check_utterances(utts)
            issues += more
        else:
            utts, issues = list(shard), []
        utts, more = with_frames(utts, self.maker.cfg)
        issues += more
        utts, more = drop_long(utts, self.cfg.max_frames)
        return utts, issues + more

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        num_workers = info.num_workers if info else 1
        logical = ((info.id if info else 0) + self.position.next_worker) % num_workers
        skip = self.position.consumed.get(logical, 0)
        for index, shard in self.worker_shards(logical, num_workers):
            utts, pending = self._shard_utts(shard)
            rng = epoch_rng(self.seed, self.epoch, 1000 + index)
            plan = plan_batches(
                [_frames(u) for u in utts],
                self.cfg.batch_bins,
                self.cfg.max_utts,
                1,
                rng,
                self.cfg.length_bucket,
            )
            for batch in plan:
                if skip > 0:
                    skip -= 1
                    continue
                items = [make_example(utts[i], self.epoch, self.maker, self.tokenizer) for i in batch]
                out = collate(items)
                out.skipped = pending + out.skipped
                out.worker, pending = logical, []
                yield out


def stream_loader(stream: ShardStream, num_workers: int) -> DataLoader:
    return DataLoader(
        stream, batch_size=None, num_workers=num_workers, collate_fn=_identity, generator=torch.Generator()
    )
