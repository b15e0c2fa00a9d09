"""Export: ONNX == torch (tokens, all modes, streaming), metadata, torch-free runtime, TorchScript, int8."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import uniasr
from conftest import FIXTURES, INPUTS, MODES, STEMS, UNIASR_FIXTURES, batched_finals
from uniasr.acoustic import run_passes
from uniasr.audio.decoding import load_audio
from uniasr.audio.features import Cmvn
from uniasr.backends.export_dir import PIECES, ExportDirError, Manifest, config_from_dict, read_manifest
from uniasr.export.exporter import export_model
from uniasr.export.wrappers import model_pieces
from uniasr.funasr.model_dir import read_model_dir
from uniasr.model.modes import mode_settings
from uniasr.stream.session import StreamingSession

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CLIPS = [INPUTS / f"{s}.wav" for s in STEMS]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    for fx in UNIASR_FIXTURES:
        export_model(FIXTURES / fx / "model_dir", root / fx)
    return {fx: root / fx for fx in UNIASR_FIXTURES}


@pytest.fixture(scope="module")
def torch_recs() -> dict[str, uniasr.Recognizer]:
    return {fx: uniasr.load(FIXTURES / fx / "model_dir") for fx in UNIASR_FIXTURES}


@pytest.fixture(scope="module")
def onnx_recs(exports) -> dict[str, uniasr.Recognizer]:
    return {fx: uniasr.load(path) for fx, path in exports.items()}


@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_onnx_tokens_equal_torch_in_every_mode(fixture, torch_recs, onnx_recs):
    want_rec, got_rec = torch_recs[fixture], onnx_recs[fixture]
    assert got_rec.backend.name == "onnx" and got_rec.model is None
    for mode in MODES:
        want = want_rec.transcribe(CLIPS, mode=mode, nbest=3)
        got = got_rec.transcribe(CLIPS, mode=mode, nbest=3)
        for w, g in zip(want, got):
            assert g.token_ids == w.token_ids, (w.key, mode)
            assert [a.token_ids for a in g.nbest] == [a.token_ids for a in w.nbest], (w.key, mode)
            assert g.score == pytest.approx(w.score, abs=2e-3), (w.key, mode)
            assert g.timestamps == w.timestamps and g.text == w.text


def _events(rec, audio: np.ndarray, mode: str, piece: int) -> list:
    session = StreamingSession(rec, mode=mode)
    events = []
    for pos in range(0, len(audio), piece):
        events += session.accept_waveform(audio[pos : pos + piece])
    return events + session.finish()


@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_onnx_streaming_equals_torch_streaming(fixture, torch_recs, onnx_recs):
    """Same partial/refresh/final events on both backends; the final equals whole-utterance decoding."""
    audio = load_audio(INPUTS / "speech_10s.wav")
    for mode in MODES:
        want = _events(torch_recs[fixture], audio, mode, 4000)
        got = _events(onnx_recs[fixture], audio, mode, 4000)
        assert [(e.kind, e.tokens, e.start_ms, e.end_ms) for e in got] == [
            (e.kind, e.tokens, e.start_ms, e.end_ms) for e in want
        ], mode
        whole = onnx_recs[fixture].transcribe(audio, mode=mode)[0]
        assert got[-1].kind == "final" and got[-1].result.token_ids == whole.token_ids


def test_onnx_sessions_batched_equal_each_alone(onnx_recs):
    rec = onnx_recs["funasr_uniasr_lookback"]
    clips = [load_audio(p) for p in CLIPS]
    modes = ["normal", "fast", "offline"]
    alone = [rec.transcribe(c, mode=m)[0].token_ids for c, m in zip(clips, modes)]
    sessions = [StreamingSession(rec, mode=m) for m in modes]
    finals = batched_finals(sessions, clips, step=8000)
    assert [f[0].result.token_ids for f in finals] == alone


def test_onnx_hotwords_equal_torch_hotwords(torch_recs, onnx_recs):
    """The biased search is backend-free: the same hypothesis whole and streamed on both backends."""
    fx = "funasr_uniasr_lookback"
    audio = load_audio(INPUTS / "speech_10s.wav")[: 16000 * 4]
    for mode in ("fast", "normal"):
        want = torch_recs[fx].transcribe(audio, mode=mode, hotwords={"ヌヌネ": 3.0})[0]
        got = onnx_recs[fx].transcribe(audio, mode=mode, hotwords={"ヌヌネ": 3.0})[0]
        assert "ヌヌネ" in got.text and got.token_ids == want.token_ids
        session = StreamingSession(onnx_recs[fx], mode=mode, hotwords={"ヌヌネ": 3.0})
        events = session.accept_waveform(audio) + session.finish()
        assert events[-1].kind == "final" and events[-1].result.token_ids == want.token_ids


def test_mixed_look_back_config(tmp_path, torch_recs):
    """Encoder look-back in one chunk entry only: the graph's look-back inputs get one masked slot."""
    src = FIXTURES / "funasr_uniasr_lookback" / "model_dir"
    model_dir = tmp_path / "model"
    shutil.copytree(src, model_dir)
    cfg = (model_dir / "config.yaml").read_text()
    assert cfg.count("encoder_att_look_back_factor: [2, 1]") == 1
    (model_dir / "config.yaml").write_text(
        cfg.replace("encoder_att_look_back_factor: [2, 1]", "encoder_att_look_back_factor: [2, 0]")
    )
    export_model(model_dir, tmp_path / "onnx")
    want = uniasr.load(model_dir).transcribe(CLIPS, mode="offline")
    got = uniasr.load(tmp_path / "onnx").transcribe(CLIPS, mode="offline")
    assert [g.token_ids for g in got] == [w.token_ids for w in want]


