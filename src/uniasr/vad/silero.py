"""Silero VAD (the default backend), from the model file bundled in the ``silero-vad`` wheel.

We read the weights of ``silero_vad/data/silero_vad.jit`` with ``torch.jit.load`` and never import the
``silero_vad`` package: its import calls ``torch.set_num_threads(1)`` for the whole process, and its
audio helpers need torchaudio. The network is re-stated in plain torch with its state passed explicitly:

    frame (512 samples at 16 kHz, 256 at 8 kHz; 32 ms) with the previous 64 (32) samples as context
      -> STFT (conv with Silero's basis) -> 4 conv+ReLU  (no state: all frames of a chunk in one batch)
      -> LSTM cell              (state h, c: run as one LSTM over the chunk's frames)
      -> ReLU, 1x1 conv, sigmoid, mean = speech probability

Probabilities match Silero's own stateful ``model(x, sr)`` loop to ~2e-5 (LSTM vs LSTMCell rounding).
Frame probabilities become segments with the hysteresis rules of :mod:`uniasr.vad.hysteresis`
(Silero's defaults: threshold 0.5, neg_threshold 0.35, min speech 250 ms, min silence 100 ms, pad 30 ms).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from uniasr.vad.framewise import FrameVad
from uniasr.vad.hysteresis import HysteresisOptions
from uniasr.vad.segments import SegmentRules

logger = logging.getLogger(__name__)

__all__ = ["SileroModelState", "SileroVad", "silero_model_path"]

_INSTALL_HINT = "pip install silero-vad (pin your torch, e.g. pip install -c constraints.txt silero-vad)"
_FRAME_SAMPLES = {16000: 512, 8000: 256}


def silero_model_path() -> Path:
    """Path of ``silero_vad.jit`` in the installed ``silero-vad`` package (the package is not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"Silero VAD needs the silero-vad package: {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "silero_vad.jit"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"silero-vad is installed at {list(spec.submodule_search_locations)} but has no data/silero_vad.jit; "
        f"reinstall it: {_INSTALL_HINT}"
    )


@dataclass(frozen=True)
class SileroModelState:
    context: torch.Tensor  # [context_samples] the samples before the next frame
    h: torch.Tensor  # [1, 1, 128]
    c: torch.Tensor  # [1, 1, 128]


class _SileroNet:
    """Plain-torch re-statement of one Silero sub-model (16 kHz or 8 kHz); weights from the JIT file.

    TorchScript itself is not run: its profiling executor re-optimises for every new chunk shape,
    which made streaming ~50x slower than these few tensor ops.
    """

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        self.context_samples = int(scripted.context_size_samples)
        self.hop = int(scripted.stft.hop_length)
        self.cutoff = int(scripted.stft.filter_length) // 2 + 1
        self.stft_pad = self.context_samples  # Silero reflect-pads each window on the right by this much
        self.basis = scripted.stft.forward_basis_buffer.detach().clone()  # [2 * cutoff, 1, filter_length]
        self.convs = []
        for index in range(4):
            conv = getattr(scripted.encoder, str(index)).reparam_conv
            stride = int(conv.stride[0]) if hasattr(conv, "stride") else 1
            self.convs.append((conv.weight.detach().clone(), conv.bias.detach().clone(), stride))
        cell = scripted.decoder.rnn
        self.hidden_size = int(cell.weight_hh.shape[1])
        self.lstm = torch.nn.LSTM(int(cell.weight_ih.shape[1]), self.hidden_size, batch_first=True)
        with torch.no_grad():
            self.lstm.weight_ih_l0.copy_(cell.weight_ih)
            self.lstm.weight_hh_l0.copy_(cell.weight_hh)
            self.lstm.bias_ih_l0.copy_(cell.bias_ih)
            self.lstm.bias_hh_l0.copy_(cell.bias_hh)
        self.lstm.eval()
        out_conv = getattr(scripted.decoder.decoder, "2")
        self.out_weight, self.out_bias = out_conv.weight.detach().clone(), out_conv.bias.detach().clone()

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """windows [F, context + frame] -> features [F, hidden]."""
        x = F.pad(windows[:, None, :], (0, self.stft_pad), mode="reflect")
        spec = F.conv1d(x, self.basis, stride=self.hop)
        x = torch.sqrt(spec[:, : self.cutoff] ** 2 + spec[:, self.cutoff :] ** 2)
        for weight, bias, stride in self.convs:
            x = torch.relu(F.conv1d(x, weight, bias, stride=stride, padding=1))
        return x.squeeze(-1)

    def __call__(self, state: SileroModelState, frames: np.ndarray) -> tuple[np.ndarray, SileroModelState]:
        """frames [F, frame] consecutive -> (probs [F], state)."""
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32), state
        audio = torch.cat([state.context, torch.from_numpy(frames.reshape(-1))])
        frame = frames.shape[1]
        windows = audio.unfold(0, self.context_samples + frame, frame)  # [F, context + frame]
        with torch.no_grad():
            hidden, (h, c) = self.lstm(self.encode(windows)[None], (state.h, state.c))
            logits = F.conv1d(torch.relu(hidden[0].unsqueeze(-1)), self.out_weight, self.out_bias)
            probs = torch.sigmoid(logits).squeeze(1).mean(dim=1)  # [F]
        next_state = SileroModelState(audio[audio.shape[0] - self.context_samples :].clone(), h, c)
        return probs.numpy().astype(np.float32), next_state


class SileroVad(FrameVad):
    """Silero VAD behind the :class:`~uniasr.vad.base.VoiceActivityDetector` interface.

    Args:
        sample_rate: 16000 or 8000.
        options: frame-level hysteresis (used identically offline and streaming).
        rules: offline post-processing applied by :meth:`detect` only.
        model_path: a Silero ``.jit`` file; default: the one bundled in the silero-vad wheel.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        options: HysteresisOptions | None = None,
        rules: SegmentRules | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        if sample_rate not in _FRAME_SAMPLES:
            raise ValueError(
                f"sample_rate={sample_rate} Hz is not supported by Silero VAD; use 16000 or 8000 "
                "(resample the audio first)"
            )
        path = Path(model_path) if model_path is not None else silero_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"Silero model file {str(path)!r} does not exist")
        with warnings.catch_warnings():  # torch >= 2.9 flags torch.jit.load; we only read weights from it
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.load(str(path), map_location="cpu").eval()
        self.net = _SileroNet(scripted._model if sample_rate == 16000 else scripted._model_8k)
        self.sample_rate = sample_rate
        self.frame_samples = _FRAME_SAMPLES[sample_rate]
        self.options = options or HysteresisOptions()
        self.rules = rules or SegmentRules()
        logger.debug("loaded Silero VAD from %s (%d Hz)", path, sample_rate)

    def initial_model_state(self) -> SileroModelState:
        zeros = torch.zeros(1, 1, self.net.hidden_size)
        return SileroModelState(torch.zeros(self.net.context_samples), zeros, zeros.clone())

    def score_frames(
        self, model_state: SileroModelState, frames: np.ndarray
    ) -> tuple[np.ndarray, SileroModelState]:
        return self.net(model_state, frames)
