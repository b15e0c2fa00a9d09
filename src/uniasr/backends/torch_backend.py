"""The PyTorch modules as an `AcousticBackend`.

numpy <-> torch conversions at the protocol boundary are zero-copy on CPU (`torch.from_numpy`,
`Tensor.numpy()`); on another device the arrays are moved. The decoder memory and the scorer's FSMN caches
stay torch tensors on the model's device, so the step loop never converts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
import torch

from uniasr.backends.base import History
from uniasr.decode.memory import DecoderMemory
from uniasr.decode.scorer import TorchScorer, few_threads_if_small
from uniasr.model.config import UniASRConfig
from uniasr.model.encoder import LookBack
from uniasr.model.uniasr import ScamaMemory, UniASR


class TorchBackend:
    """A `UniASR` module in eval mode on `device`."""

    name = "torch"

    def __init__(self, model: UniASR, device: str | torch.device = "cpu") -> None:
        self._device = torch.device(device)
        self.model = model.eval().requires_grad_(False).to(self._device)

    @property
    def config(self) -> UniASRConfig:
        return self.model.cfg

    @property
    def device(self) -> torch.device:
        return self._device

    @device.setter
    def device(self, device: str | torch.device) -> None:
        self._device = torch.device(device)
        self.model.to(self._device)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self._device)

    @staticmethod
    def _array(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    def features_array(self, feats: np.ndarray) -> torch.Tensor:
        return self._tensor(feats)

    @torch.inference_mode()
    def embed(self, pass_index: int, feats: np.ndarray, start: int) -> np.ndarray:
        encoder, _, _ = self.model.pass_modules(pass_index)
        return self._array(encoder.embed(self._tensor(feats), start))

    @torch.inference_mode()
    def encode_blocks(
        self,
        pass_index: int,
        blocks: np.ndarray,
        valid: np.ndarray,
        look_back: np.ndarray | None = None,
        history: History | None = None,
    ) -> tuple[np.ndarray, History | None]:
        encoder, _, _ = self.model.pass_modules(pass_index)
        if look_back is None:
            out, _ = encoder.forward_blocks(self._tensor(blocks), self._tensor(valid))
            return self._array(out), None
        if history is None:
            raise ValueError("encoder look-back needs a history (keys, values) [layers, M, H, S, dk]")
        stride = history[0].shape[3]
        hist = None
        if history[0].shape[1]:
            hk, hv = self._tensor(history[0]), self._tensor(history[1])
            hist = [(hk[i], hv[i]) for i in range(hk.shape[0])]
        lb = LookBack(self._tensor(look_back), stride)
        out, heads = encoder.forward_blocks(self._tensor(blocks), self._tensor(valid), lb, hist)
        new_k = torch.stack([k[:, :, :stride] for k, _ in heads])
        new_v = torch.stack([v[:, :, :stride] for _, v in heads])
        return self._array(out), (self._array(new_k), self._array(new_v))

    @torch.inference_mode()
    def predictor_alphas(
        self, pass_index: int, blocks: np.ndarray, valid: np.ndarray, centre: np.ndarray
    ) -> np.ndarray:
        _, predictor, _ = self.model.pass_modules(pass_index)
        alphas = predictor.alphas(self._tensor(blocks), self._tensor(valid), self._tensor(centre))
        return self._array(alphas)

    def token_count(self, chunked_alphas: np.ndarray) -> float:
        return float(torch.from_numpy(np.ascontiguousarray(chunked_alphas)).sum().item())

    @torch.inference_mode()
    def stride_conv(self, window: np.ndarray) -> np.ndarray:
        return self._array(self.model.stride_conv.forward_window(self._tensor(window)))

    @torch.inference_mode()
    def project_memory(self, pass_index: int, rows: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        _, _, decoder = self.model.pass_modules(pass_index)
        return decoder.project_memory(self._tensor(rows))

    def scorer(self, pass_index: int, memories: Sequence[DecoderMemory]) -> TorchScorer:
        _, _, decoder = self.model.pass_modules(pass_index)
        return TorchScorer(decoder, [self._scama_memory(m) for m in memories])

    def _scama_memory(self, m: DecoderMemory) -> ScamaMemory:
        return ScamaMemory(
            kv=m.kv,
            valid=torch.from_numpy(m.valid),
            layout=m.layout,
            token_blocks=torch.from_numpy(np.asarray(m.token_blocks, dtype=np.int64)),
            look_back=m.look_back,
            cif_embeds=self._tensor(m.cif_embeds),
            token_num=m.token_num,
        )

    def inference(self) -> torch.inference_mode:
        return torch.inference_mode()

    def decoding(self, pass_index: int) -> AbstractContextManager:
        _, _, decoder = self.model.pass_modules(pass_index)
        return few_threads_if_small(decoder)
