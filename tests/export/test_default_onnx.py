"""The bundled default model's ONNX export (what the torch-free base install runs), the automatic backend
choice of uniasr.load, and the install hints of missing extras (uniasr.extras)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from recipes.synth_ja.bundle_onnx import SOURCE_FILE

import uniasr
from conftest import ROOT
from uniasr import extras
from uniasr.backends.export_dir import read_manifest
from uniasr.backends.onnx_backend import OnnxBackend
from uniasr.cer import NormalizeOptions, score_texts
from uniasr.extras import MissingExtraError, install_line, require_extra
from uniasr.funasr.model_dir import read_model_dir
from uniasr.hub import default_model_dir, onnx_export_of

SAMPLE = ROOT / "recipes" / "synth_ja" / "sample_ja.wav"
SAMPLE_READING = (ROOT / "recipes" / "synth_ja" / "sample_ja.reading.txt").read_text(encoding="utf-8").strip()
TINY = ROOT / "tests" / "fixtures" / "funasr_uniasr_tiny" / "model_dir"
REGENERATE = "python -m recipes.synth_ja.bundle_onnx"


@pytest.fixture
def no_torch(monkeypatch):
    """uniasr.extras as it sees a base install: torch, onnx and grpc cannot be found."""

    def missing(extra: str) -> list[str]:
        return [m for m in extras.EXTRAS[extra] if m in ("torch", "onnx", "grpc")]

    monkeypatch.setattr(extras, "missing_modules", missing)


def test_the_bundled_onnx_export_is_of_the_bundled_checkpoint():
    model_dir = default_model_dir()
    export = onnx_export_of(model_dir)
    assert export is not None, f"the default model ships no onnx/ export: run {REGENERATE}"
    source = json.loads((export / SOURCE_FILE).read_text(encoding="utf-8"))
    md = read_model_dir(model_dir)
    sha = hashlib.sha256(md.checkpoint_path.read_bytes()).hexdigest()
    assert source["checkpoint_sha256"] == sha, f"model.pt changed since its export: run {REGENERATE}"
    manifest = read_manifest(export)
    assert (manifest.config, manifest.tokens, manifest.decoding) == (md.config, md.tokens, md.decoding)
    assert manifest.precision == source["precision"] == "int8"
    size = sum(f.stat().st_size for f in export.iterdir())
    assert size <= 20 * 2**20, f"{size / 2**20:.1f} MiB"


def _reading_cer(ref: str, hyp: str) -> float:
    total, _, _ = score_texts({"u": ref}, {"u": hyp}, NormalizeOptions())
    return total.cer


def test_without_torch_the_default_model_runs_its_onnx_export(no_torch, monkeypatch):
    rec = uniasr.load()
    assert isinstance(rec.backend, OnnxBackend) and rec.backend.path == onnx_export_of(default_model_dir())
    assert rec.converter is not None and rec.converter.lm is not None  # the model dir's LM, not copied
    with pytest.raises(MissingExtraError, match=r'pip install "uniasr\[torch\]"'):
        uniasr.load(backend="torch")
    monkeypatch.undo()  # torch is really there in the dev install: the reference
    torch_rec = uniasr.load(backend="torch")
    assert torch_rec.backend.name == "torch"
    for mode in ("fast", "normal"):
        (onnx_result,) = rec.transcribe(SAMPLE, mode=mode)
        (torch_result,) = torch_rec.transcribe(SAMPLE, mode=mode)
        assert _reading_cer(SAMPLE_READING, onnx_result.kana) <= 0.25, onnx_result.kana  # torch 0.21
        assert _reading_cer(torch_result.kana, onnx_result.kana) <= 0.1, (torch_result.kana, onnx_result.kana)


def test_with_torch_auto_keeps_torch_and_onnx_can_be_asked_for():
    assert uniasr.load().backend.name == "torch"
    assert isinstance(uniasr.load(backend="onnx").backend, OnnxBackend)


def test_a_checkpoint_without_export_names_the_torch_extra(no_torch):
    with pytest.raises(MissingExtraError, match=r'pip install "uniasr\[torch\]"'):
        uniasr.load(TINY)
    with pytest.raises(ValueError, match="needs a dir made by `uniasr export --format onnx`"):
        uniasr.load(TINY, backend="onnx")


@pytest.mark.parametrize(
    ("argv", "line", "needs"),
    [
        (["export", str(TINY), "--output", "unused"], 'pip install "uniasr[export]"', "needs torch, onnx"),
        (["train", "--data-dir", "x", "--exp-dir", "x"], 'pip install "uniasr[train]"', "needs torch"),
        (["serve", "--port", "0", "--grpc-port", "0"], 'pip install "uniasr[serve]"', "needs grpc"),
    ],
)
def test_cli_commands_of_an_extra_name_its_pip_line(no_torch, argv, line, needs, caplog):
    from uniasr.cli import main

    assert main(argv) == 2
    assert line in caplog.text and needs in caplog.text
    assert not Path("unused").exists() and not Path("x").exists()


def test_require_extra():
    require_extra("torch", "this test")  # installed here: no error
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        install_line("gpu")
