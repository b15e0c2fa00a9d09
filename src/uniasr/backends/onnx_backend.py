"""onnxruntime backend: the graphs written by `uniasr export --format onnx`, without torch.

Needs only onnxruntime and numpy (plus kaldi-native-fbank and the audio readers for the frontend). All
decoding and streaming glue is the same numpy code the torch backend uses; this module only feeds graphs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from uniasr.backends.base import History, empty_history
from uniasr.backends.export_dir import ExportDirError, Manifest, read_manifest
from uniasr.decode.memory import DecoderMemory
from uniasr.model.config import UniASRConfig

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install onnxruntime"
LARGE_DECODER_PARAMS = 4_000_000  # decoders above this gain from a second intra-op thread (as in torch)


def decoder_params(cfg: UniASRConfig, piece: str) -> int:
    """Approximate weight count of a decoder step graph (FFNs, cross-attention queries/outputs, output)."""
    dec = cfg.decoder if piece.startswith("decoder1") else cfg.decoder2
    a, u = dec.attention_dim, dec.linear_units
    ffn = 2 * a * u
    return (dec.num_blocks + 2) * ffn + dec.att_layer_num * 2 * a * a + a * dec.vocab_size


def sinusoidal_positions(num_frames: int, dim: int, start: int = 0) -> np.ndarray:
    """[T, dim] FunASR-style sinusoidal encoding of positions start+1 ... start+T (float32)."""
    positions = np.arange(start + 1, start + num_frames + 1, dtype=np.float32)
    log_increment = np.log(np.float32(10000.0)) / np.float32(dim / 2 - 1)
    inv_timescales = np.exp(np.arange(dim // 2, dtype=np.float32) * -log_increment)
    scaled = positions[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


class OnnxBackend:
    """The pieces of an ONNX export dir as onnxruntime sessions (CPU by default).

    threads: intra-op threads of the acoustic graphs (None: onnxruntime's default, all cores);
    decoder_threads: of the decoder step graphs (None: 1 for small decoders, else `threads`);
    spin: let idle pool threads spin-wait (onnxruntime's default). Off by default: on a CPU shared with
    other work spinning threads steal it (measured here: encoder 1 at 2 threads, 125-170 ms without
    spinning vs 290-380 ms with it, on a busy 2-core machine).
    """

    name = "onnx"
    device = "cpu"
    model = None  # no torch module

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        decoder_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        spin: bool = False,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError(f"the onnx backend needs onnxruntime: {INSTALL_HINT}") from e
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        if self.manifest.format != "onnx":
            raise ExportDirError(
                f"{self.path} holds a {self.manifest.format} export (load its graphs with torch.jit.load); "
                "the onnx backend needs `uniasr export --format onnx`"
            )
        self.sessions = {}
        for piece, name in self.manifest.graphs.items():
            file = self.path / name
            n = threads
            if piece.endswith("_step"):
                n = decoder_threads
                if n is None:
                    n = threads if decoder_params(self.manifest.config, piece) > LARGE_DECODER_PARAMS else 1
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = n or 0
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            self.sessions[piece] = ort.InferenceSession(str(file), opts, providers=list(providers))
        log.info("loaded %s %s export from %s", self.manifest.precision, self.manifest.format, self.path)

    @property
    def config(self) -> UniASRConfig:
        return self.manifest.config

    def _run(self, piece: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.sessions[piece].run(None, feeds)

    def features_array(self, feats: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(feats, dtype=np.float32)

    def embed(self, pass_index: int, feats: np.ndarray, start: int) -> np.ndarray:
        dim = self.config.pass_config(pass_index).encoder.output_dim
        pe = sinusoidal_positions(feats.shape[0], feats.shape[1], start)
        return feats.astype(np.float32, copy=False) * np.float32(math.sqrt(dim)) + pe

    def encode_blocks(
        self,
        pass_index: int,
        blocks: np.ndarray,
        valid: np.ndarray,
        look_back: np.ndarray | None = None,
        history: History | None = None,
    ) -> tuple[np.ndarray, History | None]:
        piece = f"encoder{pass_index}"
        feeds = {"blocks": np.ascontiguousarray(blocks, dtype=np.float32), "valid": valid}
        if not self.manifest.encoder_look_back[piece]:
            if look_back is not None:
                raise ExportDirError(f"{self.path}: {piece} was exported without encoder look-back inputs")
            return self._run(piece, feeds)[0], None
        given = look_back is not None
        if look_back is None:  # this chunk entry has no look-back: one masked look-back slot (index -1)
            look_back = np.full((blocks.shape[0], 1), -1, dtype=np.int64)
            history = empty_history(self.config.pass_config(pass_index).encoder, 1)
        if history is None:
            raise ValueError(f"{piece}: look_back given without history")
        feeds |= {"look_back": look_back, "history_k": history[0], "history_v": history[1]}
        out, new_k, new_v = self._run(piece, feeds)
        return out, ((new_k, new_v) if given else None)

    def predictor_alphas(
        self, pass_index: int, blocks: np.ndarray, valid: np.ndarray, centre: np.ndarray
    ) -> np.ndarray:
        feeds = {"blocks": np.ascontiguousarray(blocks, dtype=np.float32), "valid": valid, "centre": centre}
        return self._run(f"predictor{pass_index}", feeds)[0]

    def token_count(self, chunked_alphas: np.ndarray) -> float:
        return float(np.sum(chunked_alphas, dtype=np.float32))

    def stride_conv(self, window: np.ndarray) -> np.ndarray:
        return self._run("stride_conv", {"window": np.ascontiguousarray(window, dtype=np.float32)})[0]

    def project_memory(self, pass_index: int, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        keys, values = self._run(f"decoder{pass_index}_memory", {"rows": rows})
        return [(keys[i], values[i]) for i in range(keys.shape[0])]

    def scorer(self, pass_index: int, memories: Sequence[DecoderMemory]) -> OnnxScorer:
        cfg = self.config.pass_config(pass_index).decoder
        session = self.sessions[f"decoder{pass_index}_step"]
        return OnnxScorer(
            session, memories, cfg.num_blocks, cfg.kernel_size, cfg.attention_dim, cfg.attention_heads
        )

    def inference(self) -> AbstractContextManager:
        return nullcontext()

    def decoding(self, pass_index: int) -> AbstractContextManager:
        return nullcontext()


class OnnxScorer:
    """StepScorer over an exported decoder step graph (see `uniasr.decode.search.StepScorer`).

    A cache is the FSMN cache [num_blocks, n_hyps, K-1, A] (numpy) of one utterance.
    """

    def __init__(
        self, session, memories: Sequence[DecoderMemory], num_blocks: int, kernel: int, dim: int, heads: int
    ) -> None:
        self.session = session
        self.memories = list(memories)
        self.cache_shape = (num_blocks, 1, kernel - 1, dim)
        self.heads = heads

    def _heads(self, kv: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Rows of each cross block's keys (or values) [R, A] -> [Lc, H, M, dk]."""
        out = np.stack([x[rows] for x in kv])
        lc, m, a = out.shape
        return out.reshape(lc, m, self.heads, a // self.heads).transpose(0, 2, 1, 3)

    def initial_cache(self, utt: int) -> np.ndarray:
        return np.zeros(self.cache_shape, dtype=np.float32)

    def score(
        self,
        utts: Sequence[int],
        steps: Sequence[int],
        tokens: Sequence[np.ndarray],
        caches: Sequence[np.ndarray],
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        keys, values, masks, cifs = [], [], [], []
        counts = [len(t) for t in tokens]
        for u, s, n in zip(utts, steps, counts):
            m = self.memories[u]
            rows, ok = m.step_rows(s)
            keys.append(self._heads([k for k, _ in m.kv], rows))
            values.append(self._heads([v for _, v in m.kv], rows))
            masks.append(ok)
            cifs.append(np.broadcast_to(m.cif_row(s), (n, m.cif_embeds.shape[1])))
        feeds = {
            "tokens": np.concatenate(tokens).astype(np.int64, copy=False),
            "cif": np.concatenate(cifs).astype(np.float32, copy=False),
            "keys": np.stack(keys, axis=1),  # [Lc, U, H, M, dk]: once per utterance, not per hypothesis
            "values": np.stack(values, axis=1),
            "mask": np.stack(masks),
            "hyp_utt": np.repeat(np.arange(len(counts), dtype=np.int64), counts),
            "cache": np.concatenate(caches, axis=1),
        }
        logp, cache = self.session.run(None, feeds)
        bounds = np.cumsum([0, *counts])
        pairs = list(zip(bounds[:-1], bounds[1:]))
        return [logp[a:b] for a, b in pairs], [cache[:, a:b] for a, b in pairs]

    def select(self, cache: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        return cache[:, list(rows)]