def test_manifest_and_graph_metadata_round_trip(exports):
    path = exports["funasr_uniasr_lookback"]
    md = read_model_dir(FIXTURES / "funasr_uniasr_lookback" / "model_dir")
    m = read_manifest(path)
    assert m.format == "onnx" and m.precision == "fp32" and list(m.graphs) == list(PIECES)
    assert m.config == md.config and m.tokens == md.tokens and m.decoding == md.decoding
    cmvn = Cmvn.from_file(md.cmvn_path)
    assert np.array_equal(m.cmvn.shift, cmvn.shift) and np.array_equal(m.cmvn.scale, cmvn.scale)
    assert Manifest.from_json(json.loads(json.dumps(m.to_json()))).to_json() == m.to_json()
    for piece, name in m.graphs.items():
        props = {p.key: p.value for p in onnx.load(str(path / name), load_external_data=False).metadata_props}
        assert props == m.graph_properties(piece)
        assert props["uniasr_piece"] == piece and props["uniasr_format_version"] == "1"
        assert config_from_dict(json.loads(props["uniasr_config"])) == md.config
        assert json.loads(props["uniasr_tokens"]) == list(md.tokens)
        assert json.loads(props["uniasr_chunks"])["encoder1"][0]["encoder_look_back"] == 2
        assert json.loads(props["uniasr_lfr"]) == {"lfr_m": 7, "lfr_n": 6}
        shift = np.asarray(json.loads(props["uniasr_cmvn"])["shift"], dtype=np.float32)
        assert np.array_equal(shift, cmvn.shift)
        session = ort.InferenceSession(str(path / name), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == m.io[piece]["inputs"]
        assert [o.name for o in session.get_outputs()] == m.io[piece]["outputs"]


def test_bad_export_dirs_are_named(exports, tmp_path):
    path = exports["funasr_uniasr_tiny"]
    with pytest.raises(ValueError, match="exported model"):
        uniasr.load(path, backend="torch")
    with pytest.raises(ValueError, match="uniasr export"):
        uniasr.load(FIXTURES / "funasr_uniasr_tiny" / "model_dir", backend="onnx")
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    manifest = json.loads((bad / "uniasr_export.json").read_text())
    (bad / "uniasr_export.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ExportDirError, match="format_version=99"):
        uniasr.load(bad)
    (bad / "uniasr_export.json").write_text(json.dumps(manifest))
    (bad / "encoder2.onnx").unlink()
    with pytest.raises(ExportDirError, match="encoder2.onnx"):
        uniasr.load(bad)
    with pytest.raises(FileExistsError, match="overwrite"):
        export_model(FIXTURES / "funasr_uniasr_tiny" / "model_dir", path)


NO_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, _NoTorch())
"""

RUNTIME_SCRIPT = """
import json, sys
try:
    import torch
    sys.exit("the torch block did not work")
except ImportError:
    pass
import uniasr
from uniasr.audio.decoding import load_audio
from uniasr.stream.session import StreamingSession
rec = uniasr.load(sys.argv[1])
out = {m: [r.token_ids for r in rec.transcribe(sys.argv[2:], mode=m)] for m in ("fast", "normal", "offline")}
audio = load_audio(sys.argv[3])
session = StreamingSession(rec, mode="normal")
events = session.accept_waveform(audio) + session.finish()
out["stream"] = list(events[-1].result.token_ids)
out["torch_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "torch")
print(json.dumps(out))
"""


def test_runtime_works_where_torch_cannot_be_imported(exports, torch_recs, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    path = exports["funasr_uniasr_tiny"]
    cmd = [sys.executable, "-c", RUNTIME_SCRIPT, str(path), *map(str, CLIPS[:2])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert got["torch_modules"] == []
    rec = torch_recs["funasr_uniasr_tiny"]
    for mode in MODES:
        assert got[mode] == [r.token_ids for r in rec.transcribe(CLIPS[:2], mode=mode)], mode
    assert got["stream"] == got["normal"][1]


def _resized_inputs(piece, sizes: dict[str, int]) -> list[torch.Tensor]:
    """Fresh inputs for a traced piece with every dynamic axis set to `sizes[axis name]`."""
    out = []
    for name, example in zip(piece.inputs, piece.example):
        shape = list(example.shape)
        for axis, label in piece.dynamic_axes.get(name, {}).items():
            shape[axis] = sizes[label]
        if example.dtype == torch.bool:  # all true but the second half of the last row
            t = torch.ones(shape, dtype=torch.bool)
            t.view(-1, shape[-1])[-1, shape[-1] // 2 :] = False
        elif name == "look_back":
            t = torch.randint(-1, sizes["blocks"] + sizes["history"], shape)
        elif name == "hyp_utt":
            t = torch.randint(0, sizes["utterances"], shape)
        elif name == "tokens":
            t = torch.randint(0, 10, shape)
        else:
            t = torch.randn(shape)
        out.append(t)
    return out


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_pieces_load_and_match(tmp_path):
    """Each traced piece, called with other sizes on every dynamic axis (other strides and chunk sizes
    too: chunk entry 1), equals the eager module."""
    model_dir = FIXTURES / "funasr_uniasr_lookback" / "model_dir"
    manifest = export_model(model_dir, tmp_path / "ts", fmt="torchscript")
    assert list(manifest.graphs.values()) == [f"{p}.pt" for p in PIECES]
    model = uniasr.load(model_dir).model
    pieces = {p.name: p for p in model_pieces(model)}
    torch.manual_seed(1)
    for name, file in manifest.graphs.items():
        traced = torch.jit.load(str(tmp_path / "ts" / file))
        enc = model.encoder2 if name.endswith("2") else model.encoder
        chunk = enc.cfg.chunks[1]
        sizes = {"blocks": 4, "rows": chunk.chunk_size, "stride": chunk.stride, "history": 3, "look": 2}
        sizes |= {"hyps": 5, "utterances": 3, "frames": 17}
        if name.startswith("decoder"):
            sizes["rows"] = 23
        args = _resized_inputs(pieces[name], sizes)
        with torch.no_grad():
            want, got = pieces[name].module(*args), traced(*args)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for w, g in zip(want, got, strict=True):
            assert g.shape == w.shape, name
            torch.testing.assert_close(g, w, rtol=0, atol=1e-5, msg=name)


def test_int8_runs_and_is_smaller(exports, tmp_path):
    """Through the CLI: export --int8, then transcribe --backend onnx. Tokens may differ (random weights)."""
    out = tmp_path / "int8"
    tiny = FIXTURES / "funasr_uniasr_tiny" / "model_dir"
    run = [sys.executable, "-m", "uniasr"]
    proc = subprocess.run(
        [*run, "export", str(tiny), "--int8", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fp32 = exports["funasr_uniasr_tiny"]
    m = read_manifest(out)
    assert m.precision == "int8"
    for piece in ("encoder1", "encoder2", "decoder1_step", "decoder2_step"):
        assert (out / m.graphs[piece]).stat().st_size < 0.6 * (fp32 / m.graphs[piece]).stat().st_size, piece
    total = sum((out / f).stat().st_size for f in m.graphs.values())
    assert total < sum((fp32 / f).stat().st_size for f in m.graphs.values())
    cmd = [*run, "transcribe", *map(str, CLIPS), "--model", str(out), "--backend", "onnx", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["key"] for r in results] == list(STEMS) and not any(r.get("error") for r in results)
    assert len(results[1]["tokens"]) == len(results[1]["timestamps"]) > 0


@pytest.mark.parametrize("mode", MODES)
def test_backend_neutral_passes_equal_the_torch_model(torch_recs, mode):
    """The shared numpy glue on the torch backend computes exactly the encoder outputs of the torch
    (training) path `SanmEncoder.forward` + `UniASR.second_pass_input`."""
    rec = torch_recs["funasr_uniasr_lookback"]
    feats = [rec.features(load_audio(p)) for p in CLIPS]
    ind, pass_index = mode_settings(mode)
    with torch.inference_mode():
        want = rec.model.encoder(feats, ind)
        if pass_index == 2:
            want = rec.model.encoder2([rec.model.second_pass_input(f, e) for f, e in zip(feats, want)], ind)
    got = run_passes(rec.backend, [f.numpy() for f in feats], mode)
    for w, g in zip(want, got):
        assert np.array_equal(g.encoded.blocks, w.blocks.numpy())
        assert g.encoded.layout.chunked_length == w.layout.chunked_length
