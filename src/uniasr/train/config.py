"""Training options (`TrainConfig`) and where the model comes from (YAML + overrides, or `--init DIR`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from uniasr.decode.tokens import build_token_list
from uniasr.funasr.model_config import parse_config
from uniasr.funasr.model_dir import read_model_dir, read_token_list
from uniasr.funasr.train_yaml import training_yaml
from uniasr.model.config import UniASRConfig
from uniasr.train.augment import AugmentConfig
from uniasr.train.batching import BatchConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. Paths are strings; see `uniasr train --help` for each option.

    train/dev: a data dir (wav.scp + text), a .jsonl manifest or a feature-shard dir. config: FunASR 1.x
    config.yaml for training from scratch; init: a FunASR / ModelScope model dir to fine-tune (its tokens,
    CMVN and weights); overrides: ``dotted.key=value`` edits of the YAML (value parsed as YAML).
    batch_bins is per process; lr is the peak of the warm-up schedule (reached at `warmup_steps`).
    """

    exp_dir: str
    train: str
    dev: str | None = None
    config: str | None = None
    init: str | None = None
    overrides: tuple[str, ...] = ()
    tokens: str | None = None
    min_token_count: int = 1
    cmvn: str | None = None
    cmvn_utts: int = 2000
    dataset_type: str = "small"
    shard_size: int = 1000
    num_workers: int = 0
    batch: BatchConfig = field(default_factory=BatchConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_epochs: int = 20
    max_steps: int | None = None
    lr: float = 1e-4
    warmup_steps: int = 30000
    grad_clip: float = 5.0
    weight_decay: float = 0.0
    accum_grad: int = 1
    amp: str = "auto"
    device: str = "auto"
    seed: int = 0
    keep_checkpoints: int = 3
    save_every_steps: int | None = None
    avg_best: int = 5
    patience: int | None = None
    log_every: int = 50
    tensorboard: bool = True
    dev_mode: str = "normal"
    dev_cer: bool = True
    dev_cer_max_utts: int | None = None
    freeze_pass1: bool = False
    freeze_encoder2: bool = False
    ctc_weight: float = 0.0  # auxiliary CTC loss on encoder 1 (a training aid; not saved in the model)
    on_bad_data: str = "skip"
    resume: str | None = None

    def __post_init__(self) -> None:
        checks = {
            "dataset_type": (self.dataset_type, ("small", "large")),
            "amp": (self.amp, ("auto", "bf16", "none")),
            "on_bad_data": (self.on_bad_data, ("skip", "error")),
            "dev_mode": (self.dev_mode, ("fast", "normal", "offline")),
        }
        for name, (value, valid) in checks.items():
            if value not in valid:
                raise ValueError(f"{name}={value!r}; valid: {', '.join(valid)}")
        if self.config is None and self.init is None:
            raise ValueError("give --config YAML (train from scratch) or --init MODEL_DIR (fine-tune)")
        for name in ("max_epochs", "accum_grad", "shard_size", "log_every", "cmvn_utts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError(f"lr={self.lr} must be > 0, warmup_steps and grad_clip >= 0")


# --- the model's configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """The model to train: architecture, tokens, CMVN file (None: compute it) and starting weights."""

    config: UniASRConfig
    raw: dict
    tokens: list[str]
    cmvn_path: Path | None
    init_checkpoint: Path | None


def model_source(cfg: TrainConfig, train_texts: Iterable[str]) -> ModelSource:
    """From `--init DIR` (its tokens, CMVN, weights) or `--config YAML` (+ a token list built from the
    training transcripts unless `--tokens` gives one); `--override` edits apply in both cases."""
    md = read_model_dir(cfg.init) if cfg.init is not None else None
    raw = training_yaml(cfg.config, cfg.init, cfg.overrides)
    if md is not None:
        tokens = list(md.tokens)
        cmvn = Path(cfg.cmvn) if cfg.cmvn else md.cmvn_path
        return ModelSource(parse_config(raw, len(tokens)), raw, tokens, cmvn, md.checkpoint_path)
    tokens = read_token_list(cfg.tokens) if cfg.tokens else build_token_list(train_texts, cfg.min_token_count)
    config = parse_config(raw, len(tokens))
    return ModelSource(config, raw, tokens, Path(cfg.cmvn) if cfg.cmvn else None, None)
