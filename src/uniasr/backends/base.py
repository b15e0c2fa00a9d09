"""The backend protocol: the numeric primitives the backend-neutral recognition code calls.

Arrays crossing the protocol are numpy (float32 unless noted), except the decoder memory (`project_memory`)
and the step scorer's caches, which stay in the backend's own format (torch tensors on the model's device,
numpy for onnxruntime) because only the backend's own scorer reads them. Shapes: NB blocks, C chunk rows,
D model dims, L look-back blocks, M history blocks, H heads, S stride, dk head dim, A decoder dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from uniasr.decode.memory import DecoderMemory
    from uniasr.decode.search import StepScorer
    from uniasr.model.config import EncoderConfig, UniASRConfig

History = tuple[np.ndarray, np.ndarray]
"""Encoder look-back keys and values, each [layers, M, H, S, dk]: the first S rows of M earlier blocks."""


def empty_history(cfg: EncoderConfig, stride: int) -> History:
    """No earlier blocks: keys/values [layers, 0, H, S, dk]."""
    shape = (cfg.num_blocks, 0, cfg.attention_heads, stride, cfg.output_dim // cfg.attention_heads)
    return np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)


@runtime_checkable
class AcousticBackend(Protocol):
    """The model's numeric pieces. `pass_index` 1 selects encoder/predictor/decoder, 2 the second pass."""

    name: str
    model: Any
    """The torch module the backend runs (None for onnxruntime)."""
    device: Any
    """Where it runs: torch: the model's device (assignable: moves the model); onnxruntime: "cpu"."""

    @property
    def config(self) -> UniASRConfig:
        """The model's configuration (read-only)."""

    def features_array(self, feats: np.ndarray) -> Any:
        """CMVN'd LFR features [T, F] as `Recognizer.features` hands them out (torch: a tensor)."""

    def embed(self, pass_index: int, feats: np.ndarray, start: int) -> np.ndarray:
        """Encoder input [t, F] -> scaled by sqrt(D) plus sinusoidal positions start+1 ... start+t."""

    def encode_blocks(
        self,
        pass_index: int,
        blocks: np.ndarray,
        valid: np.ndarray,
        look_back: np.ndarray | None = None,
        history: History | None = None,
    ) -> tuple[np.ndarray, History | None]:
        """All encoder layers on independent blocks.

        blocks [NB, C, Din] embedded input (zero outside the utterance), valid [NB, C] bool. With encoder
        look-back, `look_back` [NB, L] int64 indexes cat(history blocks, these blocks) (-1: none) and
        `history` holds the M earlier blocks (M may be 0); S is the chunk stride. Returns out [NB, C, D]
        and, with look-back, the keys/values of these blocks' first S rows [layers, NB, H, S, dk].
        """

    def predictor_alphas(
        self, pass_index: int, blocks: np.ndarray, valid: np.ndarray, centre: np.ndarray
    ) -> np.ndarray:
        """Encoder output blocks [NB, C, D], valid/centre [NB, C] bool -> alphas [NB, C] (0 off-centre)."""

    def token_count(self, chunked_alphas: np.ndarray) -> float:
        """Σα of one utterance's alphas in FunASR's chunked layout [Tc], in the framework's float32 sum."""

    def stride_conv(self, window: np.ndarray) -> np.ndarray:
        """Zero-padded window [t, F + D] of cat(features, encoder-1 output) -> ReLU(conv) rows [t', F + D]."""

    def project_memory(self, pass_index: int, rows: np.ndarray) -> list[tuple[Any, Any]]:
        """Encoder output rows [R, D] -> per cross-attention block (keys, values) [R, A], backend-owned."""

    def scorer(self, pass_index: int, memories: Sequence[DecoderMemory]) -> StepScorer:
        """A `StepScorer` over this pass's decoder for a batch of utterances."""

    def inference(self) -> AbstractContextManager:
        """Context for a batch of model work (torch: inference mode)."""

    def decoding(self, pass_index: int) -> AbstractContextManager:
        """Context for this pass's decoder step loop (torch: one intra-op thread for small decoders)."""
