"""The only place FunASR / ModelScope names live.

Reads FunASR 1.x model dirs (config.yaml, model.pt, tokens.json, am.mvn) and pre-2024 ModelScope dirs
(config.yaml with token_list, model.pb, am.mvn, decoding.yaml, configuration.json) into our config
dataclasses, maps state_dict keys both ways, and writes FunASR 1.x dirs (spec §2, §4, §5).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from uniasr.audio.features import FrontendConfig
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

if TYPE_CHECKING:  # torch is imported where weights are read or written: model dirs parse without it
    import torch

SUPPORTED_MODELS = {"UniASR", "uniasr"}
ENCODERS = {"SANMEncoderChunkOpt", "sanm_chunk_opt"}
DECODERS = {"FsmnDecoderSCAMAOpt", "fsmn_scama_opt"}
PREDICTORS = {"CifPredictorV2", "cif_predictor_v2"}
CHECKPOINT_NAMES = ("model.pt", "model.pb")
DECODING_FILE = "decoding.yaml"  # ModelScope decoding defaults; read in any model dir


class ModelDirError(ValueError):
    """A model directory is missing files or holds something we cannot load."""


@dataclass(frozen=True)
class ModelDir:
    """Everything read from a model directory, in our own terms."""

    path: Path
    config: UniASRConfig
    tokens: tuple[str, ...]
    cmvn_path: Path
    checkpoint_path: Path
    decoding: DecodingDefaults
    layout: str  # "funasr" (1.x) or "modelscope" (0.x)


def _need(conf: dict, key: str, where: str) -> Any:
    if key not in conf:
        raise ModelDirError(f"config.yaml: `{where}` has no `{key}`")
    return conf[key]


def _check_class(raw: dict, key: str, allowed: set[str]) -> None:
    name = raw.get(key)
    if name not in allowed:
        raise ModelDirError(
            f"config.yaml: {key}={name!r} is not supported; expected one of {sorted(allowed)}"
        )


def _chunks(conf: dict, where: str) -> tuple[ChunkConfig, ...]:
    sizes = [int(v) for v in _need(conf, "chunk_size", where)]
    n = len(sizes)

    def field(name: str) -> list[int]:
        vals = [int(v) for v in conf.get(name, [0] * n)]
        if len(vals) != n:
            raise ModelDirError(f"config.yaml: {where}.{name} has {len(vals)} entries but chunk_size has {n}")
        return vals

    strides, pads = field("stride"), field("pad_left")
    enc_lb, dec_lb = field("encoder_att_look_back_factor"), field("decoder_att_look_back_factor")
    return tuple(ChunkConfig(*vals) for vals in zip(sizes, strides, pads, enc_lb, dec_lb))


def _encoder(conf: dict, input_dim: int, where: str) -> EncoderConfig:
    if conf.get("input_layer", "pe") != "pe":
        raise ModelDirError(
            f"config.yaml: {where}.input_layer={conf['input_layer']!r} unsupported (need 'pe')"
        )
    if int(conf.get("sanm_shfit", 0)) != 0:
        raise ModelDirError(f"config.yaml: {where}.sanm_shfit={conf['sanm_shfit']} unsupported (need 0)")
    return EncoderConfig(
        input_dim=input_dim,
        output_dim=int(conf.get("output_size", 320)),
        attention_heads=int(conf.get("attention_heads", 4)),
        linear_units=int(conf.get("linear_units", 1280)),
        num_blocks=int(conf.get("num_blocks", 35)),
        kernel_size=int(conf.get("kernel_size", 11)),
        chunks=_chunks(conf, where),
        dropout=float(conf.get("dropout_rate", 0.1)),
        attention_dropout=float(conf.get("attention_dropout_rate", 0.1)),
    )


def _decoder(conf: dict, vocab: int, encoder_dim: int) -> DecoderConfig:
    if not conf.get("concat_embeds", True):
        raise ModelDirError("config.yaml: decoder concat_embeds=false is unsupported")
    return DecoderConfig(
        vocab_size=vocab,
        encoder_dim=encoder_dim,
        attention_dim=int(conf.get("attention_dim", 256)),
        attention_heads=int(conf.get("attention_heads", 4)),
        linear_units=int(conf.get("linear_units", 2048)),
        num_blocks=int(conf.get("num_blocks", 6)),
        att_layer_num=int(conf.get("att_layer_num", 6)),
        kernel_size=int(conf.get("kernel_size", 21)),
        dropout=float(conf.get("dropout_rate", 0.1)),
    )


def _predictor(conf: dict) -> PredictorConfig:
    return PredictorConfig(
        dim=int(conf.get("idim", 320)),
        l_order=int(conf.get("l_order", 1)),
        r_order=int(conf.get("r_order", 1)),
        threshold=float(conf.get("threshold", 1.0)),
    )


def _frontend(conf: dict) -> FrontendConfig:
    return FrontendConfig(
        sample_rate=int(conf.get("fs", 16000)),
        n_mels=int(conf.get("n_mels", 80)),
        frame_length_ms=float(conf.get("frame_length", 25)),
        frame_shift_ms=float(conf.get("frame_shift", 10)),
        window=str(conf.get("window", "hamming")),
        lfr_m=int(conf.get("lfr_m", 7)),
        lfr_n=int(conf.get("lfr_n", 6)),
        dither=0.0,  # inference is deterministic; training adds its own dither
    )


def parse_config(raw: dict, vocab_size: int) -> UniASRConfig:
    """FunASR 1.x or 0.x config.yaml contents -> UniASRConfig."""
    _check_class(raw, "model", SUPPORTED_MODELS)
    for key, allowed in (
        ("encoder", ENCODERS),
        ("encoder2", ENCODERS),
        ("decoder", DECODERS),
        ("decoder2", DECODERS),
        ("predictor", PREDICTORS),
        ("predictor2", PREDICTORS),
    ):
        _check_class(raw, key, allowed)
    frontend = _frontend(raw.get("frontend_conf") or {})
    feat_dim = frontend.feature_dim
    enc = _encoder(_need(raw, "encoder_conf", "root"), feat_dim, "encoder_conf")
    enc2_in = feat_dim + enc.output_dim
    enc2 = _encoder(_need(raw, "encoder2_conf", "root"), enc2_in, "encoder2_conf")
    sc = raw.get("stride_conv_conf") or {}
    pad = sc.get("pad", [0, 1])
    pad = [int(pad), int(pad)] if isinstance(pad, int) else [int(p) for p in pad]
    stride_conv = StrideConvConfig(enc2_in, int(sc.get("kernel_size", 2)), int(sc.get("stride", 2)), *pad)
    mc = raw.get("model_conf") or {}
    loss = LossConfig(
        lsm_weight=float(mc.get("lsm_weight", 0.1)),
        length_normalized_loss=bool(mc.get("length_normalized_loss", True)),
        predictor_weight=float(mc.get("predictor_weight", 1.0)),
        predictor2_weight=float(mc.get("predictor2_weight", mc.get("predictor_weight2", 1.0))),
        loss_weight_model1=float(mc.get("loss_weight_model1", 0.5)),
    )
    for key in ("ctc_weight", "ctc_weight2", "ctc2_weight"):
        if float(mc.get(key, 0.0)) != 0.0:
            raise ModelDirError(
                f"config.yaml: model_conf.{key}={mc[key]} unsupported (UniASR ja uses no CTC)"
            )
    return UniASRConfig(
        frontend=frontend,
        encoder=enc,
        encoder2=enc2,
        decoder=_decoder(_need(raw, "decoder_conf", "root"), vocab_size, enc.output_dim),
        decoder2=_decoder(_need(raw, "decoder2_conf", "root"), vocab_size, enc2.output_dim),
        predictor=_predictor(raw.get("predictor_conf") or {}),
        predictor2=_predictor(raw.get("predictor2_conf") or {}),
        stride_conv=stride_conv,
        loss=loss,
    )


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ModelDirError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} is not a YAML mapping")
    return data


def _tokens(path: Path, raw: dict) -> tuple[str, ...]:
    tokens_json = path / "tokens.json"
    if tokens_json.exists():
        try:
            tokens = json.loads(tokens_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelDirError(f"cannot read {tokens_json}: {e}") from e
    elif isinstance(raw.get("token_list"), list):
        tokens = raw["token_list"]
    else:
        raise ModelDirError(f"{path}: no tokens.json and config.yaml has no inline token_list")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or len(tokens) < 4:
        raise ModelDirError(f"{path}: the token list must be a list of at least 4 strings")
    if tokens[:3] != ["<blank>", "<s>", "</s>"]:
        raise ModelDirError(f"{path}: tokens 0..2 are {tokens[:3]}, expected ['<blank>', '<s>', '</s>']")
    return tuple(tokens)


def _decoding(path: Path) -> DecodingDefaults:
    f = path / DECODING_FILE
    if not f.exists():
        return DecodingDefaults()
    d = _read_yaml(f)
    ind, dmode = int(d.get("decoding_ind", 0)), d.get("decoding_mode", "model2")
    mode = "fast" if dmode == "model1" else ("offline" if ind == 1 else "normal")
    convert = d.get("convert_kana", False)
    if not isinstance(convert, bool):
        raise ModelDirError(f"{f}: convert_kana={convert!r}; expected true or false")
    return DecodingDefaults(int(d.get("beam_size", 5)), int(d.get("token_num_relax", 5)), mode, convert)


def write_decoding(model_dir: str | Path, decoding: DecodingDefaults) -> Path:
    """Write `decoding.yaml` into a model dir so that `read_model_dir` gives back `decoding`."""
    out = Path(model_dir) / DECODING_FILE
    fields = {
        "beam_size": decoding.beam_size,
        "token_num_relax": decoding.token_num_relax,
        "decoding_mode": "model1" if decoding.mode == "fast" else "model2",
        "decoding_ind": 1 if decoding.mode == "offline" else 0,
    }
    if decoding.convert_kana:
        fields["convert_kana"] = True
    out.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")
    return out


def _checkpoint(path: Path) -> Path:
    names = list(CHECKPOINT_NAMES)
    meta = path / "configuration.json"
    if meta.exists():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            name = (info.get("model") or {}).get("am_model_name") or (info.get("file_path_metas") or {}).get(
                "init_param"
            )
            if isinstance(name, str):
                names.insert(0, name)
        except (OSError, ValueError) as e:
            raise ModelDirError(f"cannot read {meta}: {e}") from e
    for name in names:
        if (path / name).is_file():
            return path / name
    raise ModelDirError(f"{path}: no checkpoint file (looked for {', '.join(dict.fromkeys(names))})")


def read_model_dir(path: str | Path) -> ModelDir:
    """Inspect a FunASR 1.x or ModelScope 0.x model directory (no weights loaded yet)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"model directory {str(path)!r} does not exist or is not a directory")
    cfg_path = path / "config.yaml"
    if not cfg_path.is_file():
        raise ModelDirError(f"{path}: missing config.yaml")
    raw = _read_yaml(cfg_path)
    tokens = _tokens(path, raw)
    cmvn = path / "am.mvn"
    if not cmvn.is_file():
        raise ModelDirError(f"{path}: missing am.mvn (CMVN statistics)")
    config = parse_config(raw, len(tokens))
    layout = "funasr" if (path / "tokens.json").exists() else "modelscope"
    return ModelDir(path, config, tokens, cmvn, _checkpoint(path), _decoding(path), layout)


