"""ONNX side of `uniasr export`: trace a piece, write its metadata, quantise it to int8.

Uses the TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`): the pieces are traced with
example inputs and the axes named in `Piece.dynamic_axes` stay symbolic (number of blocks, rows per block,
history blocks, stride, hypotheses, memory rows).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from uniasr.export.wrappers import Piece

INSTALL_HINT = "pip install onnx onnxruntime (pin torch: pip install -c constraints.txt onnx onnxruntime)"


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from e
    return onnx


def export_piece(piece: Piece, path: Path, opset: int) -> None:
    """Trace `piece` and write it as an ONNX graph (fp32) to `path`."""
    _onnx()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings about the legacy exporter
        torch.onnx.export(
            piece.module,
            piece.example,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=piece.inputs,
            output_names=piece.outputs,
            dynamic_axes=piece.dynamic_axes,
            do_constant_folding=True,
        )


def add_metadata(path: Path, props: dict[str, str]) -> None:
    """Write `props` into the graph's `metadata_props` (replacing keys of the same name)."""
    onnx = _onnx()
    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights (activations are quantised per call at run time).

    Convolutions (FSMN memories, stride conv, predictor) and Gemm (decoder memory projection, run once
    per utterance) stay float.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ImportError(f"int8 quantisation needs onnxruntime: {INSTALL_HINT}") from e
    root = logging.getLogger()
    quiet = _DropMessage("pre-processing before quantization")  # a hint for CNNs, logged once per graph
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.removeFilter(quiet)


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()
