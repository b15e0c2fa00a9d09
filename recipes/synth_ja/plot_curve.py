"""Plot a training run's curve from its metrics.jsonl: train loss per logging window, dev loss and dev CER
per epoch.

    python -m recipes.synth_ja.plot_curve exp/default/metrics.jsonl docs/default_model_training.png

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


def plot(metrics: Path, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, dev = read_metrics(metrics)
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    ax_loss.plot(steps, [r["loss1"] for r in train], lw=0.8, label="train pass 1")
    ax_loss.plot(steps, [r["loss2"] for r in train], lw=0.8, label="train pass 2")
    if dev:
        ax_loss.plot([r["step"] for r in dev], [r["dev_loss"] for r in dev], "o-", label="dev (both passes)")
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
    p.add_argument("metrics", type=Path, help="metrics.jsonl of a `uniasr train` run")
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--title", default="uniasr default model: training on the synthetic Japanese corpus")
    args = p.parse_args(argv)
    print(plot(args.metrics, args.out, args.title))


if __name__ == "__main__":
    main()
