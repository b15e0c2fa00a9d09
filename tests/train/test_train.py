"""uniasr.train: the objective against hand computations, a tiny model that learns, exact resume, DDP
gradients, save/reload, bad-data reporting, dataset types and `uniasr eval`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from conftest import FIXTURES, INPUTS
from uniasr.audio.features import Cmvn, Frontend
from uniasr.decode.tokens import TokenTable, build_token_list
from uniasr.funasr.files import read_yaml
from uniasr.funasr.model_config import parse_config
from uniasr.funasr.model_dir import read_model_dir, write_decoding
from uniasr.funasr.state_dict import load_funasr_state_dict
from uniasr.funasr.train_yaml import apply_overrides
from uniasr.model.config import DecodingDefaults
from uniasr.model.layout import merge_centres, scama_mask, to_chunked_layout
from uniasr.model.uniasr import UniASR
from uniasr.train.augment import NO_AUGMENT, AugmentConfig
from uniasr.train.batching import (
    Batch,
    BatchConfig,
    ShardStream,
    StreamPosition,
    plan_batches,
    small_epoch_plan,
    split_for_rank,
    stream_loader,
    virtual_shards,
)
from uniasr.train.checkpoint import load_checkpoint
from uniasr.train.config import TrainConfig
from uniasr.train.data import BadDataError, check_utterances, read_kaldi_dir, read_manifest, with_frames
from uniasr.train.distributed import DistInfo
from uniasr.train.features import FeatureMaker, compute_cmvn, write_cmvn
from uniasr.train.objective import FIRE_TOL, STATS, TrainingObjective, cif_embeddings, label_smoothing_kl
from uniasr.train.step import forward_backward
from uniasr.train.trainer import train

TINY_YAML = FIXTURES / "funasr_uniasr_tiny" / "model_dir" / "config.yaml"
CHARS = "アイウエオカキクケコ"
NO_DROPOUT = tuple(
    f"{part}.{key}=0.0"
    for part in ("encoder_conf", "encoder2_conf")
    for key in ("dropout_rate", "attention_dropout_rate")
) + ("decoder_conf.dropout_rate=0.0", "decoder2_conf.dropout_rate=0.0")


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared 2-core machine: one thread is fastest
    yield
    torch.set_num_threads(old)


def make_split(root: Path, name: str, count: int, seed: int) -> Path:
    """`count` utterances of tone sequences, one pitch per character of a random text."""
    rng = np.random.default_rng(seed)
    d = root / name
    d.mkdir(parents=True)
    scp, txt = [], []
    for i in range(count):
        key = f"{name}{i:03d}"
        text = "".join(rng.choice(list(CHARS), size=int(rng.integers(2, 5))))
        t = np.arange(int(16000 * (0.5 + 0.1 * (i % 4)))) / 16000
        pieces = [
            0.3 * np.sin(2 * np.pi * (300 + 120 * CHARS.index(c)) * s)
            for c, s in zip(text, np.array_split(t, len(text)))
        ]
        wav = np.concatenate(pieces) + 0.01 * rng.standard_normal(len(t))
        sf.write(d / f"{key}.wav", wav.astype(np.float32), 16000, subtype="PCM_16")
        scp.append(f"{key} {d / key}.wav\n")
        txt.append(f"{key} {text}\n")
    (d / "wav.scp").write_text("".join(scp), encoding="utf-8")
    (d / "text").write_text("".join(txt), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_split(root, "train", 8, 0)
    make_split(root, "dev", 2, 1)
    return root


def config(exp: Path, data: Path, **kw) -> TrainConfig:
    base = dict(
        exp_dir=str(exp), train=str(data / "train"), config=str(TINY_YAML), num_workers=0,
        batch=BatchConfig(batch_bins=40), augment=NO_AUGMENT, lr=2e-3, warmup_steps=5, log_every=1,
        tensorboard=False, dev_cer=False, avg_best=2,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def metrics(exp: Path, kind: str) -> list[dict]:
    lines = (exp / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


# --- the objective against hand computations ----------------------------------------------------------------


def test_label_smoothing_kl_matches_closed_form_and_kl_div():
    logits = torch.zeros(1, 4)
    got = label_smoothing_kl(logits, torch.tensor([2]), 0.1)
    q = [0.9, 0.1 / 3]
    want = q[0] * math.log(q[0]) + 3 * q[1] * math.log(q[1]) + math.log(4)
    assert got.item() == pytest.approx(want, rel=1e-6)
    logits, target = torch.randn(7, 11), torch.randint(0, 11, (7,))
    true = torch.full((7, 11), 0.1 / 10).scatter_(1, target[:, None], 0.9)
    ref = F.kl_div(torch.log_softmax(logits, -1), true, reduction="none").sum(-1)
    torch.testing.assert_close(label_smoothing_kl(logits, target, 0.1), ref, rtol=1e-5, atol=1e-6)


def funasr_cif(hidden: torch.Tensor, alphas: torch.Tensor, rows: int) -> torch.Tensor:
    """FunASR's integrate-and-fire recurrence, written out frame by frame (threshold 1)."""
    integrate, frame, fired = 0.0, torch.zeros(hidden.shape[1]), []
    for t in range(alphas.shape[0]):
        a = alphas[t]
        completion = 1.0 - integrate
        integrate = integrate + a
        if integrate >= 1.0:
            fired.append(frame + completion * hidden[t])
            integrate = integrate - 1.0
            frame = (a - completion) * hidden[t]
        else:
            frame = frame + a * hidden[t]
    if integrate >= 1.0 - FIRE_TOL:  # ours: a last token short of 1 by float error still fires
        fired.append(frame)
    out = torch.zeros(rows, hidden.shape[1])
    if fired:
        out[: min(rows, len(fired))] = torch.stack(fired)[:rows]
    return out