# --- state_dict names -------------------------------------------------------------------------------------

_ENCODER_LAYER = (
    ("attn.qkv.", "self_attn.linear_q_k_v."),
    ("attn.out.", "self_attn.linear_out."),
    ("attn.fsmn.", "self_attn.fsmn_block."),
    ("ffn.w1.", "feed_forward.w_1."),
    ("ffn.w2.", "feed_forward.w_2."),
    ("norm_attn.", "norm1."),
    ("norm_ffn.", "norm2."),
)
_DECODER_FFN = (("w1.", "w_1."), ("norm.", "norm."), ("w2.", "w_2."))
_DECODER_BLOCK = (
    ("fsmn.", "self_attn.fsmn_block."),
    ("norm_ffn.", "norm1."),
    ("norm_fsmn.", "norm2."),
    ("norm_cross.", "norm3."),
    ("cross.q.", "src_attn.linear_q."),
    ("cross.kv.", "src_attn.linear_k_v."),
    ("cross.out.", "src_attn.linear_out."),
) + tuple(("ffn." + a, "feed_forward." + b) for a, b in _DECODER_FFN)
_DECODER_TOP = (
    (
        ("embed.", "embed.0."),
        ("input_norm.", "embed_concat_ffn.0.norm1."),
        ("output_ffn_norm.", "decoders3.0.norm1."),
        ("final_norm.", "after_norm."),
        ("output.", "output_layer."),
    )
    + tuple(("input_ffn." + a, "embed_concat_ffn.0.feed_forward." + b) for a, b in _DECODER_FFN)
    + tuple(("output_ffn." + a, "decoders3.0.feed_forward." + b) for a, b in _DECODER_FFN)
)
_PREDICTOR = (("conv.", "cif_conv1d."), ("proj.", "cif_output."))


