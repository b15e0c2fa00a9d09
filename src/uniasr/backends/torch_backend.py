"""The PyTorch modules as an `AcousticBackend`, and the torch decoder as a `StepScorer`.

numpy <-> torch conversions at the protocol boundary are zero-copy on CPU (`torch.from_numpy`,
`Tensor.numpy()`); on another device the arrays are moved. The decoder memory and the scorer's FSMN caches
stay torch tensors on the model's device, so the step loop never converts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import torch

from uniasr.backends.base import History
from uniasr.decode.memory import DecoderMemory
from uniasr.model.config import UniASRConfig
from uniasr.model.decoder import CrossMemory, ScamaDecoder
from uniasr.model.encoder import LookBack
from uniasr.model.uniasr import UniASR

SMALL_MODULE_PARAMS = 4_000_000


@contextmanager
def few_threads_if_small(module: torch.nn.Module) -> Iterator[None]:
    """Run a step loop on one intra-op thread when the module is small (CPU only).

    With a few rows per step, thread synchronisation costs more than it saves for small models (measured
    here with the test fixtures: 9 us vs 100 us per linear). Full-size decoders are bound by reading their
    weights each step and gain from a second thread (0.83 s -> 0.71 s for a 10 s offline decode).
    """
    param = next(module.parameters())
    small = sum(p.numel() for p in module.parameters()) < SMALL_MODULE_PARAMS
    old = torch.get_num_threads()
    change = param.device.type == "cpu" and small and old > 1
    if change:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def cross_memory(
    decoder: ScamaDecoder, memories: Sequence[DecoderMemory], counts: Sequence[int], steps: Sequence[int]
) -> CrossMemory:
    """Keys/values [Htot, H, M, dk] and mask [Htot, 1, M] for `counts[j]` hypotheses of `memories[j]` at
    decoding step `steps[j]`."""
    rows = [m.step_rows(s) for m, s in zip(memories, steps)]
    device = memories[0].kv[0][0].device if memories and memories[0].kv else torch.device("cpu")
    reps = torch.tensor(list(counts), device=device)
    index = [torch.from_numpy(idx).to(device) for idx, _ in rows]
    keys, values = [], []
    for layer, cross in enumerate(decoder.cross_attentions):
        k = torch.stack([m.kv[layer][0][idx] for m, idx in zip(memories, index)])
        v = torch.stack([m.kv[layer][1][idx] for m, idx in zip(memories, index)])
        keys.append(cross.split_heads(k).repeat_interleave(reps, dim=0))
        values.append(cross.split_heads(v).repeat_interleave(reps, dim=0))
    mask = torch.from_numpy(np.stack([ok for _, ok in rows])).to(device)
    return CrossMemory(keys, values, mask.repeat_interleave(reps, dim=0).unsqueeze(1))


class TorchScorer:
    """StepScorer over a torch `ScamaDecoder` for a batch of utterances (see `uniasr.decode.search`).

    A cache is the FSMN cache [num_blocks, n_hyps, K-1, A] of one utterance.
    """

    def __init__(self, decoder: ScamaDecoder, memories: Sequence[DecoderMemory]) -> None:
        self.decoder = decoder
        self.memories = list(memories)
        param = next(decoder.parameters())
        self.dtype, self.device = param.dtype, param.device

    def initial_cache(self, utt: int) -> torch.Tensor:
        return self.decoder.init_cache(1, device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def score(
        self,
        utts: Sequence[int],
        steps: Sequence[int],
        tokens: Sequence[np.ndarray],
        caches: Sequence[torch.Tensor],
    ) -> tuple[list[np.ndarray], list[torch.Tensor]]:
        mems = [self.memories[u] for u in utts]
        counts = [len(t) for t in tokens]
        cif = torch.from_numpy(
            np.stack([m.cif_row(s) for m, s, n in zip(mems, steps, counts) for _ in range(n)])
        )
        logp, cache = self.decoder.step(
            torch.from_numpy(np.concatenate(tokens)).to(self.device),
            cif.to(self.device, self.dtype),
            cross_memory(self.decoder, mems, counts, steps),
            torch.cat(list(caches), dim=1),
        )
        scores = logp.float().cpu().numpy()
        bounds = np.cumsum([0, *counts])
        return (
            [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
            list(cache.split(counts, dim=1)),
        )

    def select(self, cache: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        return cache[:, torch.as_tensor(list(rows), dtype=torch.long, device=cache.device)]


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
        return self._array(self.model.stride_conv(self._tensor(window)))

    @torch.inference_mode()
    def project_memory(self, pass_index: int, rows: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        _, _, decoder = self.model.pass_modules(pass_index)
        return decoder.project_memory(self._tensor(rows))

    def scorer(self, pass_index: int, memories: Sequence[DecoderMemory]) -> TorchScorer:
        _, _, decoder = self.model.pass_modules(pass_index)
        return TorchScorer(decoder, memories)

    def inference(self) -> torch.inference_mode:
        return torch.inference_mode()

    def decoding(self, pass_index: int) -> AbstractContextManager:
        _, _, decoder = self.model.pass_modules(pass_index)
        return few_threads_if_small(decoder)