def test_cumsum_cif_equals_funasr_recurrence_values_and_gradients():
    torch.manual_seed(3)
    hidden = torch.randn(2, 23, 5, requires_grad=True)
    raw = torch.rand(2, 23, requires_grad=True)

    def scaled() -> torch.Tensor:
        alphas = raw * torch.tensor([[1.0] * 23, [1.0] * 17 + [0.0] * 6])  # the second one is shorter
        return alphas * (torch.tensor([6.0, 4.0]) / alphas.sum(1)).unsqueeze(1)

    ours = cif_embeddings(hidden, scaled(), 6)
    ours.square().sum().backward()
    g_hidden, g_raw = hidden.grad.clone(), raw.grad.clone()
    hidden.grad, raw.grad = None, None
    a = scaled()
    ref = torch.stack([funasr_cif(hidden[b], a[b], 6) for b in range(2)])
    ref.square().sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_hidden, hidden.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_raw, raw.grad, rtol=1e-4, atol=1e-4)


def hand_pass_terms(model: UniASR, feats, targets, ind: int) -> tuple[float, float]:
    """Pass-1 KL and MAE sums computed utterance by utterance in FunASR's own formulation: chunked layout,
    frame-by-frame CIF, alignments from floor(cumsum), `layout.scama_mask`, explicit smoothed targets."""
    kl_sum, mae_sum = 0.0, 0.0
    for f, y in zip(feats, targets):
        enc = model.encoder([f], ind)[0]
        lay = enc.layout
        alpha_blocks = model.predictor.alphas(
            enc.blocks, torch.from_numpy(lay.valid_rows()), torch.from_numpy(lay.centre_rows())
        )
        alphas = merge_centres(alpha_blocks.unsqueeze(-1), lay).squeeze(-1)
        hidden = merge_centres(enc.blocks, lay)
        n = len(y) + 1
        mae_sum += abs(alphas.sum().item() - n)
        scaled = alphas * (n / alphas.sum())
        embeds = funasr_cif(hidden, scaled, n)
        cum = torch.floor(torch.cumsum(scaled, 0) + 1e-4)
        fire = [min(int((cum < k).sum()), lay.num_frames - 1) for k in range(1, n + 1)]
        token_blocks = torch.tensor(fire) // lay.stride
        mask = torch.from_numpy(
            scama_mask(lay, token_blocks.numpy(), model.cfg.encoder.chunks[ind].decoder_look_back)
        )
        memory = to_chunked_layout(enc.blocks, lay)
        ys_in = torch.tensor([1, *y.tolist()])
        logits = model.decoder(ys_in[None], embeds[None], memory[None], mask[None])[0]
        v = logits.shape[-1]
        true = torch.full((n, v), 0.1 / (v - 1)).scatter_(1, torch.tensor([*y.tolist(), 2])[:, None], 0.9)
        kl_sum += F.kl_div(torch.log_softmax(logits, -1), true, reduction="sum").item()
    return kl_sum, mae_sum


