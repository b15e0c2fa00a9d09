"""What the SCAMA decoder attends to at each step (spec §3.5.1), backend-neutral (numpy).

A decoding step i reads the CIF embedding of token i and cross-attends to the rows of the block where
token min(i, Ntok-1) fires plus the centre rows of the `look_back` blocks before it. The projected keys and
values (`kv`) belong to the backend that made them (torch tensors, numpy arrays for onnxruntime); the
row selection is `uniasr.model.layout.scama_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uniasr.model.layout import ChunkGeometry, scama_rows


@dataclass
class DecoderMemory:
    """One utterance's encoder output as its pass's decoder sees it.

    kv: per cross-attention block (keys, values) [N*C, A], owned by the backend; valid [N*C] bool;
    token_blocks [Ntok] int64 (the block each CIF token fires in); cif_embeds [R, D] float32;
    token_num: Σα (sets the number of decoding steps).
    """

    kv: list[tuple[Any, Any]]
    valid: np.ndarray
    layout: ChunkGeometry
    token_blocks: np.ndarray
    look_back: int
    cif_embeds: np.ndarray
    token_num: float

    def step_rows(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Key rows [M] and their mask [M] for decoding step `step` (see `scama_rows`)."""
        return scama_rows(self.token_blocks, step, self.layout, self.look_back, self.valid)

    def cif_row(self, step: int) -> np.ndarray:
        """CIF embedding [D] of step `step`; zeros past the last fired token."""
        if step < self.cif_embeds.shape[0]:
            return self.cif_embeds[step]
        return np.zeros(self.cif_embeds.shape[1], dtype=np.float32)