def _swap(rest: str, table: tuple[tuple[str, str], ...], key: str) -> str:
    for ours, theirs in table:
        if rest.startswith(ours):
            return theirs + rest[len(ours) :]
    raise KeyError(f"no FunASR name for parameter {key!r}")


def to_funasr_key(key: str, config: UniASRConfig) -> str:
    """Our state_dict key -> FunASR's (the same for 1.x and 0.x checkpoints)."""
    top, _, rest = key.partition(".")
    if top in ("encoder", "encoder2"):
        m = re.match(r"layers\.(\d+)\.(.*)", rest)
        if m:
            i = int(m.group(1))
            layer = "encoders0.0." if i == 0 else f"encoders.{i - 1}."
            return f"{top}.{layer}{_swap(m.group(2), _ENCODER_LAYER, key)}"
        return f"{top}.{_swap(rest, (('final_norm.', 'after_norm.'),), key)}"
    if top in ("decoder", "decoder2"):
        m = re.match(r"blocks\.(\d+)\.(.*)", rest)
        if m:
            i, att = int(m.group(1)), getattr(config, top).att_layer_num
            block = f"decoders.{i}." if i < att else f"decoders2.{i - att}."
            return f"{top}.{block}{_swap(m.group(2), _DECODER_BLOCK, key)}"
        return f"{top}.{_swap(rest, _DECODER_TOP, key)}"
    if top in ("predictor", "predictor2"):
        return f"{top}.{_swap(rest, _PREDICTOR, key)}"
    if top == "stride_conv":
        return key
    raise KeyError(f"no FunASR name for parameter {key!r}")


