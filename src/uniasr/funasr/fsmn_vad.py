"""FunASR's FSMN-VAD names: model dir files, config.yaml keys, state_dict keys, and FunASR's streaming
output format.

A FunASR ``fsmn-vad`` model dir holds ``config.yaml`` (``model: FsmnVADStreaming`` with ``model_conf``,
``encoder: FSMN`` with ``encoder_conf``, ``frontend: WavFrontendOnline`` with ``frontend_conf``),
``model.pt`` (a torch state_dict with ``encoder.*`` keys) and ``am.mvn`` (Kaldi nnet1 CMVN).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uniasr.audio.features import Cmvn
from uniasr.funasr.files import read_state_dict, read_yaml
from uniasr.funasr.frontend_conf import frontend_fields
from uniasr.vad.base import VadEvent
from uniasr.vad.fsmn_endpoint import EndpointConfig
from uniasr.vad.fsmn_frontend import FsmnFrontendConfig
from uniasr.vad.fsmn_model import FsmnEncoderConfig

logger = logging.getLogger(__name__)

__all__ = [
    "FSMN_VAD_FILES",
    "FsmnVadFiles",
    "read_fsmn_vad_dir",
    "state_dict_from_funasr",
    "to_funasr_events",
]

FSMN_VAD_FILES = ("config.yaml", "model.pt", "am.mvn")
_MODEL_CLASSES = ("FsmnVADStreaming", "FsmnVAD")
_FRONTEND_CLASSES = ("WavFrontendOnline", "WavFrontend", "wav_frontend")

# model_conf key -> EndpointConfig field (converter)
_ENDPOINT_KEYS: dict[str, tuple[str, Any]] = {
    "max_end_silence_time": ("max_end_silence_ms", int),
    "max_start_silence_time": ("max_start_silence_ms", int),
    "window_size_ms": ("window_ms", int),
    "sil_to_speech_time_thres": ("sil_to_speech_ms", int),
    "speech_to_sil_time_thres": ("speech_to_sil_ms", int),
    "speech_2_noise_ratio": ("speech_to_noise_ratio", float),
    "do_extend": ("extend", bool),
    "lookback_time_start_point": ("lookback_start_ms", int),
    "lookahead_time_end_point": ("lookahead_end_ms", int),
    "max_single_segment_time": ("max_segment_ms", int),
    "snr_thres": ("snr_thres", float),
    "noise_frame_num_used_for_snr": ("noise_frames_for_snr", int),
    "decibel_thres": ("decibel_thres", float),
    "speech_noise_thres": ("speech_noise_thres", float),
    "fe_prior_thres": ("fe_prior_thres", float),
    "sil_pdf_ids": ("sil_pdf_ids", lambda ids: tuple(int(i) for i in ids)),
    "frame_in_ms": ("frame_ms", int),
}
# model_conf keys that FunASR's Python VAD reads but that change nothing in its decisions
_NO_EFFECT_KEYS = {
    "snr_mode",
    "do_start_point_detection",
    "do_end_point_detection",
    "speech_noise_thresh_low",
    "speech_noise_thresh_high",
    "output_frame_probs",
    "nn_eval_block_size",
    "dcd_block_size",
}
_ENCODER_KEYS = {
    "input_dim": "input_dim",
    "input_affine_dim": "input_affine_dim",
    "fsmn_layers": "num_layers",
    "linear_dim": "linear_dim",
    "proj_dim": "proj_dim",
    "lorder": "lorder",
    "rorder": "rorder",
    "lstride": "lstride",
    "rstride": "rstride",
    "output_affine_dim": "output_affine_dim",
    "output_dim": "output_dim",
}


@dataclass(frozen=True)
class FsmnVadFiles:
    """Everything read from a FunASR fsmn-vad dir, already in uniasr terms."""

    encoder: FsmnEncoderConfig
    frontend: FsmnFrontendConfig
    endpoint: EndpointConfig
    state_dict: dict[str, Any]  # uniasr FsmnEncoder keys
    cmvn: Cmvn


def read_fsmn_vad_dir(model_dir: str | Path) -> FsmnVadFiles:
    """Read a FunASR fsmn-vad model dir; errors name the missing file or offending key."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"FSMN-VAD model dir {str(model_dir)!r} does not exist or is not a directory")
    missing = [name for name in FSMN_VAD_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"FSMN-VAD model dir {str(model_dir)!r} lacks {', '.join(missing)}; "
            f"a FunASR fsmn-vad dir holds {', '.join(FSMN_VAD_FILES)}"
        )
    config = read_yaml(model_dir / "config.yaml")
    if config.get("model") not in _MODEL_CLASSES:
        raise ValueError(
            f"{model_dir / 'config.yaml'}: model={config.get('model')!r} is not an FSMN VAD "
            f"(expected one of {_MODEL_CLASSES})"
        )
    if config.get("encoder", "FSMN") != "FSMN":
        raise ValueError(f"{model_dir / 'config.yaml'}: encoder={config.get('encoder')!r}; expected 'FSMN'")
    frontend = frontend_config_from_funasr(config)
    endpoint = endpoint_config_from_funasr(config.get("model_conf") or {}, frontend)
    encoder = encoder_config_from_funasr(config.get("encoder_conf") or {})
    raw = read_state_dict(model_dir / "model.pt", "FSMN-VAD weights")
    cmvn = Cmvn.from_file(model_dir / "am.mvn")
    if cmvn.dim != frontend.feature_dim:
        raise ValueError(
            f"{model_dir / 'am.mvn'} has {cmvn.dim} dims but the frontend makes "
            f"{frontend.feature_dim} (n_mels {frontend.n_mels} x lfr_m {frontend.lfr_m})"
        )
    return FsmnVadFiles(encoder, frontend, endpoint, state_dict_from_funasr(raw), cmvn)