@pytest.mark.parametrize("fixture", ["funasr_uniasr_tiny", "funasr_uniasr_lookback"])
def test_pass_terms_match_hand_computation(fixture):
    md = read_model_dir(FIXTURES / fixture / "model_dir")
    model = UniASR(md.config).eval()
    load_funasr_state_dict(model, md.checkpoint_path, md.config)
    torch.manual_seed(1)
    feats = [torch.randn(37, 560), torch.randn(12, 560)]
    targets = [torch.randint(3, 90, (9,)), torch.randint(3, 90, (4,))]
    objective = TrainingObjective(model)
    with torch.no_grad():
        for ind in (0, 1):
            _, stats = objective(feats, targets, ind)
            got = dict(zip(STATS, stats.tolist()))
            kl, mae = hand_pass_terms(model, feats, targets, ind)
            assert got["kl1"] == pytest.approx(kl, rel=1e-4)
            assert got["mae1"] == pytest.approx(mae, rel=1e-5)
            assert got["loss1"] == pytest.approx(kl + md.config.loss.predictor_weight * mae, rel=1e-4)
            assert got["tokens"] == 15 and got["utts"] == 2


def test_loss_on_funasr_fixture_is_finite(tiny_recognizer):
    import yaml

    clips = yaml.safe_load((INPUTS / "inputs.json").read_text(encoding="utf-8"))["clips"]
    table = tiny_recognizer.tokens
    feats, targets = [], []
    for name in ("short_0_7s.wav", "speech_10s.wav"):
        from uniasr.audio.decoding import load_audio

        feats.append(tiny_recognizer.features(load_audio(INPUTS / name)))
        targets.append(torch.tensor(table.to_ids(list(clips[name]["text"]))))
    model = UniASR(tiny_recognizer.config)
    model.load_state_dict(tiny_recognizer.model.state_dict())
    objective = TrainingObjective(model).train()
    for ind in (0, 1):
        loss, stats = objective(feats, targets, ind, 1.0 / objective.normaliser(targets))
        assert torch.isfinite(loss) and torch.isfinite(stats).all() and loss.item() > 0
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()


# --- the training loop --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp") / "run"
    cfg = config(
        exp,
        data,
        dev=str(data / "dev"),
        max_steps=24,
        max_epochs=50,
        batch=BatchConfig(batch_bins=100),
        dev_cer=True,
    )
    return train(cfg)


def test_tiny_model_learns(trained):
    losses = [r["loss"] for r in metrics(trained.exp_dir, "train")]
    assert len(losses) == 24
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.6 * first, (first, last)
    dev = metrics(trained.exp_dir, "dev")
    assert dev and all(k in dev[-1] for k in ("dev_loss", "dev_cer", "dev_sub", "dev_chars"))
    assert math.isfinite(dev[-1]["dev_loss"])
    for name in ("train.log", "train_config.json", "tokens.json", "am.mvn", "model_config.yaml"):
        assert (trained.exp_dir / name).is_file(), name
    assert "step 24" in (trained.exp_dir / "train.log").read_text(encoding="utf-8")


