"""`uniasr export`: a FunASR / ModelScope model dir -> a directory of ONNX or TorchScript graphs.

>>> export_model("model_dir", "model_onnx", fmt="onnx", int8=True)   # doctest: +SKIP

The output holds one graph per piece (`uniasr.backends.export_dir.PIECES`) and `uniasr_export.json`; an ONNX
export is loadable with `uniasr.load(dir)` (onnxruntime, no torch needed).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import torch

from uniasr.audio.features import Cmvn
from uniasr.backends.export_dir import FORMATS, PIECES, SUFFIX, Manifest, write_manifest
from uniasr.export.wrappers import Piece, model_pieces
from uniasr.funasr.model_dir import read_model_dir
from uniasr.funasr.state_dict import load_funasr_state_dict
from uniasr.kana_kanji import LM_FILE
from uniasr.model.uniasr import UniASR

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


def export_model(
    model_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "onnx",
    int8: bool = False,
    overwrite: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Manifest:
    """Export every piece of the model in `model_dir` to `out_dir`; returns the manifest written there.

    fmt: "onnx" or "torchscript". int8 (ONNX only): dynamic int8 quantisation of the MatMul weights
    (`onnxruntime.quantization.quantize_dynamic`); the directory then holds only the int8 graphs.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r} is not supported; valid: {', '.join(FORMATS)}")
    if int8 and fmt != "onnx":
        raise ValueError("--int8 quantisation needs --format onnx (onnxruntime dynamic quantisation)")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )
    md = read_model_dir(model_dir)
    model = UniASR(md.config)
    load_funasr_state_dict(model, md.checkpoint_path, md.config)
    pieces = model_pieces(model.eval())
    assert [p.name for p in pieces] == list(PIECES)
    manifest = Manifest(
        format=fmt,
        precision="int8" if int8 else "fp32",
        config=md.config,
        tokens=md.tokens,
        cmvn=Cmvn.from_file(md.cmvn_path),
        decoding=md.decoding,
        graphs={p.name: p.name + SUFFIX[fmt] for p in pieces},
        io={p.name: {"inputs": p.inputs, "outputs": p.outputs} for p in pieces},
        encoder_look_back={
            name: any(c.encoder_look_back for c in enc.chunks)
            for name, enc in (("encoder1", md.config.encoder), ("encoder2", md.config.encoder2))
        },
        opset=opset if fmt == "onnx" else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.inference_mode(False), torch.no_grad():
        if fmt == "onnx":
            _export_onnx(pieces, manifest, out, int8, opset)
        else:
            from uniasr.export.torchscript_export import save_traced

            for piece in pieces:
                save_traced(piece, out / manifest.graphs[piece.name])
    write_manifest(manifest, out)
    if (Path(model_dir) / LM_FILE).is_file():  # the kana -> written text LM travels with the model
        shutil.copyfile(Path(model_dir) / LM_FILE, out / LM_FILE)
    log.info(
        "exported %d %s graphs to %s in %.1f s",
        len(pieces),
        manifest.precision,
        out,
        time.perf_counter() - t0,
    )
    return manifest


def _export_onnx(pieces: list[Piece], manifest: Manifest, out: Path, int8: bool, opset: int) -> None:
    from uniasr.export.onnx_export import add_metadata, export_piece, quantize_int8

    with tempfile.TemporaryDirectory(prefix="uniasr-export-") as tmp:
        for piece in pieces:
            target = out / manifest.graphs[piece.name]
            fp32 = Path(tmp) / target.name if int8 else target
            export_piece(piece, fp32, opset)
            if int8:
                quantize_int8(fp32, target)
            add_metadata(target, manifest.graph_properties(piece.name))
            log.info("%s: %.1f MB", target.name, target.stat().st_size / 1e6)
