"""The optional parts of uniasr and the pip line that installs each: one table, one check.

The base install (`pip install uniasr`) runs the bundled model's ONNX export, streaming, VAD and the websocket
server with numpy and onnxruntime. What needs more names its extra when that is missing.
"""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),  # the torch backend: model dirs without an ONNX export, --backend torch, GPUs
    "train": ("torch",),  # uniasr train (tensorboard and matplotlib are optional within it)
    "export": ("torch", "onnx"),  # uniasr export
    "serve": ("grpc",),  # the gRPC service of uniasr serve (the websocket server is in the base install)
}


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the `pip install` line."""


def install_line(extra: str) -> str:
    """`pip install "uniasr[extra]"` (pin torch: an unpinned torch pulls a multi-GB CUDA build)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; valid: {', '.join(EXTRAS)}")
    return f'pip install "uniasr[{extra}]"'


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported (found without importing them)."""
    install_line(extra)  # validates the name
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtraError naming the pip line when `what` (e.g. "uniasr export") cannot run."""
    missing = missing_modules(extra)
    if missing:
        hint = " (pin torch to your platform's build, e.g. torch==2.13.0)" if "torch" in missing else ""
        raise MissingExtraError(
            f"{what} needs {', '.join(missing)}, which the base install leaves out: "
            f"{install_line(extra)}{hint}"
        )
