"""Before the first step: read and check the data, fix tokens, model config and CMVN, write them to exp_dir.

Rank 0 does the work (reading, header probes, CMVN statistics) and hands the result to the other ranks.
A resumed run reuses exp_dir's tokens.json, model_config.yaml and am.mvn, so it trains the same model.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uniasr.audio.features import Cmvn
from uniasr.decode.tokens import TokenTable, check_token_list
from uniasr.funasr.files import read_yaml
from uniasr.funasr.model_config import parse_config, write_config_yaml
from uniasr.funasr.model_dir import DECODING_FILE, read_token_list, write_token_list
from uniasr.model.config import UniASRConfig
from uniasr.train.batching import Shard, virtual_shards
from uniasr.train.config import TrainConfig, model_source
from uniasr.train.data import (
    DataIssue,
    Utterance,
    check_utterances,
    drop_long,
    handle_issues,
    read_manifest,
    read_source,
    shard_files,
    with_frames,
)
from uniasr.train.distributed import DistInfo, broadcast_object
from uniasr.train.features import compute_cmvn, write_cmvn

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    config: UniASRConfig
    tokens: list[str]
    cmvn_path: Path  # exp_dir/am.mvn (written by rank 0)
    cmvn: Cmvn  # its contents, so ranks on other nodes need not read the file
    init_checkpoint: Path | None
    train: list[Utterance] | None  # small: with `frames`; large: None (see shards)
    shards: list[Shard] | None
    dev: list[Utterance] | None


def prepare(cfg: TrainConfig, exp: Path, info: DistInfo, resuming: bool) -> PreparedData:
    """Rank 0 prepares, every rank gets the result (an error on rank 0 is raised on every rank)."""
    result: PreparedData | str | None = None
    if info.is_main:
        try:
            result = _prepare(cfg, exp, resuming)
        except (ValueError, OSError) as e:
            if not info.enabled:
                raise
            result = f"{type(e).__name__}: {e}"
    result = broadcast_object(result, info)
    if isinstance(result, str):
        raise ValueError(result)
    return result


def _checked(issues: list[DataIssue], cfg: TrainConfig, exp: Path, where: str) -> None:
    if issues:
        with open(exp / "bad_data.txt", "a", encoding="utf-8") as f:
            f.writelines(f"{where}\t{i}\n" for i in issues)
    handle_issues(issues, cfg.on_bad_data, where)


def _read(source: str) -> tuple[list[Utterance], list[DataIssue]]:
    utts, issues = read_source(source)
    utts, more = check_utterances(utts)
    return utts, issues + more


def _frames(
    utts: list[Utterance],
    issues: list[DataIssue],
    config: UniASRConfig,
    cfg: TrainConfig,
    exp: Path,
    where: str,
) -> list[Utterance]:
    """Lengths from durations/headers, then one report of every issue found in this split."""
    utts, more = with_frames(utts, config.frontend)
    issues = issues + more
    utts, more = drop_long(utts, cfg.batch.max_frames)
    _checked(issues + more, cfg, exp, where)
    if not utts:
        raise ValueError(f"{where}: no usable utterances")
    return utts


def _shard_texts(shards: list[Path]) -> Iterator[str]:
    for shard in shards:
        for utt in read_manifest(shard)[0]:
            yield utt.text


def _cmvn_utts(cfg: TrainConfig, train: list[Utterance] | None, shards: list[Path] | None) -> list[Utterance]:
    if train is not None:
        return train
    if shards is None:
        raise ValueError("no training utterances or shards to compute CMVN from")
    order = np.random.default_rng(cfg.seed).permutation(len(shards))
    picked: list[Utterance] = []
    for i in order:
        picked += check_utterances(read_manifest(shards[i])[0])[0]
        if len(picked) >= cfg.cmvn_utts:
            break
    return picked


def _warn_unknown(utts: list[Utterance], tokens: list[str]) -> None:
    tok = TokenTable(tokens)
    unknown = Counter(u for utt in utts for u in tok.unknown(utt.text))
    if unknown:
        top = ", ".join(f"{c!r}x{n}" for c, n in unknown.most_common(10))
        log.warning(
            "%d transcript characters are not in the token list and train as <unk>: %s",
            sum(unknown.values()),
            top,
        )


def _keep_decoding(cfg: TrainConfig, exp: Path) -> None:
    """A fine-tuned model decodes as the model it started from: keep `--init`'s decoding.yaml (beam, token
    count relax, kana conversion) in exp_dir; the trainer copies it into the final model dir."""
    if cfg.init is not None and (Path(cfg.init) / DECODING_FILE).is_file():
        shutil.copyfile(Path(cfg.init) / DECODING_FILE, exp / DECODING_FILE)


def _prepare(cfg: TrainConfig, exp: Path, resuming: bool) -> PreparedData:
    stored = shard_files(cfg.train) if cfg.dataset_type == "large" else None
    train: list[Utterance] | None = None
    issues: list[DataIssue] = []
    texts: Iterable[str]
    if stored is not None:
        texts = _shard_texts(stored)
    else:
        train, issues = _read(cfg.train)
        texts = (u.text for u in train)
    where = f"training data {cfg.train}"
    init_checkpoint = None
    if resuming and (exp / "tokens.json").is_file() and (exp / "model_config.yaml").is_file():
        tokens = read_token_list(exp / "tokens.json")
        config = parse_config(read_yaml(exp / "model_config.yaml"), len(tokens))
        cmvn_source = None
    else:
        src = model_source(cfg, texts)
        tokens, config, init_checkpoint, cmvn_source = (
            src.tokens,
            src.config,
            src.init_checkpoint,
            src.cmvn_path,
        )
        check_token_list(tokens, "the token list")
        write_token_list(tokens, exp / "tokens.json")
        _keep_decoding(cfg, exp)
        write_config_yaml(config, exp / "model_config.yaml")
    if train is not None:
        _warn_unknown(train, tokens)
        if cfg.dataset_type == "small":
            train = _frames(train, issues, config, cfg, exp, where)
        else:
            _checked(issues, cfg, exp, where)
    cmvn_path = exp / "am.mvn"
    if cmvn_source is not None and not (resuming and cmvn_path.is_file()):
        shutil.copyfile(cmvn_source, cmvn_path)
    elif not cmvn_path.is_file():
        utts = _cmvn_utts(cfg, train, stored)
        write_cmvn(compute_cmvn(utts, config.frontend, cfg.cmvn_utts, cfg.seed, cfg.num_workers), cmvn_path)
    dev = None
    if cfg.dev:
        dev = _frames(*_read(cfg.dev), config, cfg, exp, f"dev data {cfg.dev}")
    shards: list[Shard] | None = None
    if cfg.dataset_type == "large":
        if stored is not None:
            shards = list(stored)
        elif train is not None:
            shards = list(virtual_shards(train, cfg.shard_size))
        train = None
    log.info(
        "data: %s training utterances%s, %d dev utterances; %d tokens",
        len(train) if train is not None else "streamed",
        f" in {len(shards)} shards" if shards is not None else "",
        len(dev or []),
        len(tokens),
    )
    cmvn = Cmvn.from_file(cmvn_path)
    return PreparedData(config, tokens, cmvn_path, cmvn, init_checkpoint, train, shards, dev)
