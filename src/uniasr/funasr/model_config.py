"""FunASR's config.yaml (1.x, and the 0.x files ModelScope ships) <-> UniASRConfig.

Reading checks the class names (`model: UniASR`, `encoder: SANMEncoderChunkOpt`, ...) and refuses options
this implementation does not have (CTC weights, other input layers), naming the key; writing gives the
mapping FunASR 1.x `AutoModel` reads (spec §2, §4).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from uniasr.audio.features import FrontendConfig
from uniasr.funasr.files import ModelDirError, write_yaml
from uniasr.funasr.frontend_conf import frontend_conf, frontend_fields
from uniasr.model.config import (
    ChunkConfig,
    DecoderConfig,
    EncoderConfig,
    LossConfig,
    PredictorConfig,
    StrideConvConfig,
    UniASRConfig,
)

SUPPORTED_MODELS = {"UniASR", "uniasr"}
ENCODERS = {"SANMEncoderChunkOpt", "sanm_chunk_opt"}
DECODERS = {"FsmnDecoderSCAMAOpt", "fsmn_scama_opt"}
PREDICTORS = {"CifPredictorV2", "cif_predictor_v2"}


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
    f = {**asdict(FrontendConfig()), **frontend_fields(conf)}
    return FrontendConfig(
        sample_rate=int(f["sample_rate"]),
        n_mels=int(f["n_mels"]),
        frame_length_ms=float(f["frame_length_ms"]),
        frame_shift_ms=float(f["frame_shift_ms"]),
        window=str(f["window"]),
        lfr_m=int(f["lfr_m"]),
        lfr_n=int(f["lfr_n"]),
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
        "frontend_conf": frontend_conf({**asdict(fe), "dither": 0.0}),
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


def write_config_yaml(config: UniASRConfig, path: str | Path) -> Path:
    """Write `config_to_funasr(config)` as a config.yaml (read back by `parse_config`)."""
    return write_yaml(config_to_funasr(config), path)
