"""`uniasr train` and `uniasr eval`: argument parsers and runners (wired into `uniasr.cli` by the lead).

Also runnable on its own: ``python -m uniasr.train train ...`` / ``python -m uniasr.train eval ...``, which is
what ``torchrun --nproc_per_node N -m uniasr.train train ...`` starts.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data-dir", help="dir with train/ and dev/ (or validation/) splits (wav.scp+text or .jsonl)"
    )
    g.add_argument("--train", help="training data: wav.scp+text dir, .jsonl manifest or feature-shard dir")
    g.add_argument("--dev", help="validation data (same kinds as --train)")
    g.add_argument(
        "--dataset-type",
        choices=["small", "large"],
        default="small",
        help="small: index in memory; large: shards streamed from disk",
    )
    g.add_argument(
        "--shard-size", type=int, default=1000, help="utterances per shard (large, --dump-features)"
    )
    g.add_argument("--num-workers", type=int, default=2, help="DataLoader worker processes")
    g.add_argument(
        "--batch-bins",
        type=int,
        default=None,
        help="per process: utterances x longest LFR frames in a batch (default 4000)",
    )
    g.add_argument("--max-batch-utts", type=int, default=None, help="at most this many utterances per batch")
    g.add_argument(
        "--max-frames", type=int, default=3000, help="skip utterances longer than this (LFR frames)"
    )
    g.add_argument(
        "--on-bad-data",
        choices=["skip", "error"],
        default="skip",
        help="bad entries (missing audio, no text, unreadable): train without them or stop",
    )
    g.add_argument(
        "--dump-features",
        metavar="OUT_DIR",
        help="write fbank shards of --train/--dev to OUT_DIR/{train,dev} and exit",
    )
    g = p.add_argument_group("model")
    g.add_argument("--config", help="FunASR 1.x config.yaml to train from scratch")
    g.add_argument("--init", metavar="MODEL_DIR", help="fine-tune a FunASR / ModelScope model dir")
    g.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="edit the config, e.g. encoder_conf.num_blocks=12 (repeatable)",
    )
    g.add_argument("--tokens", help="token list (tokens.json or one per line); default: built from --train")
    g.add_argument("--min-token-count", type=int, default=1, help="rarer characters become <unk>")
    g.add_argument("--cmvn", help="am.mvn to use (default: computed from the training data)")
    g.add_argument("--cmvn-utts", type=int, default=2000, help="utterances used for CMVN statistics")
    g.add_argument("--freeze-pass1", action="store_true", help="train only the second pass")
    g.add_argument("--freeze-encoder2", action="store_true", help="keep the stride conv and encoder 2 fixed")
    g.add_argument(
        "--ctc-weight", type=float, default=0.0,
        help="auxiliary CTC loss on encoder 1 (speeds up training from scratch; the head is not saved)",
    )  # fmt: skip
    g = p.add_argument_group("optimisation")
    g.add_argument("--exp-dir", required=False, help="output dir (checkpoints, logs, final model/)")
    for flag, kind, text in (
        ("--max-epochs", int, "epochs (default 20)"),
        ("--lr", float, "peak learning rate (default 1e-4)"),
        ("--warmup-steps", int, "warm-up steps (default 30000; 1000 with --init)"),
        ("--grad-clip", float, "gradient norm clip (default 5; 0 = off)"),
        ("--accum-grad", int, "micro-batches per update (default 1)"),
        ("--weight-decay", float, "Adam weight decay (default 0)"),
        ("--keep-checkpoints", int, "checkpoints kept (default 3)"),
        ("--avg-best", int, "average the best N epoch models by dev loss into model/ (default 5)"),
    ):
        g.add_argument(
            flag, type=kind, default=None, help=text + "; a value in --config wins over the default"
        )
    g.add_argument("--max-steps", type=int, default=None, help="stop after this many updates")
    g.add_argument("--save-every-steps", type=int, default=None, help="also checkpoint every N updates")
    g.add_argument(
        "--patience", type=int, default=None, help="early stopping: epochs without dev improvement"
    )
    g.add_argument("--amp", choices=["auto", "bf16", "none"], default="auto", help="auto: bf16 on a GPU")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CHECKPOINT",
        help="continue exp-dir's latest checkpoint (or the given one)",
    )
    g = p.add_argument_group("augmentation and monitoring")
    g.add_argument("--no-speed-perturb", action="store_true", help="no 0.9/1.0/1.1 speed perturbation")
    g.add_argument("--no-specaug", action="store_true", help="no SpecAugment")
    g.add_argument(
        "--edge-silence",
        type=float,
        default=0.0,
        metavar="S",
        help="add up to S s of quiet noise (-90..-50 dBFS) before and after each utterance (0 = off)",
    )
    g.add_argument("--dither", type=float, default=1.0, help="waveform dither (16-bit units; 0 = off)")
    g.add_argument("--log-every", type=int, default=50, help="log and write metrics every N updates")
    g.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard scalars")
    g.add_argument(
        "--dev-mode",
        choices=["fast", "normal", "offline"],
        default="normal",
        help="decoding mode (and chunk config) for dev loss and CER",
    )
    g.add_argument("--no-dev-cer", action="store_true", help="skip greedy decoding of the dev set")
    g.add_argument("--dev-cer-max-utts", type=int, default=None, help="decode at most N dev utterances")


def _pick(flag, yaml_defaults: dict, name: str, default):
    if flag is not None:
        return flag
    return yaml_defaults.get(name, default)


def train_config_from_args(args: argparse.Namespace):
    """Namespace -> TrainConfig: flags, else the --config YAML's train sections, else defaults."""
    from uniasr.funasr.files import read_yaml
    from uniasr.funasr.train_yaml import yaml_training_defaults
    from uniasr.train.augment import AugmentConfig
    from uniasr.train.batching import BatchConfig
    from uniasr.train.config import TrainConfig
    from uniasr.train.data import find_splits

    train, dev = args.train, args.dev
    if args.data_dir:
        found_train, found_dev = find_splits(args.data_dir)
        train, dev = train or str(found_train), dev or (str(found_dev) if found_dev else None)
    if not train:
        raise ValueError("give --data-dir DIR (with train/ and dev/) or --train SOURCE")
    if not args.exp_dir and not args.dump_features:
        raise ValueError("--exp-dir is required")
    # training settings may come from --config; a fine-tuned model's own schedule is not reused
    found = yaml_training_defaults(read_yaml(args.config)) if args.config else {}
    spec = found.pop("specaug", {}) if not args.no_specaug else {}
    augment = AugmentConfig(
        speed_factors=() if args.no_speed_perturb else (0.9, 1.0, 1.1),
        dither=args.dither,
        edge_silence_s=args.edge_silence,
        specaug=not args.no_specaug,
        **spec,
    )
    batch = BatchConfig(
        batch_bins=args.batch_bins or 4000, max_utts=args.max_batch_utts, max_frames=args.max_frames or None
    )
    return TrainConfig(
        exp_dir=args.exp_dir or args.dump_features, train=train, dev=dev, config=args.config, init=args.init,
        overrides=tuple(args.override), tokens=args.tokens, min_token_count=args.min_token_count,
        cmvn=args.cmvn, cmvn_utts=args.cmvn_utts, dataset_type=args.dataset_type, shard_size=args.shard_size,
        num_workers=args.num_workers, batch=batch, augment=augment,
        max_epochs=_pick(args.max_epochs, found, "max_epochs", 20),
        max_steps=args.max_steps,
        lr=_pick(args.lr, found, "lr", 1e-4),
        warmup_steps=_pick(args.warmup_steps, found, "warmup_steps", 1000 if args.init else 30000),
        grad_clip=_pick(args.grad_clip, found, "grad_clip", 5.0),
        weight_decay=_pick(args.weight_decay, found, "weight_decay", 0.0),
        accum_grad=_pick(args.accum_grad, found, "accum_grad", 1),
        amp=args.amp, device=args.device, seed=args.seed,
        keep_checkpoints=_pick(args.keep_checkpoints, found, "keep_checkpoints", 3),
        save_every_steps=args.save_every_steps,
        avg_best=_pick(args.avg_best, found, "avg_best", 5),
        patience=args.patience, log_every=args.log_every, tensorboard=not args.no_tensorboard,
        dev_mode=args.dev_mode, dev_cer=not args.no_dev_cer, dev_cer_max_utts=args.dev_cer_max_utts,
        freeze_pass1=args.freeze_pass1, freeze_encoder2=args.freeze_encoder2, on_bad_data=args.on_bad_data,
        ctc_weight=args.ctc_weight, resume=args.resume,
    )  # fmt: skip


