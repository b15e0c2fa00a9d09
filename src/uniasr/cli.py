"""`uniasr` command line: thin wrappers over the library. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("uniasr")


def add_text_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--text",
        choices=["auto", "written", "kana"],
        default="auto",
        help="written: kanji-kana text converted from the model's kana; kana: the model's output as it is; "
        "auto: written for models that write orthographic kana (the default model), else kana",
    )


def add_context_args(p: argparse.ArgumentParser) -> None:
    """--hotwords/--hotword-weight, --lm/--lm-weight, --agreement-weight, --joint-weight,
    --joint-written-weight (see uniasr.hotwords, uniasr.decode.lm_fusion, uniasr.decode.context,
    uniasr.rescore)."""
    p.add_argument(
        "--hotwords", default=None, metavar="FILE",
        help="phrases to favour, one a line, optionally with a weight (FunASR format: `阿里巴巴 20`) and "
        "readings (`御手洗 3 ミタライ`)",
    )  # fmt: skip
    p.add_argument(
        "--hotword-weight", type=float, default=None, help="bonus per token (nats) of phrases without one"
    )
    p.add_argument(
        "--hotword-threshold", type=float, default=None, metavar="P",
        help="a phrase counts only where the model's probabilities of its tokens average at least P (0-1)",
    )  # fmt: skip
    p.add_argument("--lm", default=None, metavar="FILE", help="token-level n-gram LM (ARPA, .gz ok) to fuse")
    p.add_argument("--lm-weight", type=float, default=0.15, help="scale of the fused LM's log-probabilities")
    p.add_argument("--lm-length-bonus", type=float, default=0.0, help="nats per token with --lm")
    p.add_argument(
        "--agreement-weight", type=float, default=None, metavar="W",
        help="modes normal/offline: pass 2 favours the n-grams of pass 1's result by W per token "
        "(default: the model's decoding.yaml; 0: off)",
    )  # fmt: skip
    p.add_argument(
        "--joint-weight", type=_joint_weight, default=None, metavar="A",
        help="modes normal/offline: choose among both passes' n-best by both decoders, pass 1's score "
        "weighted A in [0, 1] (default: the model's decoding.yaml; off: none)",
    )  # fmt: skip
    p.add_argument(
        "--joint-written-weight", type=float, default=None, metavar="W",
        help="with --joint-weight, on a model that writes kana: add W x the written LM's log-probability "
        "of each candidate's kanji-kana text (default: the model's decoding.yaml; 0: off)",
    )  # fmt: skip


def _joint_weight(text: str) -> float | str:
    if text == "off":
        return text
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a number in [0, 1] or off")
    return value


def apply_context_args(rec, args: argparse.Namespace):
    """Load --lm and set --agreement-weight / --joint-weight / --joint-written-weight in `rec`; -> the
    --hotwords graph (None without)."""
    from dataclasses import replace
    from pathlib import Path

    for flag in ("agreement_weight", "joint_written_weight"):
        weight = getattr(args, flag, None)
        if weight is not None:
            if not 0 <= weight < float("inf"):
                raise ValueError(f"--{flag.replace('_', '-')} {weight} must be a number >= 0")
            rec.defaults = replace(rec.defaults, **{flag: weight})
    joint = getattr(args, "joint_weight", None)
    if joint is not None:
        rec.defaults = replace(rec.defaults, joint_pass1_weight=None if joint == "off" else joint)
    if getattr(args, "lm", None):
        rec.use_lm(args.lm, args.lm_weight, args.lm_length_bonus)
    if getattr(args, "hotwords", None):
        return rec.hotword_graph(
            Path(args.hotwords), args.hotword_weight, ac_threshold=getattr(args, "hotword_threshold", None)
        )
    return None


def _transcribe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="audio files, URLs, or wav.scp lists")
    p.add_argument("--model", default=None, help="model directory (FunASR 1.x or ModelScope 0.x)")
    p.add_argument(
        "--mode",
        choices=["fast", "normal", "offline"],
        default=None,
        help="fast: pass 1 only; normal: two-pass (default); offline: big chunks",
    )
    p.add_argument("--beam", type=int, default=None, help="beam width (default 5; 1 = greedy)")
    p.add_argument("--nbest", type=int, default=1, help="alternatives to report per input")
    p.add_argument(
        "--output-dir",
        default=None,
        help="write 1best_recog/{text,token,score,time_stamp,rtf}, and <key>.<format> for json/srt/vtt/tsv",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files in --output-dir")
    p.add_argument(
        "--format",
        choices=["text", "json", "srt", "vtt", "tsv"],
        default="text",
        help="stdout, or with --output-dir one file per input (json: JSON lines on stdout too)",
    )
    p.add_argument(
        "--vad",
        default="auto",
        help="VAD for long inputs: auto (silero+level at 8/16 kHz, else energy), silero, silero+level "
        "(silero, plus audio well above the recording's quiet floor), energy, fsmn:<dir>",
    )
    p.add_argument(
        "--no-vad",
        dest="vad",
        action="store_const",
        const=None,
        help="no speech detection: decode inputs of up to --max-whole s whole, longer ones in pieces of at "
        "most --max-segment s cut at quiet points (bounded memory; silence is decoded too)",
    )
    p.add_argument("--max-whole", type=float, default=600.0, help="--no-vad: longest input decoded whole (s)")
    p.add_argument("--vad-threshold", type=float, default=60.0, help="segment inputs longer than this (s)")
    p.add_argument("--max-segment", type=float, default=30.0, help="longest VAD segment (s), split if longer")
    p.add_argument(
        "--merge-gap", type=float, default=None,
        help="decode VAD segments less than this far apart (s) as one (0: never; default: see README)",
    )  # fmt: skip
    p.add_argument(
        "--segment-pad", type=float, default=None,
        help="decode each VAD segment with this much audio around it (s; default: see README)",
    )  # fmt: skip
    p.add_argument("--batch-seconds", type=float, default=120.0, help="audio per decoding batch (s)")
    p.add_argument(
        "--itn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="inverse text normalisation (kanji numerals -> digits); default: on for srt/vtt only",
    )
    add_text_arg(p)
    add_context_args(p)
    p.add_argument("--line-width", type=int, default=42, help="subtitle line width (a kanji counts 2)")
    p.add_argument(
        "--merge-only", action="store_true", help="only merge the torchrun shards in --output-dir/.shards"
    )
    p.add_argument(
        "--shard-timeout", type=float, default=3600.0, help="torchrun: how long a rank waits for the rest (s)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    p.add_argument(
        "--device", default="cpu", help="cpu, cuda (under torchrun: cuda:<local rank>), cuda:N, or auto"
    )
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="auto: onnxruntime for an export dir; torch for a model dir, or its onnx/ export without torch",
    )
    p.add_argument("--sample-rate", type=int, default=None, help="sample rate of raw-array inputs (rare)")


def _format_result(r, fmt: str, options=None) -> str:
    from uniasr.output import formats

    if fmt in ("text", "json"):
        return formats.format_result(r, fmt)
    if r.error:
        return f"{r.key}\tERROR: {r.error}"
    return formats.format_result(r, fmt, options or formats.CueOptions()).rstrip("\n")


def longform_options(args: argparse.Namespace):
    """The LongformOptions of the transcribe arguments (--vad, --max-segment, --merge-gap, ...)."""
    from uniasr.longform import LongformOptions

    given = {"merge_gap_s": args.merge_gap, "pad_s": args.segment_pad}
    return LongformOptions(
        args.vad, args.vad_threshold, max_segment_s=args.max_segment, batch_seconds=args.batch_seconds,
        max_whole_s=args.max_whole, **{k: v for k, v in given.items() if v is not None},
    )  # fmt: skip


def _show_progress(bar, by_seconds: bool, done) -> None:
    """tqdm `bar` in seconds of audio or in inputs (a `uniasr.pipeline.Progress`)."""
    step = done.seconds if by_seconds else done.inputs
    if step:
        bar.update(step)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from functools import partial
    from pathlib import Path

    from tqdm import tqdm

    import uniasr
    from uniasr import sharding
    from uniasr.audio.inputs import expand_inputs
    from uniasr.audio.probe import audio_duration_seconds
    from uniasr.launch import RankInfo, device_for_rank, threads_for_rank
    from uniasr.output import formats
    from uniasr.output.kaldi_dir import refuse_existing

    if args.merge_only:
        if not args.output_dir:
            raise ValueError("--merge-only needs --output-dir (the directory holding .shards/)")
        report = sharding.merge_shards(args.output_dir, overwrite=args.overwrite)
        (log.info if report.complete else log.error)("%s", report.summary())
        return 0 if report.complete else 1
    info = RankInfo.from_env()
    if info.sharded and not args.output_dir:
        raise ValueError(f"under torchrun (WORLD_SIZE={info.world_size}) --output-dir is required")
    device = device_for_rank(args.device, info.local_rank)
    threads = args.threads or (threads_for_rank(info) if info.sharded and device == "cpu" else None)
    out = Path(args.output_dir) if args.output_dir else None
    pairs = expand_inputs(args.inputs)
    if not info.sharded and out and not args.overwrite:  # every file this run would write, before any work
        paths = formats.output_paths(out, [k for k, _ in pairs], args.format)
        refuse_existing(paths, "; nothing was decoded")
    rec = uniasr.load(args.model, device=device, backend=args.backend, threads=threads, text_form=args.text)
    hotwords = apply_context_args(rec, args)
    itn = args.itn if args.itn is not None else args.format in formats.SUBTITLE_FORMATS
    cue = formats.CueOptions(max_line_width=args.line_width)
    kwargs: dict[str, Any] = dict(
        mode=args.mode, beam_size=args.beam, nbest=args.nbest, source_rate=args.sample_rate, itn=itn,
        longform=longform_options(args), hotwords=hotwords,
    )  # fmt: skip
    show = sys.stderr.isatty() and info.is_main
    mine = sharding.shard(pairs, info.rank, info.world_size)
    durations = [audio_duration_seconds(src) for _, src in mine] if show else []
    by_seconds = show and all(d is not None for d in durations)
    total = sum(d or 0.0 for d in durations) if by_seconds else len(mine)
    bar = tqdm(total=round(total, 1), unit="s" if by_seconds else "utt", disable=not show, file=sys.stderr)
    progress = partial(_show_progress, bar, by_seconds)
    try:
        if info.sharded:
            job = sharding.ShardJob(
                Path(args.output_dir),
                args.format,
                args.overwrite,
                barrier_timeout_s=args.shard_timeout,
                cue_options=cue,
            )
            return sharding.run_rank(rec, pairs, info, job, {**kwargs, "progress": progress}).exit_code
        results = rec.transcribe(
            args.inputs, errors="report", output_dir=out, overwrite=args.overwrite, progress=progress,
            **kwargs,
        )  # fmt: skip
    finally:
        bar.close()
    write_errors = []
    if out and args.format in formats.FILE_FORMATS:
        write_errors = formats.write_result_files(
            results, args.format, out, overwrite=args.overwrite, options=cue
        )
    for r in results if not (out and args.format in ("srt", "vtt", "tsv")) else []:
        print(_format_result(r, args.format, cue), flush=True)
    for e in write_errors:
        log.error("%s", e)
    failed = [r.key for r in results if r.error]
    if failed:
        log.error("%d of %d inputs failed: %s", len(failed), len(results), ", ".join(failed[:10]))
    return 1 if failed or write_errors else 0


def _itn_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kana", action="store_true", help="the input is orthographic kana: convert to kanji-kana text first"
    )


def cmd_itn(args: argparse.Namespace) -> int:
    from uniasr.itn import normalize

    for line in sys.stdin:
        print(normalize(line.rstrip("\n"), kana=args.kana), flush=True)
    return 0


Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _external(module: str, configure: str, run: str) -> tuple[Configure, Run]:
    """A command defined in another module, imported only when the parser is built or it runs."""
    import importlib

    return (
        lambda p: getattr(importlib.import_module(module), configure)(p),
        lambda a: getattr(importlib.import_module(module), run)(a),
    )


COMMANDS: dict[str, tuple[Configure, Run, str]] = {
    "transcribe": (_transcribe_args, cmd_transcribe, "recognise audio files"),
    "stream": (
        *_external("uniasr.cli_stream", "add_stream_args", "run_stream"),
        "streaming recognition of a file in simulated real time, or of the microphone",
    ),
    "itn": (_itn_args, cmd_itn, "Japanese inverse text normalisation of stdin lines"),
    "export": (*_external("uniasr.export.command", "configure", "run"), "export ONNX / TorchScript graphs"),
    "train": (
        *_external("uniasr.train.cli", "add_train_args", "run_train"),
        "train or fine-tune a UniASR model (also under torchrun)",
    ),
    "eval": (
        *_external("uniasr.train.cli", "add_eval_args", "run_eval"),
        "character error rate of a model or a text file",
    ),
    "serve": (
        *_external("uniasr.serve.cli", "serve_args", "cmd_serve"),
        "websocket (FunASR 2pass protocol) + web page + optional gRPC recognition server",
    ),
    "client": (
        *_external("uniasr.serve.cli", "client_args", "cmd_client"),
        "send files or the microphone to a uniasr/FunASR websocket server, print the replies",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from uniasr import __version__

    parser = argparse.ArgumentParser(prog="uniasr", description="Japanese speech recognition with UniASR")
    parser.add_argument("--version", action="version", version=f"uniasr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    _, run, _ = COMMANDS[args.command]
    from uniasr.extras import MissingExtraError

    try:
        return run(args)
    except (ValueError, OSError, MissingExtraError) as e:  # they name the problem (and the fix): no traceback
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
