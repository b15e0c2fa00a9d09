"""Silero VAD (the default backend) in numpy, from weights vendored with uniasr (no torch needed).

``vad/data/silero_vad.npz`` holds the weights of Silero VAD v6.2.3 (MIT licence: ``vad/data/SILERO_LICENSE``),
read out of the ``silero_vad.jit`` that the ``silero-vad`` wheel ships by :func:`weights_from_jit`
(``python -m uniasr.vad.silero --vendor``, needs torch and silero-vad; the ``silero_vad`` package itself is
never imported: its import sets torch's thread count for the whole process). The network, with its state
passed explicitly:

    frame (512 samples at 16 kHz, 256 at 8 kHz; 32 ms) with the previous 64 (32) samples as context
      -> STFT (conv with Silero's basis) -> 4 conv+ReLU  (no state: all frames of a chunk in one batch)
      -> LSTM cell              (state h, c)
      -> ReLU, 1x1 conv, sigmoid, mean = speech probability

Probabilities match Silero's own stateful ``model(x, sr)`` loop to ~2e-5 (tests/test_vad.py).
Frame probabilities become segments with the hysteresis rules of :mod:`uniasr.vad.hysteresis`
(Silero's defaults: threshold 0.5, neg_threshold 0.35, min speech 250 ms, min silence 100 ms, pad 30 ms).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from uniasr.vad.framewise import FrameVad
from uniasr.vad.hysteresis import HysteresisOptions
from uniasr.vad.segments import SegmentRules

logger = logging.getLogger(__name__)

__all__ = ["SileroModelState", "SileroVad", "VENDORED_WEIGHTS", "silero_model_path", "weights_from_jit"]

VENDORED_WEIGHTS = Path(__file__).parent / "data" / "silero_vad.npz"
_INSTALL_HINT = "pip install silero-vad (pin your torch, e.g. pip install -c constraints.txt silero-vad)"
_FRAME_SAMPLES = {16000: 512, 8000: 256}
_PREFIX = {16000: "16k", 8000: "8k"}
_NUM_CONVS = 4


def silero_model_path() -> Path:
    """Path of ``silero_vad.jit`` in the installed ``silero-vad`` package (the package is not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"reading Silero's own model file needs the silero-vad package: {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "silero_vad.jit"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"silero-vad is installed at {list(spec.submodule_search_locations)} but has no data/silero_vad.jit; "
        f"reinstall it: {_INSTALL_HINT}"
    )


def weights_from_jit(path: str | Path) -> dict[str, np.ndarray]:
    """The weights of both sub-models of a Silero ``.jit`` file as float32 arrays, keyed ``16k.*`` / ``8k.*``
    (the layout of ``silero_vad.npz``). Needs torch; TorchScript is only read, never run."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "reading a Silero .jit file needs torch: pip install 'uniasr[torch]' "
            "(the vendored weights need none)"
        ) from e
    with warnings.catch_warnings():  # torch >= 2.9 flags torch.jit.load; we only read weights from it
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(path), map_location="cpu").eval()
    out: dict[str, np.ndarray] = {}
    for rate, sub in ((16000, scripted._model), (8000, scripted._model_8k)):
        p = _PREFIX[rate]
        out[f"{p}.context_samples"] = np.asarray(int(sub.context_size_samples))
        out[f"{p}.hop"] = np.asarray(int(sub.stft.hop_length))
        out[f"{p}.basis"] = sub.stft.forward_basis_buffer[:, 0, :].numpy()  # [2 * cutoff, filter_length]
        for i in range(_NUM_CONVS):
            conv = getattr(sub.encoder, str(i)).reparam_conv
            out[f"{p}.conv{i}.weight"] = conv.weight.detach().numpy()
            out[f"{p}.conv{i}.bias"] = conv.bias.detach().numpy()
            out[f"{p}.conv{i}.stride"] = np.asarray(int(conv.stride[0]) if hasattr(conv, "stride") else 1)
        cell = sub.decoder.rnn
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            out[f"{p}.lstm.{name}"] = getattr(cell, name).detach().numpy()
        head = getattr(sub.decoder.decoder, "2")
        out[f"{p}.out.weight"] = head.weight.detach().numpy()[:, :, 0]  # [1, hidden]
        out[f"{p}.out.bias"] = head.bias.detach().numpy()
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in out.items()}


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """A ``.npz`` written by :func:`weights_from_jit` (the vendored one by default) or a Silero ``.jit``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Silero model file {str(path)!r} does not exist")
    if path.suffix == ".jit":
        return weights_from_jit(path)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@dataclass(frozen=True)
class SileroModelState:
    context: np.ndarray  # [context_samples] the samples before the next frame
    h: np.ndarray  # [hidden]
    c: np.ndarray  # [hidden]