def _dump(args: argparse.Namespace, cfg) -> int:
    from uniasr.funasr.model_config import parse_config
    from uniasr.funasr.train_yaml import training_yaml
    from uniasr.train.data import check_utterances, handle_issues, read_source
    from uniasr.train.features import dump_features

    frontend = parse_config(training_yaml(cfg.config, cfg.init, cfg.overrides), 4).frontend
    for name, source in (("train", cfg.train), ("dev", cfg.dev)):
        if not source:
            continue
        utts, issues = read_source(source)
        utts, more = check_utterances(utts)
        issues += more
        handle_issues(issues, cfg.on_bad_data, f"{name} data {source}")
        out = Path(args.dump_features) / name
        shards, bad = dump_features(utts, out, frontend, cfg.shard_size, cfg.num_workers)
        handle_issues(bad, cfg.on_bad_data, f"{name} data {source}")
        log.info("%s: %d utterances in %d shards under %s", name, len(utts) - len(bad), len(shards), out)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from uniasr.extras import require_extra

    require_extra("train", "uniasr train")
    from uniasr.train.trainer import train

    cfg = train_config_from_args(args)
    if args.dump_features:
        return _dump(args, cfg)
    result = train(cfg)
    if result.model_dir is not None:
        print(result.model_dir, flush=True)
    return 0


