"""FunASR's parameter names <-> ours, for UniASR checkpoints (the same names in 1.x `model.pt` and 0.x
`model.pb`): strict loading that names every missing key or wrong shape, and the weights under FunASR's
names for writing (spec §5)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from uniasr.funasr.files import ModelDirError, read_state_dict
from uniasr.model.config import UniASRConfig

if TYPE_CHECKING:  # torch is imported where weights are read or written: model dirs parse without it
    import torch

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


def load_funasr_state_dict(model: torch.nn.Module, checkpoint: Path, config: UniASRConfig) -> None:
    """Strictly load a FunASR checkpoint into our model; any missing/unexpected key or shape is an error."""
    import torch

    state = read_state_dict(checkpoint, "checkpoint")
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
