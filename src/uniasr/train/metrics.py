"""Training metrics: normalising the summed loss statistics, metrics.jsonl and optional TensorBoard."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from uniasr.model.config import LossConfig
from uniasr.train.objective import STATS

log = logging.getLogger(__name__)


def summarize(stats: torch.Tensor, loss: LossConfig) -> dict[str, float]:
    """Summed STATS -> normalised losses (per target token, or per utterance) and accuracies."""
    s = dict(zip(STATS, stats.tolist()))
    denom = max(s["tokens"] if loss.length_normalized_loss else s["utts"], 1.0)
    out = {k: s[k] / denom for k in ("loss1", "kl1", "mae1", "loss2", "kl2", "mae2")}
    if s["ctc"]:
        out["ctc"] = s["ctc"] / denom  # the auxiliary CTC loss; not part of "loss"
    w1 = loss.loss_weight_model1
    out["loss"] = w1 * out["loss1"] + (1.0 - w1) * out["loss2"]
    out["acc1"] = s["correct1"] / max(s["tokens"], 1.0)
    out["acc2"] = s["correct2"] / max(s["tokens"], 1.0)
    out["tokens"], out["utts"] = int(s["tokens"]), int(s["utts"])
    return out


class MetricsSink:
    """Appends ``{"kind", "step", "epoch", "time", ...}`` lines to metrics.jsonl and scalars to TensorBoard
    (``exp_dir/tensorboard``, when the optional `tensorboard` package is installed). Only rank 0 writes.

    ``resumed_step``: a resumed run first drops the lines of the run before it that came after its
    checkpoint (a run killed after logging steps it never saved), and a line is never written twice for
    the same kind and step, so metrics.jsonl holds each step once.
    """

    def __init__(
        self, exp_dir: Path, enabled: bool, tensorboard: bool, resumed_step: int | None = None
    ) -> None:
        self.enabled = enabled
        self.path = Path(exp_dir) / "metrics.jsonl"
        self.writer = None
        self.written: set[tuple[str, int]] = set()
        if enabled and resumed_step is not None:
            self.written = keep_up_to(self.path, resumed_step)
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed: no TensorBoard scalars (pip install tensorboard)")
            else:
                self.writer = SummaryWriter(str(Path(exp_dir) / "tensorboard"))

    def write(self, kind: str, step: int, epoch: int, values: dict) -> None:
        if not self.enabled or (kind, step) in self.written:
            return
        self.written.add((kind, step))
        record = {"kind": kind, "step": step, "epoch": epoch + 1, "time": round(time.time(), 3), **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def keep_up_to(path: Path, step: int) -> set[tuple[str, int]]:
    """Rewrite metrics.jsonl (atomically) without lines after `step` or lines cut short by a kill;
    returns the (kind, step) pairs kept."""
    if not path.exists():
        return set()
    kept, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            key = (str(record["kind"]), int(record["step"]))
        except (ValueError, KeyError, TypeError):
            continue
        if key[1] <= step and key not in seen:
            kept.append(line + "\n")
            seen.add(key)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
    return seen