# --- uniasr eval --------------------------------------------------------------------------------------------


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ref", help="reference: Kaldi text file, a data dir (its text) or a .jsonl manifest")
    p.add_argument(
        "--hyp", help="hypothesis text file (key transcript); without it --model decodes --ref's audio"
    )
    p.add_argument("--model", help="model dir to decode with (default: the bundled model)")
    p.add_argument("--mode", choices=["fast", "normal", "offline"], default=None, help="decoding mode")
    p.add_argument("--beam", type=int, default=None, help="beam width (1 = greedy)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-seconds", type=float, default=120.0, help="audio per decoding batch")
    p.add_argument("--output-dir", help="also write the decoding to OUTPUT_DIR/1best_recog/")
    p.add_argument("--keep-punctuation", action="store_true", help="score punctuation too")
    p.add_argument("--keep-spaces", action="store_true", help="score spaces too")
    p.add_argument("--no-nfkc", action="store_true", help="skip Unicode NFKC normalisation")
    p.add_argument("--kana", action="store_true", help="compare katakana readings (pyopenjtalk if installed)")
    p.add_argument(
        "--ref-reading",
        help="also score the model's own output (Result.kana) against these readings (a Kaldi text file, "
        "a data dir or a manifest), e.g. the orthographic kana of the default model's corpus",
    )
    p.add_argument(
        "--text", choices=["auto", "written", "kana"], default="auto", help="what is scored against --ref"
    )
    p.add_argument("--worst", type=int, default=10, help="list the N worst utterances")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    from uniasr.cli import add_context_args

    add_context_args(p)