def test_saved_model_reloads_with_identical_outputs(trained, data):
    import uniasr

    model_dir = trained.model_dir
    assert sorted(p.name for p in model_dir.iterdir()) == ["am.mvn", "config.yaml", "model.pt", "tokens.json"]
    loaded = uniasr.load(model_dir)
    tokens = json.loads((model_dir / "tokens.json").read_text(encoding="utf-8"))
    frontend = Frontend(loaded.config.frontend, Cmvn.from_file(trained.exp_dir / "am.mvn"))
    from uniasr.pipeline import Recognizer

    direct = Recognizer(trained.model, frontend, TokenTable(tokens))
    wavs = sorted(str(p) for p in (data / "dev").glob("*.wav"))
    for mode in ("fast", "normal", "offline"):
        a = loaded.transcribe(wavs, mode=mode, beam_size=3)
        b = direct.transcribe(wavs, mode=mode, beam_size=3)
        assert [r.token_ids for r in a] == [r.token_ids for r in b]
        assert [r.score for r in a] == [r.score for r in b]


def final_state(exp: Path) -> dict:
    return load_checkpoint(exp / "checkpoints" / "ckpt_step00000004.pt")


def test_resume_is_bit_exact(data, tmp_path):
    aug = AugmentConfig()  # speed perturbation, dither and SpecAugment all on; dropout on; auxiliary CTC
    straight = config(tmp_path / "a", data, augment=aug, max_steps=4, save_every_steps=1, ctc_weight=0.3)
    train(straight)
    first = config(tmp_path / "b", data, augment=aug, max_steps=2, save_every_steps=1, ctc_weight=0.3)
    train(first)
    with pytest.raises(ValueError, match="--resume"):
        train(first)
    train(replace(first, max_steps=4, resume="auto"))
    a, b = final_state(tmp_path / "a"), final_state(tmp_path / "b")
    assert a["state"]["epoch"] == 1, "the 4 steps must cross an epoch boundary (3 batches per epoch)"
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert a["state"] == b["state"]
    assert a["ctc"].keys() == {"weight", "bias"}
    assert all(torch.equal(a["ctc"][k], b["ctc"][k]) for k in a["ctc"])
    assert all(math.isfinite(r["ctc"]) and r["ctc"] > 0 for r in metrics(tmp_path / "a", "train"))
    with pytest.raises(ValueError, match="trained with --ctc-weight"):
        train(replace(first, max_steps=5, resume="auto", ctc_weight=0.0))  # not dropping the head silently
    sa = torch.load(tmp_path / "a" / "model" / "model.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "model" / "model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fine_tuning_with_frozen_parts_and_early_stopping(data, tmp_path, caplog, tiny_dir):
    frozen = dict(freeze_pass1=True, freeze_encoder2=True)
    cfg = config(tmp_path / "ft", data, config=None, init=str(tiny_dir), **frozen, max_steps=3,
                 batch=BatchConfig(batch_bins=60), tensorboard=True)  # fmt: skip
    result = train(cfg)
    tokens = [json.loads((d / "tokens.json").read_text(encoding="utf-8")) for d in (result.exp_dir, tiny_dir)]
    assert tokens[0] == tokens[1]
    assert (result.exp_dir / "am.mvn").read_bytes() == (tiny_dir / "am.mvn").read_bytes()
    before = UniASR(result.model.cfg)
    load_funasr_state_dict(before, tiny_dir / "model.pt", result.model.cfg)
    after = load_checkpoint(result.exp_dir / "checkpoints" / "ckpt_step00000003.pt")["model"]
    for name, p in before.state_dict().items():
        frozen = name.split(".")[0] in ("encoder", "predictor", "decoder", "stride_conv", "encoder2")
        assert torch.equal(p, after[name]) == frozen, name
    if importlib.util.find_spec("tensorboard") is None:
        assert "tensorboard is not installed" in caplog.text
    else:
        assert any((result.exp_dir / "tensorboard").iterdir())
    # a learning rate too small to move the dev loss: patience 1 stops after the second epoch
    stopped = train(config(tmp_path / "es", data, dev=str(data / "dev"), lr=1e-12, patience=1, max_epochs=9,
                           batch=BatchConfig(batch_bins=400)))  # fmt: skip
    assert stopped.state.epoch == 2 and stopped.state.bad_epochs == 1
    assert "early stopping" in caplog.text


DDP_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from uniasr.model.uniasr import UniASR
from uniasr.train.batching import Batch, split_for_rank
from uniasr.train.distributed import setup, cleanup
from uniasr.train.objective import TrainingObjective
from uniasr.train.step import forward_backward
sys.path.insert(0, sys.argv[2])
from ddp_inputs import inputs

info = setup("cpu")
config, feats, targets = inputs()
torch.manual_seed(0)
objective = TrainingObjective(UniASR(config))
net = torch.nn.parallel.DistributedDataParallel(objective)
mine = split_for_rank(range(len(feats)), [f.shape[0] for f in feats], info.rank, info.world)
batch = Batch([str(i) for i in mine], [feats[i] for i in mine], [targets[i] for i in mine], [""] * len(mine))
forward_backward(net, objective, [batch], [1], info)
if info.rank == 0:
    torch.save({k: p.grad for k, p in objective.model.named_parameters()}, sys.argv[1])
cleanup(info)
"""

DDP_INPUTS = """
import torch
from uniasr.funasr.files import read_yaml
from uniasr.funasr.model_config import parse_config
from uniasr.funasr.train_yaml import apply_overrides

def inputs():
    raw = apply_overrides(read_yaml({yaml!r}), {overrides!r})
    g = torch.Generator().manual_seed(5)
    feats = [torch.randn(n, 560, generator=g) for n in (31, 18, 44, 9, 26)]
    targets = [torch.randint(3, 12, (n,), generator=g) for n in (5, 3, 8, 2, 4)]
    return parse_config(raw, 12), feats, targets
"""


def test_ddp_two_processes_give_the_whole_batch_gradient(tmp_path):
    (tmp_path / "ddp_inputs.py").write_text(
        DDP_INPUTS.format(yaml=str(TINY_YAML), overrides=list(NO_DROPOUT)), encoding="utf-8"
    )
    (tmp_path / "ddp_step.py").write_text(DDP_SCRIPT, encoding="utf-8")
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(tmp_path / "ddp_step.py"),
           str(tmp_path / "grads.pt"), str(tmp_path)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        from ddp_inputs import inputs
    finally:
        sys.path.remove(str(tmp_path))
    cfg, feats, targets = inputs()
    torch.manual_seed(0)
    objective = TrainingObjective(UniASR(cfg))
    batch = Batch([str(i) for i in range(5)], feats, targets, [""] * 5)
    forward_backward(objective, objective, [batch], [1], DistInfo())
    got = torch.load(tmp_path / "grads.pt", weights_only=True)
    for name, p in objective.model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=2e-4, atol=2e-6, msg=name)


# --- data: validation, bad entries, dataset types -----------------------------------------------------------


def bad_data_dir(root: Path, data: Path) -> Path:
    d = root / "bad"
    shutil.copytree(data / "train", d)
    (d / "garbage.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    scp = (d / "wav.scp").read_text(encoding="utf-8")
    scp += f"no_text {d}/train000.wav\nmissing_file {d}/nowhere.wav\nunreadable {d}/garbage.wav\n"
    scp += f"empty_text {d}/train001.wav\n"
    (d / "wav.scp").write_text(scp, encoding="utf-8")
    text = (d / "text").read_text(encoding="utf-8")
    text += "missing_file アイ\nunreadable アイ\nempty_text\nno_audio ウエ\n"
    (d / "text").write_text(text, encoding="utf-8")
    return d


def test_bad_data_is_reported_by_key(data, tmp_path):
    d = bad_data_dir(tmp_path, data)
    utts, issues = read_kaldi_dir(d)
    utts, more = check_utterances(utts)
    issues += more
    _, more = with_frames(utts, parse_config(read_yaml(TINY_YAML), 10).frontend)
    issues += more
    by_key = {i.key: i.problem for i in issues}
    assert set(by_key) == {"no_text", "no_audio", "missing_file", "empty_text", "unreadable"}
    assert "no line in text" in by_key["no_text"] and "not found" in by_key["missing_file"]
    assert "empty transcript" in by_key["empty_text"] and "unreadable" in by_key["unreadable"]
    with pytest.raises(BadDataError) as err:
        train(config(tmp_path / "e", data, train=str(d), on_bad_data="error", max_steps=1))
    assert all(k in str(err.value) for k in by_key)
    # a failure that only shows when the audio is decoded (the manifest gives a duration, so no probe)
    manifest = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"key": u.key, "audio": u.audio, "text": u.text})
        for u in read_kaldi_dir(data / "train")[0]
    ]
    lines.append(
        json.dumps({"key": "late_bad", "audio": str(d / "garbage.wav"), "text": "アイ", "duration": 0.5})
    )
    lines.append("{not json")
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, issues = read_manifest(manifest)
    assert [i.key for i in issues] == ["m.jsonl:10"]
    result = train(
        config(tmp_path / "s", data, train=str(manifest), max_steps=3, batch=BatchConfig(batch_bins=400))
    )
    report = (result.exp_dir / "bad_data.txt").read_text(encoding="utf-8")
    assert "m.jsonl:10" in report and "late_bad" in report and result.state.step == 3


def test_batches_respect_bins_and_cover_every_utterance():
    lengths = list(np.random.default_rng(0).integers(5, 60, size=97))
    for rng in (None, np.random.default_rng(1)):
        batches = plan_batches(lengths, 300, max_utts=8, rng=rng, length_bucket=10)
        assert sorted(i for b in batches for i in b) == list(range(97))
        assert all(len(b) * max(lengths[i] for i in b) <= 300 and len(b) <= 8 for b in batches)
    cfg = BatchConfig(batch_bins=150)
    parts = [small_epoch_plan(lengths, cfg, 0, 3, r, 2) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1]) and all(p0 and p1 for p0, p1 in zip(*parts))
    assert sorted(i for p in parts for b in p for i in b) == list(range(97))
    assert small_epoch_plan(lengths, cfg, 0, 3, 0, 1) != small_epoch_plan(lengths, cfg, 0, 4, 0, 1)
    assert split_for_rank([4, 9, 2], lengths, 0, 2) + split_for_rank([4, 9, 2], lengths, 1, 2) != []


def test_tokens_cmvn_and_overrides(tmp_path, data):
    assert build_token_list(["カ イ", "アア"]) == ["<blank>", "<s>", "</s>", "ア", "イ", "カ", "<unk>"]
    assert build_token_list(["アア", "イ"], min_count=2)[3:] == ["ア", "<unk>"]
    raw = apply_overrides(
        read_yaml(TINY_YAML), ["encoder_conf.num_blocks=2", "encoder_conf.chunk_size=[16, 60]"]
    )
    cfg = parse_config(raw, 10)
    assert cfg.encoder.num_blocks == 2 and cfg.encoder.chunks[0].chunk_size == 16
    utts, _ = read_kaldi_dir(data / "train")
    cmvn = compute_cmvn(utts, cfg.frontend)
    back = Cmvn.from_file(write_cmvn(cmvn, tmp_path / "am.mvn"))
    np.testing.assert_allclose(back.shift, cmvn.shift, rtol=1e-6)
    np.testing.assert_allclose(back.scale, cmvn.scale, rtol=1e-6)
    feats = Frontend(cfg.frontend, back)(sf.read(utts[0].audio, dtype="float32")[0])
    assert abs(feats.mean()) < 0.5


def test_large_dataset_from_dumped_feature_shards(data, tmp_path):
    from uniasr.train.cli import add_train_args, run_train

    p = argparse.ArgumentParser()
    add_train_args(p)
    common = ["--config", str(TINY_YAML), "--num-workers", "0", "--no-tensorboard", "--no-dev-cer"]
    args = p.parse_args(["--data-dir", str(data), "--exp-dir", str(tmp_path / "x"), "--shard-size", "3",
                         "--dump-features", str(tmp_path / "feats"), *common])  # fmt: skip
    assert run_train(args) == 0
    shards = sorted((tmp_path / "feats" / "train").glob("shard_*.jsonl"))
    assert len(shards) == 3 and (tmp_path / "feats" / "dev" / "shard_00000.npz").is_file()
    feats = tmp_path / "feats"
    args = p.parse_args(["--train", str(feats / "train"), "--dev", str(feats / "dev"),
                         "--exp-dir", str(tmp_path / "exp"), "--dataset-type", "large", "--batch-bins", "40",
                         "--max-steps", "3", "--lr", "1e-3", "--warmup-steps", "2", "--log-every", "1",
                         *common])  # fmt: skip
    assert run_train(args) == 0
    records = metrics(tmp_path / "exp", "train")
    assert records[-1]["step"] == 3 and math.isfinite(records[-1]["loss"])
    assert (tmp_path / "exp" / "model" / "model.pt").is_file()


def test_streamed_shards_resume_at_the_exact_batch_with_two_workers(data):
    utts, _ = read_kaldi_dir(data / "train")
    maker = FeatureMaker(parse_config(read_yaml(TINY_YAML), 10).frontend, None)
    tokenizer = TokenTable(build_token_list(u.text for u in utts))
    cfg = BatchConfig(batch_bins=30)

    def run(position: StreamPosition | None) -> list[tuple[int, tuple[str, ...]]]:
        stream = ShardStream(virtual_shards(utts, 3), maker, tokenizer, cfg, 0, 0, position=position)
        return [(b.worker, tuple(b.keys)) for b in stream_loader(stream, 2)]

    full = run(None)
    assert sorted(k for _, keys in full for k in keys) == sorted(u.key for u in utts)
    assert {w for w, _ in full} == {0, 1}
    for k in (1, len(full) - 2):
        position = StreamPosition()
        for worker, _ in full[:k]:
            position.advance(worker, 2)
        assert run(position) == full[k:]


# --- uniasr eval --------------------------------------------------------------------------------------------


def run_eval_cli(argv: list[str], capsys) -> str:
    from uniasr.train.cli import add_eval_args, run_eval

    p = argparse.ArgumentParser()
    add_eval_args(p)
    assert run_eval(p.parse_args(argv)) == 0
    return capsys.readouterr().out


def test_eval_two_text_files_and_a_decoded_set(tmp_path, capsys, tiny_dir):
    (tmp_path / "ref").write_text("a 今日は、いい天気。\nb はい\nc ア イ\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("a 今日はいい天気\nb はいい\n", encoding="utf-8")
    out = json.loads(
        run_eval_cli(["--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"), "--json"], capsys)
    )
    assert (out["substitutions"], out["deletions"], out["insertions"]) == (0, 2, 1)
    assert out["ref_chars"] == 11 and out["missing"] == ["c"]
    report = run_eval_cli(
        ["--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"), "--keep-punctuation"], capsys
    )
    assert report.startswith("CER ") and "REF:" in report
    d = tmp_path / "set"
    d.mkdir()
    (d / "wav.scp").write_text(f"s1 {INPUTS / 'short_0_7s.wav'}\n", encoding="utf-8")
    (d / "text").write_text("s1 ハイ\n", encoding="utf-8")
    argv = ["--ref", str(d), "--model", str(tiny_dir), "--mode", "fast", "--beam", "1", "--json"]
    out = json.loads(run_eval_cli([*argv, "--output-dir", str(tmp_path / "dec")], capsys))
    assert out["ref_chars"] == 2 and out["missing"] == []
    assert (tmp_path / "dec" / "1best_recog" / "text").read_text(encoding="utf-8").startswith("s1")


def test_a_model_fine_tuned_from_a_dir_keeps_its_decoding_yaml(data, tmp_path, tiny_dir):
    init = tmp_path / "init"
    shutil.copytree(tiny_dir, init)
    wanted = DecodingDefaults(beam_size=3, token_num_relax=0, mode="offline", convert_kana=True)
    write_decoding(init, wanted)
    result = train(config(tmp_path / "ft", data, config=None, init=str(init), max_steps=1))
    assert read_model_dir(result.model_dir).decoding == wanted
    # without a decoding.yaml in --init the model dir has none either (FunASR's defaults)
    plain = train(config(tmp_path / "ft2", data, config=None, init=str(tiny_dir), max_steps=1))
    assert not (plain.model_dir / "decoding.yaml").exists()
