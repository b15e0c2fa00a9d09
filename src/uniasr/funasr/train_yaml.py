"""The training side of a FunASR config.yaml: `--override` edits of the mapping, and the TrainConfig values
its optim_conf / scheduler_conf / train_conf / specaug_conf sections carry, under our field names."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from uniasr.funasr.files import read_yaml
from uniasr.funasr.model_dir import read_config_yaml


def training_yaml(config: str | Path | None, init: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    """The config.yaml mapping a run trains: `--init` dir's (fine-tuning) else `--config`'s (from scratch),
    with the `--override` edits applied."""
    if init is not None:
        raw = read_config_yaml(init)
    elif config is not None:
        raw = read_yaml(config)
    else:
        raise ValueError("give --config YAML (train from scratch) or --init MODEL_DIR (fine-tune)")
    return apply_overrides(raw, overrides)


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    """``encoder_conf.num_blocks=12`` style edits (values parsed as YAML) -> a new mapping."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected dotted.key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ValueError(f"override {item!r}: {part!r} is not a mapping")
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: bad value ({e})") from e
    return out


def yaml_training_defaults(raw: dict) -> dict[str, Any]:
    """TrainConfig values a FunASR 1.x config.yaml carries (optim/scheduler/train/specaug sections)."""
    out: dict[str, Any] = {}
    optim = raw.get("optim_conf") or {}
    sched = raw.get("scheduler_conf") or {}
    train = raw.get("train_conf") or {}
    if "lr" in optim:
        out["lr"] = float(optim["lr"])
    if "weight_decay" in optim:
        out["weight_decay"] = float(optim["weight_decay"])
    if "warmup_steps" in sched:
        out["warmup_steps"] = int(sched["warmup_steps"])
    for ours, theirs, kind in (
        ("max_epochs", "max_epoch", int),
        ("grad_clip", "grad_clip", float),
        ("accum_grad", "accum_grad", int),
        ("keep_checkpoints", "keep_nbest_models", int),
        ("avg_best", "avg_nbest_model", int),
    ):
        if theirs in train:
            out[ours] = kind(train[theirs])
    spec = raw.get("specaug_conf")
    if isinstance(spec, dict):
        out["specaug"] = {
            "freq_mask_width": tuple(int(v) for v in spec.get("freq_mask_width_range", (0, 30))),
            "num_freq_masks": int(spec.get("num_freq_mask", 1)) if spec.get("apply_freq_mask", True) else 0,
            "time_mask_width": tuple(int(v) for v in spec.get("time_mask_width_range", (0, 12))),
            "num_time_masks": int(spec.get("num_time_mask", 1)) if spec.get("apply_time_mask", True) else 0,
        }
    return out
