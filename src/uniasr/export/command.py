"""`uniasr export MODEL_DIR --format onnx|torchscript [--int8] --output DIR` (registered in `uniasr.cli`)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", help="FunASR 1.x or ModelScope 0.x UniASR model directory")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="graph format")
    p.add_argument("--int8", action="store_true", help="ONNX only: dynamic int8 quantisation of the weights")
    p.add_argument("--output", required=True, help="output directory (graphs + uniasr_export.json)")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --output")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")


def run(args: argparse.Namespace) -> int:
    from uniasr.extras import require_extra

    require_extra("export", "uniasr export")
    from uniasr.export.exporter import export_model

    manifest = export_model(
        args.model_dir,
        args.output,
        fmt=args.format,
        int8=args.int8,
        overwrite=args.overwrite,
        opset=args.opset,
    )
    log.info(
        "wrote %s (%s, %s): %s",
        args.output,
        manifest.format,
        manifest.precision,
        ", ".join(manifest.graphs.values()),
    )
    return 0