def _conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """x [B, Cin, T], weight [Cout, Cin, K] -> [B, Cout, T'] (torch's conv1d with zero padding)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    windows = sliding_window_view(x, weight.shape[2], axis=2)[:, :, ::stride]  # [B, Cin, T', K]
    return np.einsum("bctk,ock->bot", windows, weight, optimize=True) + bias[None, :, None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _SileroNet:
    """One Silero sub-model (16 kHz or 8 kHz) in numpy."""

    def __init__(self, weights: dict[str, np.ndarray], sample_rate: int) -> None:
        p = _PREFIX[sample_rate]
        self.context_samples = int(weights[f"{p}.context_samples"])
        self.hop = int(weights[f"{p}.hop"])
        self.basis = weights[f"{p}.basis"]  # [2 * cutoff, filter_length]
        self.cutoff = self.basis.shape[0] // 2
        self.stft_pad = self.context_samples  # Silero reflect-pads each window on the right by this much
        self.convs = [
            (
                weights[f"{p}.conv{i}.weight"],
                weights[f"{p}.conv{i}.bias"],
                int(weights[f"{p}.conv{i}.stride"]),
            )
            for i in range(_NUM_CONVS)
        ]
        self.w_ih, self.w_hh = weights[f"{p}.lstm.weight_ih"], weights[f"{p}.lstm.weight_hh"]
        self.b_lstm = weights[f"{p}.lstm.bias_ih"] + weights[f"{p}.lstm.bias_hh"]
        self.hidden_size = self.w_hh.shape[1]
        self.out_weight, self.out_bias = weights[f"{p}.out.weight"], weights[f"{p}.out.bias"]

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """windows [F, context + frame] -> features [F, hidden]."""
        x = np.pad(windows, ((0, 0), (0, self.stft_pad)), mode="reflect")
        patches = sliding_window_view(x, self.basis.shape[1], axis=1)[:, :: self.hop]  # [F, n, filter]
        spec = patches @ self.basis.T  # [F, n, 2 * cutoff]
        x = np.sqrt(spec[..., : self.cutoff] ** 2 + spec[..., self.cutoff :] ** 2).transpose(0, 2, 1)
        for weight, bias, stride in self.convs:
            x = np.maximum(_conv1d(x, weight, bias, stride, padding=1), 0.0)
        return x[:, :, 0]

    def __call__(self, state: SileroModelState, frames: np.ndarray) -> tuple[np.ndarray, SileroModelState]:
        """frames [F, frame] consecutive -> (probs [F], state)."""
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32), state
        audio = np.concatenate([state.context, frames.reshape(-1).astype(np.float32)])
        frame = frames.shape[1]
        windows = sliding_window_view(audio, self.context_samples + frame)[::frame]  # [F, context + frame]
        inputs = self.encode(windows) @ self.w_ih.T + self.b_lstm  # [F, 4 * hidden]
        h, c, n = state.h, state.c, self.hidden_size
        hidden = np.empty((len(inputs), n), dtype=np.float32)
        for t, x in enumerate(inputs):  # torch's gate order: input, forget, cell, output
            gates = x + self.w_hh @ h
            i, f, o = _sigmoid(gates[:n]), _sigmoid(gates[n : 2 * n]), _sigmoid(gates[3 * n :])
            c = f * c + i * np.tanh(gates[2 * n : 3 * n])
            h = o * np.tanh(c)
            hidden[t] = h
        probs = _sigmoid(np.maximum(hidden, 0.0) @ self.out_weight.T + self.out_bias)[:, 0]
        next_state = SileroModelState(audio[len(audio) - self.context_samples :].copy(), h, c)
        return probs.astype(np.float32), next_state


class SileroVad(FrameVad):
    """Silero VAD behind the :class:`~uniasr.vad.base.VoiceActivityDetector` interface.

    Args:
        sample_rate: 16000 or 8000.
        options: frame-level hysteresis (used identically offline and streaming).
        rules: offline post-processing applied by :meth:`detect` only.
        model_path: a ``.npz`` of :func:`weights_from_jit` or a Silero ``.jit`` (needs torch); default: the
            weights vendored with uniasr.
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
        path = Path(model_path) if model_path is not None else VENDORED_WEIGHTS
        self.net = _SileroNet(read_weights(path), sample_rate)
        self.sample_rate = sample_rate
        self.frame_samples = _FRAME_SAMPLES[sample_rate]
        self.options = options or HysteresisOptions()
        self.rules = rules or SegmentRules()
        logger.debug("loaded Silero VAD from %s (%d Hz)", path, sample_rate)

    def initial_model_state(self) -> SileroModelState:
        zeros = np.zeros(self.net.hidden_size, dtype=np.float32)
        return SileroModelState(np.zeros(self.net.context_samples, dtype=np.float32), zeros, zeros.copy())

    def score_frames(
        self, model_state: SileroModelState, frames: np.ndarray
    ) -> tuple[np.ndarray, SileroModelState]:
        return self.net(model_state, frames)


def main(argv: list[str] | None = None) -> None:
    """``python -m uniasr.vad.silero --vendor``: rewrite the vendored weights from silero-vad's."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--vendor", action="store_true", help="write vad/data/silero_vad.npz")
    parser.add_argument("--jit", type=Path, default=None, help="Silero .jit (default: silero-vad's)")
    args = parser.parse_args(argv)
    if not args.vendor:
        parser.error("nothing to do: pass --vendor")
    weights = weights_from_jit(args.jit or silero_model_path())
    VENDORED_WEIGHTS.parent.mkdir(exist_ok=True)
    np.savez_compressed(VENDORED_WEIGHTS, allow_pickle=False, **weights)
    print(f"wrote {VENDORED_WEIGHTS} ({VENDORED_WEIGHTS.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