def _references(path: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """-> (key -> reference text, [(key, audio)]) of a text file, a data dir or a manifest."""
    from uniasr.cer import read_text_file
    from uniasr.train.data import read_source

    p = Path(path)
    if p.is_file() and p.suffix not in (".jsonl", ".json"):
        return read_text_file(p), []
    utts, issues = read_source(p)
    for issue in issues:
        log.warning("reference: %s", issue)
    return {u.key: u.text for u in utts}, [(u.key, u.audio) for u in utts if u.audio is not None]


def run_eval(args: argparse.Namespace) -> int:
    from uniasr.cer import NormalizeOptions, read_text_file, score_texts

    if not args.ref:
        raise ValueError("--ref is required (a text file, a data dir or a .jsonl manifest)")
    refs, audio = _references(args.ref)
    readings = _references(args.ref_reading)[0] if args.ref_reading else None
    hyp_readings: dict[str, str] = {}
    if args.hyp:
        if readings is not None:
            raise ValueError("--ref-reading scores a decoding: give --model / audio, not --hyp")
        hyps = read_text_file(args.hyp)
    else:
        if not audio:
            raise ValueError(f"{args.ref}: no audio to decode; give a data dir / manifest or --hyp")
        import uniasr
        from uniasr.cli import apply_context_args
        from uniasr.longform import LongformOptions

        rec = uniasr.load(args.model, device=args.device, text_form=args.text)
        results = rec.transcribe(
            [a for _, a in audio], mode=args.mode, beam_size=args.beam, errors="report",
            longform=LongformOptions(batch_seconds=args.batch_seconds),
            hotwords=apply_context_args(rec, args),
        )  # fmt: skip
        for (key, _), r in zip(audio, results):
            r.key = key
        if args.output_dir:
            from uniasr.output.kaldi_dir import write_output_dir

            write_output_dir(results, args.output_dir, overwrite=True)
        hyps = {r.key: r.text for r in results if r.error is None}
        hyp_readings = {r.key: r.kana for r in results if r.error is None}
    opts = NormalizeOptions(
        nfkc=not args.no_nfkc, strip_punctuation=not args.keep_punctuation,
        strip_spaces=not args.keep_spaces, kana=args.kana,
    )  # fmt: skip
    total, per_key, missing = score_texts(refs, hyps, opts)
    reading = score_texts(readings, hyp_readings, opts) if readings is not None else None
    if args.json:
        out = _totals_json(total, len(refs), missing)
        if reading is not None and readings is not None:
            out["reading"] = _totals_json(reading[0], len(readings), reading[2])
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(_report(total, per_key, missing, refs, hyps, opts, args.worst))
        if reading is not None and readings is not None:
            print("reading (the model's own output):")
            print(_report(*reading, readings, hyp_readings, opts, args.worst))
    return 0


def _totals_json(total, utterances: int, missing: list[str]) -> dict:
    return {
        "cer": total.cer, "errors": total.errors, "substitutions": total.substitutions,
        "deletions": total.deletions, "insertions": total.insertions, "ref_chars": total.reference_length,
        "utterances": utterances, "missing": missing,
    }  # fmt: skip


def _report(total, per_key, missing, refs, hyps, opts, worst: int) -> str:
    from uniasr.cer import normalize_text
    from uniasr.train.evaluate import format_report

    lines = [format_report(total, per_key, missing)]
    bad = sorted(((k, c) for k, c in per_key.items() if c.errors), key=lambda kc: (-kc[1].errors, kc[0]))
    for key, c in bad[:worst]:
        lines.append(f"  {key}  {c.errors} err  S={c.substitutions} D={c.deletions} I={c.insertions}")
        lines.append(f"    REF: {normalize_text(refs[key], opts)}")
        lines.append(f"    HYP: {normalize_text(hyps.get(key, ''), opts)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m uniasr.train {train,eval} ...``: the options of ``uniasr train`` / ``uniasr eval``."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m uniasr.train")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_args(sub.add_parser("train", help="train or fine-tune a UniASR model"))
    add_eval_args(sub.add_parser("eval", help="character error rate of a test set"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        return (run_train if args.command == "train" else run_eval)(args)
    except (ValueError, OSError) as e:
        log.error("%s", e)
        sys.stderr.flush()
        return 2
