"""Frozen configuration dataclasses for the UniASR model.

These hold our own names only; `uniasr.funasr` translates FunASR / ModelScope config files into them.
Frame rates: encoder 1 runs on 60 ms LFR frames, encoder 2 on those times the stride conv's stride (120 ms for
FunASR's stride 2; see `PassConfig.frame_ms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from uniasr.audio.features import FrontendConfig


@dataclass(frozen=True)
class ChunkConfig:
    """One entry of an encoder's chunk lists (selected by the decoding index `ind`).

    A chunk holds `chunk_size` frames: `pad_left` frames of left context, `stride` centre frames and
    `chunk_size - stride - pad_left` frames of right context (look-ahead). Chunk k covers frames
    `k*stride - pad_left ... k*stride - pad_left + chunk_size - 1`.
    """

    chunk_size: int
    stride: int
    pad_left: int
    encoder_look_back: int = 0
    decoder_look_back: int = 0

    def __post_init__(self) -> None:
        if self.stride <= 0:
            raise ValueError(f"chunk stride={self.stride} must be > 0")
        if self.pad_left < 0 or self.encoder_look_back < 0 or self.decoder_look_back < 0:
            raise ValueError(f"negative value in chunk config {self}")
        if self.right_context < 0:
            raise ValueError(
                f"chunk_size={self.chunk_size} is smaller than stride+pad_left="
                f"{self.stride + self.pad_left}; a chunk must hold its left context and centre"
            )

    @property
    def right_context(self) -> int:
        """Look-ahead frames of a chunk."""
        return self.chunk_size - self.stride - self.pad_left


@dataclass(frozen=True)
class EncoderConfig:
    """SAN-M chunked encoder (FunASR `SANMEncoderChunkOpt`)."""

    input_dim: int
    output_dim: int = 320
    attention_heads: int = 4
    linear_units: int = 1280
    num_blocks: int = 35
    kernel_size: int = 11
    chunks: tuple[ChunkConfig, ...] = ()
    dropout: float = 0.1
    attention_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.output_dim % self.attention_heads:
            raise ValueError(
                f"encoder output_dim={self.output_dim} is not divisible by "
                f"attention_heads={self.attention_heads}"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"encoder kernel_size={self.kernel_size} must be odd")
        if not self.chunks:
            raise ValueError("encoder needs at least one chunk configuration")

    @property
    def fsmn_pad(self) -> int:
        """F: zero rows in front of each chunk (half the FSMN kernel)."""
        return (self.kernel_size - 1) // 2

    def chunk(self, ind: int) -> ChunkConfig:
        """The chunk-list entry of decoding index `ind` (ValueError when out of range)."""
        if not 0 <= ind < len(self.chunks):
            raise ValueError(
                f"decoding index {ind} out of range: this encoder has {len(self.chunks)} entries"
            )
        return self.chunks[ind]


@dataclass(frozen=True)
class DecoderConfig:
    """SCAMA FSMN decoder (FunASR `FsmnDecoderSCAMAOpt`)."""

    vocab_size: int
    encoder_dim: int = 320
    attention_dim: int = 256
    attention_heads: int = 4
    linear_units: int = 1024
    num_blocks: int = 12
    att_layer_num: int = 6
    kernel_size: int = 11
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.attention_dim % self.attention_heads:
            raise ValueError(
                f"decoder attention_dim={self.attention_dim} is not divisible by "
                f"attention_heads={self.attention_heads}"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"decoder kernel_size={self.kernel_size} must be odd (even kernels are not causal in FunASR)"
            )
        if not 0 < self.att_layer_num <= self.num_blocks:
            raise ValueError(f"att_layer_num={self.att_layer_num} must be in 1..num_blocks={self.num_blocks}")


@dataclass(frozen=True)
class PredictorConfig:
    """CIF predictor (FunASR `CifPredictorV2`)."""

    dim: int = 320
    l_order: int = 1
    r_order: int = 1
    threshold: float = 1.0


@dataclass(frozen=True)
class StrideConvConfig:
    """Conv1d + ReLU between the passes (FunASR `Conv1dSubsampling`); dim = feature dim + encoder-1 dim."""

    dim: int
    kernel_size: int = 2
    stride: int = 2
    pad_left: int = 0
    pad_right: int = 1

    def __post_init__(self) -> None:
        if self.pad_left + self.pad_right != self.kernel_size - 1:
            raise ValueError(
                f"stride conv pad [{self.pad_left}, {self.pad_right}] with kernel {self.kernel_size} is "
                f"unsupported: the pads must add up to kernel_size-1={self.kernel_size - 1}"
            )


@dataclass(frozen=True)
class LossConfig:
    """Training objective weights (spec §7)."""

    lsm_weight: float = 0.1
    length_normalized_loss: bool = True
    predictor_weight: float = 1.0
    predictor2_weight: float = 1.0
    loss_weight_model1: float = 0.5


@dataclass(frozen=True)
class PassConfig:
    """One recognition pass (`UniASRConfig.passes`): pass 1 reads the features, pass 2 the stride conv's
    output over cat(features, encoder-1 output)."""

    index: int  # 1 or 2
    encoder: EncoderConfig
    predictor: PredictorConfig
    decoder: DecoderConfig
    frame_ms: float  # one encoder frame: the LFR frame for pass 1, times the stride conv's stride for pass 2


@dataclass(frozen=True)
class UniASRConfig:
    """The whole two-pass model."""

    frontend: FrontendConfig
    encoder: EncoderConfig
    encoder2: EncoderConfig
    decoder: DecoderConfig
    decoder2: DecoderConfig
    predictor: PredictorConfig
    predictor2: PredictorConfig
    stride_conv: StrideConvConfig
    loss: LossConfig = field(default_factory=LossConfig)

    @property
    def vocab_size(self) -> int:
        return self.decoder.vocab_size

    @cached_property
    def passes(self) -> tuple[PassConfig, PassConfig]:
        """Both passes (frames: 60 ms LFR frames for pass 1, times the stride conv stride for pass 2)."""
        lfr = self.frontend.lfr_n * self.frontend.frame_shift_ms
        return (
            PassConfig(1, self.encoder, self.predictor, self.decoder, lfr),
            PassConfig(2, self.encoder2, self.predictor2, self.decoder2, lfr * self.stride_conv.stride),
        )

    def pass_config(self, pass_index: int) -> PassConfig:
        """Pass `pass_index` (1 or 2)."""
        if pass_index not in (1, 2):
            raise ValueError(f"pass_index={pass_index}; UniASR has passes 1 and 2")
        return self.passes[pass_index - 1]

    def __post_init__(self) -> None:
        feat_dim = self.frontend.feature_dim
        if self.encoder.input_dim != feat_dim:
            raise ValueError(f"encoder input_dim={self.encoder.input_dim} != feature dim {feat_dim}")
        expect = feat_dim + self.encoder.output_dim
        if self.stride_conv.dim != expect or self.encoder2.input_dim != expect:
            raise ValueError(
                f"stride conv dim={self.stride_conv.dim} and encoder2 input_dim={self.encoder2.input_dim} "
                f"must equal feature dim + encoder output dim = {expect}"
            )
        if len(self.encoder.chunks) != len(self.encoder2.chunks):
            raise ValueError(
                f"encoder has {len(self.encoder.chunks)} chunk configs but encoder2 has "
                f"{len(self.encoder2.chunks)}; the decoding index selects one entry of both"
            )


@dataclass(frozen=True)
class DecodingDefaults:
    """Decoding settings a model directory may carry (ModelScope `decoding.yaml`)."""

    beam_size: int = 5
    token_num_relax: int = 5
    mode: str = "normal"
    # the model writes orthographic kana that `uniasr.kana_kanji` turns into kanji-kana text (uniasr's key)
    convert_kana: bool = False
    # False: a hypothesis may end only at the last step (`SearchOptions.early_end`, uniasr's key)
    early_end: bool = True
    # pass 2 favours the n-grams of pass 1's best hypothesis (`SearchOptions.agreement_*`, uniasr's keys)
    agreement_weight: float = 0.0
    agreement_order: int = 3
    # both passes' n-best rescored by both decoders (`SearchOptions.joint_*`, uniasr's keys; None: off)
    joint_pass1_weight: float | None = None
    joint_length_bonus: float = 0.0
    # ... plus this weight x the written LM's ln-probability of each candidate's conversion (convert_kana
    # models with a written LM; `ModelBundle.written_score`, uniasr's key)
    joint_written_weight: float = 0.0
