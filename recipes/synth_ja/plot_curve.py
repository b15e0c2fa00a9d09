"""Plot a training run's curve from its metrics.jsonl files: train loss per logging window, dev loss and
dev CER per epoch. Several files are stages of one run (e.g. from scratch, then `--init` from its model):
their steps and epochs continue one another and a dotted line marks where each stage starts.

    python -m recipes.synth_ja.plot_curve exp/default/metrics.jsonl exp/default_ft/metrics.jsonl \
        --out docs/default_model_training.png

Needs matplotlib (the `train` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """-> (train records, dev records) of a metrics.jsonl, in file order."""
    train, dev = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("kind") == "train" and "loss" in rec:
            train.append(rec)
        elif rec.get("kind") == "dev" and "dev_loss" in rec:
            dev.append(rec)
    if not train:
        raise ValueError(f"{path}: no training records")
    return train, dev


def join_stages(
    paths: list[Path], step0: int = 0, epoch0: int = 0
) -> tuple[list[dict], list[dict], list[int]]:
    """Stages -> (train records, dev records, first step of each stage after the first), with each stage's
    steps and epochs shifted to follow the previous stage's last ones (the first stage's by step0/epoch0)."""
    train, dev, starts = [], [], []
    for i, path in enumerate(paths):
        t, d = read_metrics(path)
        if i:
            starts.append(step0)
        train += [{**r, "step": r["step"] + step0, "epoch": r["epoch"] + epoch0} for r in t]
        dev += [{**r, "step": r["step"] + step0, "epoch": r["epoch"] + epoch0} for r in d]
        step0 = train[-1]["step"]
        epoch0 = max(r["epoch"] for r in train)
    return train, dev, starts


def plot(stages: list[Path], out: Path, title: str, step0: int = 0, epoch0: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, dev, starts = join_stages(stages, step0, epoch0)
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    ax_loss.plot(steps, [r["loss1"] for r in train], lw=0.8, label="train pass 1")
    ax_loss.plot(steps, [r["loss2"] for r in train], lw=0.8, label="train pass 2")
    if dev:
        ax_loss.plot([r["step"] for r in dev], [r["dev_loss"] for r in dev], "o-", label="dev (both passes)")
    for s in starts:
        ax_loss.axvline(s, color="grey", ls=":", lw=1)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss per token (KL + CIF count)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    with_cer = [r for r in dev if "dev_cer" in r]
    ax_cer.plot([r["epoch"] for r in with_cer], [100 * r["dev_cer"] for r in with_cer], "o-", color="C3")
    ax_cer.set_xlabel("epoch")
    ax_cer.set_ylabel("dev CER % (normal mode, greedy)")
    ax_cer.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", type=Path, nargs="+", help="each stage's metrics.jsonl, in order")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--first-step", type=int, default=0, help="steps done before the first file's (x offset)")
    p.add_argument("--first-epoch", type=int, default=0, help="epochs done before the first file's")
    p.add_argument("--title", default="uniasr default model: training on the synthetic Japanese corpus")
    args = p.parse_args(argv)
    print(plot(args.metrics, args.out, args.title, args.first_step, args.first_epoch))


if __name__ == "__main__":
    main()