def frontend_config_from_funasr(config: Mapping[str, Any]) -> FsmnFrontendConfig:
    name = config.get("frontend", "WavFrontendOnline")
    if name not in _FRONTEND_CLASSES:
        raise ValueError(f"frontend={name!r} is not supported; expected one of {_FRONTEND_CLASSES}")
    conf = dict(config.get("frontend_conf") or {})
    if conf.get("snip_edges", True) is not True or conf.get("upsacle_samples", True) is not True:
        raise ValueError("frontend_conf: snip_edges and upsacle_samples must be true for FSMN-VAD")
    return FsmnFrontendConfig(**frontend_fields(conf))


def endpoint_config_from_funasr(
    model_conf: Mapping[str, Any], frontend: FsmnFrontendConfig
) -> EndpointConfig:
    values: dict[str, Any] = {}
    for key, value in model_conf.items():
        if key in _ENDPOINT_KEYS:
            name, convert = _ENDPOINT_KEYS[key]
            values[name] = convert(value)
        elif key == "detect_mode":
            if int(value) not in (0, 1):
                raise ValueError(f"model_conf.detect_mode={value}; valid: 0 (single utterance), 1 (multiple)")
            values["single_utterance"] = int(value) == 0
        elif key not in _NO_EFFECT_KEYS | {"sample_rate", "silence_pdf_num", "frame_length_ms"}:
            logger.warning("FSMN-VAD model_conf key %r is unknown and ignored", key)
    _check_same(model_conf, "sample_rate", frontend.sample_rate, "frontend_conf.fs")
    _check_same(model_conf, "frame_length_ms", frontend.frame_length_ms, "frontend_conf.frame_length")
    _check_same(model_conf, "frame_in_ms", frontend.frame_shift_ms, "frontend_conf.frame_shift")
    endpoint = EndpointConfig(**values)
    if "silence_pdf_num" in model_conf and int(model_conf["silence_pdf_num"]) != len(endpoint.sil_pdf_ids):
        raise ValueError(
            f"model_conf.silence_pdf_num={model_conf['silence_pdf_num']} but sil_pdf_ids has "
            f"{len(endpoint.sil_pdf_ids)} entries"
        )
    return endpoint


def encoder_config_from_funasr(encoder_conf: Mapping[str, Any]) -> FsmnEncoderConfig:
    unknown = sorted(set(encoder_conf) - set(_ENCODER_KEYS) - {"use_softmax"})
    if unknown:
        raise ValueError(f"encoder_conf has unknown keys {unknown}; known: {sorted(_ENCODER_KEYS)}")
    if encoder_conf.get("use_softmax", True) is not True:
        raise ValueError("encoder_conf.use_softmax=false is not supported: the VAD reads posteriors")
    return FsmnEncoderConfig(
        **{_ENCODER_KEYS[k]: int(v) for k, v in encoder_conf.items() if k in _ENCODER_KEYS}
    )


_KEY_PATTERNS = [
    (re.compile(r"^encoder\.in_linear([12])\.linear\.(weight|bias)$"), r"in_affine\1.\2"),
    (re.compile(r"^encoder\.out_linear([12])\.linear\.(weight|bias)$"), r"out_affine\1.\2"),
    (re.compile(r"^encoder\.fsmn\.(\d+)\.linear\.linear\.weight$"), r"layers.\1.proj.weight"),
    (re.compile(r"^encoder\.fsmn\.(\d+)\.affine\.linear\.(weight|bias)$"), r"layers.\1.affine.\2"),
    (re.compile(r"^encoder\.fsmn\.(\d+)\.fsmn_block\.conv_left\.weight$"), r"layers.\1.memory"),
]


def state_dict_from_funasr(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """FunASR ``FsmnVADStreaming`` keys (`read_state_dict` took off any wrapper) ->
    :class:`~uniasr.vad.fsmn_model.FsmnEncoder` keys.

    The memory kernels ``conv_left.weight`` [C, 1, lorder, 1] become [C, lorder].
    """
    converted: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        for pattern, replacement in _KEY_PATTERNS:
            if pattern.match(key):
                new_key = pattern.sub(replacement, key)
                converted[new_key] = (
                    tensor.reshape(tensor.shape[0], -1) if new_key.endswith("memory") else tensor
                )
                break
        else:
            raise ValueError(f"model.pt key {key!r} is not part of a FunASR FSMN-VAD encoder")
    return converted


def to_funasr_events(events: Iterable[VadEvent]) -> list[list[int]]:
    """Events in FunASR's streaming format: ``[beg, -1]``, ``[-1, end]``, or ``[beg, end]`` when a
    segment opens and closes within the same list."""
    out: list[list[int]] = []
    for event in events:
        if event.kind == "start":
            out.append([event.start_ms, -1])
        elif out and out[-1] == [event.start_ms, -1]:
            out[-1] = [event.start_ms, int(event.end_ms or 0)]
        else:
            out.append([-1, int(event.end_ms or 0)])
    return out


def _check_same(model_conf: Mapping[str, Any], key: str, expected: int, other: str) -> None:
    if key in model_conf and int(model_conf[key]) != int(expected):
        raise ValueError(
            f"model_conf.{key}={model_conf[key]} differs from {other}={expected}; they must match"
        )
