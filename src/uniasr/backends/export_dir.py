"""What an exported model directory holds, read without torch by the runtime (`onnx_backend`, `hub`) and
written by `uniasr.export`.

An export dir has one graph file per piece (`PIECES`) and `uniasr_export.json`: the format version, the
model config (chunk lists, LFR, dims), tokens, CMVN, decoding defaults, the graph files and their I/O. The
same facts are written into every ONNX graph's `metadata_props` (keys `uniasr_*`), so a lone graph file
says what it is.

Encoder input convention (the graphs start after it): feats [T, F] -> feats * sqrt(D) + PE(positions
start+1 ...), PE FunASR's sinusoid (`uniasr.model.encoder.sinusoidal_positions`), D the encoder output dim.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uniasr.audio.features import Cmvn, FrontendConfig
from uniasr.model.config import (
    ChunkConfig,
    DecoderConfig,
    DecodingDefaults,
    EncoderConfig,
    LossConfig,
    PredictorConfig,
    StrideConvConfig,
    UniASRConfig,
)

FORMAT = "uniasr-export"
FORMAT_VERSION = 1
MANIFEST_NAME = "uniasr_export.json"
FORMATS = ("onnx", "torchscript")
PIECES = (
    "encoder1",
    "predictor1",
    "decoder1_memory",
    "decoder1_step",
    "stride_conv",
    "encoder2",
    "predictor2",
    "decoder2_memory",
    "decoder2_step",
)
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


class ExportDirError(ValueError):
    """An export directory is missing files, or was written by an incompatible version."""


@dataclass(frozen=True)
class Manifest:
    """The contents of `uniasr_export.json`."""

    format: str  # "onnx" | "torchscript"
    precision: str  # "fp32" | "int8"
    config: UniASRConfig
    tokens: tuple[str, ...]
    cmvn: Cmvn
    decoding: DecodingDefaults
    graphs: dict[str, str]  # piece -> file name
    io: dict[str, dict[str, list[str]]]  # piece -> {"inputs": [...], "outputs": [...]}
    encoder_look_back: dict[str, bool]  # "encoder1"/"encoder2" -> has look-back inputs/outputs
    opset: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format_name": FORMAT,
            "format_version": FORMAT_VERSION,
            "format": self.format,
            "precision": self.precision,
            "opset": self.opset,
            "config": asdict(self.config),
            "tokens": list(self.tokens),
            "cmvn": {"shift": self.cmvn.shift.tolist(), "scale": self.cmvn.scale.tolist()},
            "decoding": asdict(self.decoding),
            "graphs": dict(self.graphs),
            "io": self.io,
            "encoder_look_back": dict(self.encoder_look_back),
            "encoder_input": "feats * sqrt(encoder output dim) + FunASR sinusoidal positions (1-based)",
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        if d.get("format_name") != FORMAT:
            raise ExportDirError(f"format_name={d.get('format_name')!r}: not a uniasr export ({FORMAT!r})")
        if d.get("format_version") != FORMAT_VERSION:
            raise ExportDirError(
                f"export format_version={d.get('format_version')!r}; this uniasr reads version "
                f"{FORMAT_VERSION}: re-export the model with `uniasr export`"
            )
        return cls(
            format=d["format"],
            precision=d["precision"],
            config=config_from_dict(d["config"]),
            tokens=tuple(d["tokens"]),
            cmvn=Cmvn(np.asarray(d["cmvn"]["shift"], np.float32), np.asarray(d["cmvn"]["scale"], np.float32)),
            decoding=DecodingDefaults(**d["decoding"]),
            graphs=dict(d["graphs"]),
            io=d["io"],
            encoder_look_back=dict(d["encoder_look_back"]),
            opset=d.get("opset"),
        )

    def graph_properties(self, piece: str) -> dict[str, str]:
        """The `metadata_props` written into the ONNX graph of `piece` (all values are strings)."""
        cfg = self.config
        return {
            "uniasr_format": FORMAT,
            "uniasr_format_version": str(FORMAT_VERSION),
            "uniasr_piece": piece,
            "uniasr_precision": self.precision,
            "uniasr_io": json.dumps(self.io[piece]),
            "uniasr_config": json.dumps(asdict(cfg)),
            "uniasr_chunks": json.dumps(
                {
                    "encoder1": [asdict(c) for c in cfg.encoder.chunks],
                    "encoder2": [asdict(c) for c in cfg.encoder2.chunks],
                }
            ),
            "uniasr_lfr": json.dumps({"lfr_m": cfg.frontend.lfr_m, "lfr_n": cfg.frontend.lfr_n}),
            "uniasr_cmvn": json.dumps({"shift": self.cmvn.shift.tolist(), "scale": self.cmvn.scale.tolist()}),
            "uniasr_tokens": json.dumps(list(self.tokens), ensure_ascii=False),
            "uniasr_decoding": json.dumps(asdict(self.decoding)),
        }


def config_from_dict(d: dict[str, Any]) -> UniASRConfig:
    """Inverse of `dataclasses.asdict(UniASRConfig)`."""

    def encoder(e: dict[str, Any]) -> EncoderConfig:
        return EncoderConfig(**{**e, "chunks": tuple(ChunkConfig(**c) for c in e["chunks"])})

    return UniASRConfig(
        frontend=FrontendConfig(**d["frontend"]),
        encoder=encoder(d["encoder"]),
        encoder2=encoder(d["encoder2"]),
        decoder=DecoderConfig(**d["decoder"]),
        decoder2=DecoderConfig(**d["decoder2"]),
        predictor=PredictorConfig(**d["predictor"]),
        predictor2=PredictorConfig(**d["predictor2"]),
        stride_conv=StrideConvConfig(**d["stride_conv"]),
        loss=LossConfig(**d["loss"]),
    )


def is_export_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


def write_manifest(manifest: Manifest, out_dir: str | Path) -> Path:
    path = Path(out_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Read and check `uniasr_export.json` of an export dir, and that its graph files exist."""
    root = Path(path)
    file = root / MANIFEST_NAME
    if not file.is_file():
        raise ExportDirError(
            f"{root}: no {MANIFEST_NAME}; make one with `uniasr export MODEL_DIR --output {root}`"
        )
    try:
        manifest = Manifest.from_json(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportDirError(f"cannot read {file}: {e}") from e
    missing = [name for name in manifest.graphs.values() if not (root / name).is_file()]
    if missing:
        raise ExportDirError(f"{root}: graph files missing: {', '.join(missing)}")
    return manifest
