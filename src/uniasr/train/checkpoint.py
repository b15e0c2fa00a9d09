"""Training checkpoints (exact resume), keeping the latest N, and averaging the best N models.

Layout under ``exp_dir/checkpoints``: ``ckpt_stepNNNNNNNN.pt`` (model, optimiser, scheduler, trainer state,
every rank's RNG states) and ``model_stepNNNNNNNN.pt`` (model weights at an epoch end, candidates for
averaging). Files are written to a temporary name and renamed: an interrupted save leaves no broken file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from uniasr.funasr.files import torch_load_problem

log = logging.getLogger(__name__)

_CKPT = re.compile(r"ckpt_step(\d+)\.pt$")


def checkpoint_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / "checkpoints"


def checkpoint_path(exp_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(exp_dir) / f"ckpt_step{step:08d}.pt"


def snapshot_path(exp_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(exp_dir) / f"model_step{step:08d}.pt"


def atomic_save(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def list_checkpoints(exp_dir: str | Path) -> list[Path]:
    """Checkpoints, oldest (lowest step) first."""
    found = []
    for p in checkpoint_dir(exp_dir).glob("ckpt_step*.pt"):
        m = _CKPT.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(exp_dir: str | Path) -> Path | None:
    found = list_checkpoints(exp_dir)
    return found[-1] if found else None


def prune_checkpoints(exp_dir: str | Path, keep: int) -> None:
    """Delete all but the `keep` newest checkpoints (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for old in list_checkpoints(exp_dir)[:-keep]:
        old.unlink(missing_ok=True)


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "state", "rng")


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint; ValueError naming the file and what is wrong (missing, unreadable or
    truncated, not a uniasr checkpoint, or without the model / optimiser / scheduler / state / RNG)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ValueError(f"cannot read checkpoint {path}: {torch_load_problem(e)}") from e
    if not isinstance(payload, dict) or payload.get("format") != "uniasr-train-1":
        raise ValueError(f"{path} is not a uniasr training checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(payload.get(k), (dict, list))]
    if missing:
        raise ValueError(
            f"checkpoint {path} has no {', '.join(missing)} (a uniasr checkpoint holds "
            f"{', '.join(CHECKPOINT_KEYS)}); it was not written by `uniasr train`, or was damaged"
        )
    return payload


def latest_loadable(exp_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, with its payload; broken newer ones (e.g. a file cut short by a
    full disk or a copy) are skipped with a warning naming them. None when there are no checkpoints;
    ValueError when none of them loads."""
    found = list_checkpoints(exp_dir)
    problems = []
    for path in reversed(found):
        try:
            payload = load_checkpoint(path)
        except ValueError as e:
            log.warning("skipping checkpoint %s: %s", path.name, e)
            problems.append(str(e))
            continue
        if problems:
            log.warning("resuming from %s, the newest checkpoint that loads", path)
        return path, payload
    if problems:
        raise ValueError(f"no checkpoint in {checkpoint_dir(exp_dir)} loads: " + "; ".join(problems))
    return None


def rng_state() -> dict[str, Any]:
    """This process's torch RNG states (CPU and, if used, the current CUDA device)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def average_states(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights in snapshot files (float tensors; others from the last)."""
    if not paths:
        raise ValueError("no model snapshots to average")
    total: dict[str, torch.Tensor] = {}
    for p in paths:
        state = torch.load(p, map_location="cpu", weights_only=True)["model"]
        for k, v in state.items():
            if v.is_floating_point():
                total[k] = total[k] + v.double() if k in total else v.double()
            else:
                total[k] = v
    n = len(paths)
    return {k: (v / n).float() if v.is_floating_point() else v for k, v in total.items()}
