"""TorchScript side of `uniasr export`: the same pieces as the ONNX graphs, traced and saved.

Load one with `torch.jit.load(path)`; its inputs and outputs are those in `uniasr_export.json` (`io`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from uniasr.export.wrappers import Piece


def trace(piece: Piece) -> torch.jit.ScriptModule:
    """Trace `piece` with its example inputs (shapes stay dynamic: sizes are read from the inputs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="`torch.jit", category=DeprecationWarning)
        return torch.jit.trace(piece.module, piece.example, check_trace=False)


def save_traced(piece: Piece, path: Path) -> None:
    traced = trace(piece)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit", category=DeprecationWarning)
        torch.jit.save(traced, str(path))