def torch_load_problem(e: Exception) -> str:
    """What a failed `torch.load(weights_only=True)` says about the file, in our words: torch's own message
    advises loading with weights_only=False, which runs any code the file holds; never pass that on."""
    text = str(e)
    if "Weights only load failed" in text:
        found = [line.strip() for line in text.splitlines() if "unsupported" in line.lower()]
        detail = f" ({found[0]})" if found else ""
        if "GLOBAL" not in detail:
            return f"it is not a torch file{detail}"
        return (
            f"it holds Python objects other than tensors{detail}; uniasr loads only files of plain tensors "
            "(as `torch.save(model.state_dict())` writes them) and never runs code from a file"
        )
    if "central directory" in text or "zip archive" in text:
        return "it is truncated or damaged (its zip archive is incomplete); copy or save it again"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"it is not a torch file ({type(e).__name__}: {first})"


def load_funasr_state_dict(model: torch.nn.Module, checkpoint: Path, config: UniASRConfig) -> None:
    """Strictly load a FunASR checkpoint into our model; any missing/unexpected key or shape is an error."""
    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ModelDirError(f"cannot read checkpoint {checkpoint}: {torch_load_problem(e)}") from e
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ModelDirError(f"checkpoint {checkpoint} does not hold a state_dict")
    ours = model.state_dict()
    names = {to_funasr_key(k, config): k for k in ours}
    missing = sorted(set(names) - set(state))
    unexpected = sorted(set(state) - set(names))
    if missing or unexpected:
        raise ModelDirError(
            f"checkpoint {checkpoint} does not match config.yaml: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    converted = {}
    for theirs, key in names.items():
        tensor = state[theirs]
        if tuple(tensor.shape) != tuple(ours[key].shape):
            raise ModelDirError(
                f"checkpoint {checkpoint}: {theirs} has shape {list(tensor.shape)}, "
                f"config.yaml implies {list(ours[key].shape)}"
            )
        converted[key] = tensor.to(torch.float32)
    model.load_state_dict(converted, strict=True)


def funasr_state_dict(model: torch.nn.Module, config: UniASRConfig) -> dict[str, torch.Tensor]:
    """Our model's weights under FunASR's names (what `model.pt` holds)."""
    return {to_funasr_key(k, config): v.detach().cpu().clone() for k, v in model.state_dict().items()}


# --- writing FunASR 1.x model dirs --------------------------------------------------------------------------


def _encoder_conf(enc: EncoderConfig) -> dict:
    return {
        "output_size": enc.output_dim,
        "attention_heads": enc.attention_heads,
        "linear_units": enc.linear_units,
        "num_blocks": enc.num_blocks,
        "dropout_rate": enc.dropout,
        "positional_dropout_rate": enc.dropout,
        "attention_dropout_rate": enc.attention_dropout,
        "input_layer": "pe",
        "pos_enc_class": "SinusoidalPositionEncoder",
        "normalize_before": True,
        "kernel_size": enc.kernel_size,
        "sanm_shfit": 0,
        "selfattention_layer_type": "sanm",
        "chunk_size": [c.chunk_size for c in enc.chunks],
        "stride": [c.stride for c in enc.chunks],
        "pad_left": [c.pad_left for c in enc.chunks],
        "encoder_att_look_back_factor": [c.encoder_look_back for c in enc.chunks],
        "decoder_att_look_back_factor": [c.decoder_look_back for c in enc.chunks],
    }


def _decoder_conf(dec: DecoderConfig) -> dict:
    return {
        "attention_dim": dec.attention_dim,
        "attention_heads": dec.attention_heads,
        "linear_units": dec.linear_units,
        "num_blocks": dec.num_blocks,
        "dropout_rate": dec.dropout,
        "positional_dropout_rate": dec.dropout,
        "self_attention_dropout_rate": dec.dropout,
        "src_attention_dropout_rate": dec.dropout,
        "att_layer_num": dec.att_layer_num,
        "kernel_size": dec.kernel_size,
        "concat_embeds": True,
    }


def config_to_funasr(cfg: UniASRConfig) -> dict:
    """UniASRConfig -> a FunASR 1.x config.yaml mapping (what `AutoModel` reads)."""
    fe, loss, sc = cfg.frontend, cfg.loss, cfg.stride_conv
    return {
        "model": "UniASR",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": loss.lsm_weight,
            "length_normalized_loss": loss.length_normalized_loss,
            "predictor_weight": loss.predictor_weight,
            "predictor2_weight": loss.predictor2_weight,
            "decoder_attention_chunk_type": "chunk",
            "decoder_attention_chunk_type2": "chunk",
            "loss_weight_model1": loss.loss_weight_model1,
        },
        "encoder": "SANMEncoderChunkOpt",
        "encoder_conf": _encoder_conf(cfg.encoder),
        "decoder": "FsmnDecoderSCAMAOpt",
        "decoder_conf": _decoder_conf(cfg.decoder),
        "predictor": "CifPredictorV2",
        "predictor_conf": {
            "idim": cfg.predictor.dim,
            "threshold": cfg.predictor.threshold,
            "l_order": cfg.predictor.l_order,
            "r_order": cfg.predictor.r_order,
        },
        "encoder2": "SANMEncoderChunkOpt",
        "encoder2_conf": _encoder_conf(cfg.encoder2),
        "decoder2": "FsmnDecoderSCAMAOpt",
        "decoder2_conf": _decoder_conf(cfg.decoder2),
        "predictor2": "CifPredictorV2",
        "predictor2_conf": {
            "idim": cfg.predictor2.dim,
            "threshold": cfg.predictor2.threshold,
            "l_order": cfg.predictor2.l_order,
            "r_order": cfg.predictor2.r_order,
        },
        "stride_conv": "stride_conv1d",
        "stride_conv_conf": {
            "kernel_size": sc.kernel_size,
            "stride": sc.stride,
            "pad": [sc.pad_left, sc.pad_right],
        },
        "frontend": "WavFrontend",
        "frontend_conf": {
            "fs": fe.sample_rate,
            "window": fe.window,
            "n_mels": fe.n_mels,
            "frame_length": fe.frame_length_ms,
            "frame_shift": fe.frame_shift_ms,
            "lfr_m": fe.lfr_m,
            "lfr_n": fe.lfr_n,
            "dither": 0.0,
        },
        "specaug": "SpecAugLFR",
        "specaug_conf": {
            "apply_time_warp": False,
            "time_warp_window": 5,
            "time_warp_mode": "bicubic",
            "apply_freq_mask": True,
            "freq_mask_width_range": [0, 30],
            "lfr_rate": fe.lfr_n,
            "num_freq_mask": 1,
            "apply_time_mask": True,
            "time_mask_width_range": [0, 12],
            "num_time_mask": 1,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
        "normalize": None,
        "input_size": fe.feature_dim,
    }


def save_model_dir(
    model: torch.nn.Module,
    config: UniASRConfig,
    tokens: list[str] | tuple[str, ...],
    cmvn_path: str | Path,
    out_dir: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write a FunASR 1.x model dir (config.yaml, model.pt, tokens.json, am.mvn)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite a model dir")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "config.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(config_to_funasr(config), f, allow_unicode=True, sort_keys=False)
    import torch

    torch.save(funasr_state_dict(model, config), out / "model.pt")
    (out / "tokens.json").write_text(json.dumps(list(tokens), ensure_ascii=False, indent=0), encoding="utf-8")
    if Path(cmvn_path).resolve() != (out / "am.mvn").resolve():
        (out / "am.mvn").write_bytes(Path(cmvn_path).read_bytes())
    return out
