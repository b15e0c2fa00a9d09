"""FunASR's `AutoModel(model=...).generate(input=...)` for UniASR models.

    model = AutoModel(model=DIR, vad_model="fsmn-vad")       # vad_model: see VAD_NAMES
    res = model.generate(input="a.wav", batch_size_s=300, hotword="魔搭")
    # [{"key": "a", "text": "...", "timestamp": [[start_ms, end_ms], ...]}]

input: a path, URL, bytes, numpy array / torch tensor (16 kHz unless `fs=`), a list of those, a `wav.scp`
or a FunASR `.jsonl` list (`{"key", "source", ...}` per line). `batch_size_s`: seconds of audio per decoding
batch. `decoding_model` / `mode`: fast | normal | offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uniasr.compat.common import check_mode, hotword_kwargs, load_named
from uniasr.longform import LongformOptions
from uniasr.result import Result

# FunASR's VAD model names -> uniasr VAD specs: its FSMN-VAD id means "a VAD", which here is the bundled
# Silero (a local FSMN-VAD model dir is run as such).
VAD_NAMES = {"fsmn-vad": "silero", "fsmn_vad": "silero", "silero": "silero", "energy": "energy"}
IGNORED = ("disable_update", "disable_pbar", "disable_log", "model_revision", "vad_model_revision", "hub")


class AutoModel:
    """`AutoModel(model=DIR_OR_ID, vad_model=None, device="cpu")`; `punc_model` / `spk_model` are refused."""

    def __init__(
        self,
        model: Any = None,
        vad_model: str | None = None,
        device: str = "cpu",
        backend: str | None = None,
        vad_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unsupported = sorted(k for k in kwargs if k not in IGNORED)
        if unsupported:
            raise TypeError(f"unsupported argument(s): {', '.join(unsupported)} (see docs/compat.md)")
        if vad_kwargs:
            raise TypeError("vad_kwargs are not supported; the VAD runs with its own defaults")
        self.recognizer = load_named(model, device=device, backend=backend)
        self.vad = _vad_spec(vad_model)

    def generate(
        self,
        input: Any,  # noqa: A002 - FunASR's name
        *,
        batch_size_s: float = 300.0,
        hotword: Any = None,
        decoding_model: str | None = None,
        mode: str | None = None,
        fs: int | None = None,
        nbest: int = 1,
        output_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        unsupported = sorted(k for k in kwargs if k not in ("cache", "batch_size", "language", "key"))
        if unsupported:
            raise TypeError(f"unsupported argument(s): {', '.join(unsupported)} (see docs/compat.md)")
        rec = self.recognizer
        chosen = decoding_model or mode or rec.defaults.mode
        results = rec.transcribe(
            input,
            mode=check_mode(chosen, "decoding_model"),
            nbest=nbest,
            source_rate=fs,
            longform=LongformOptions(self.vad, batch_seconds=float(batch_size_s)),
            output_dir=output_dir,
            overwrite=True,
            **hotword_kwargs(rec, hotword),
        )
        return [funasr_result(r) for r in results]


def funasr_result(r: Result) -> dict[str, Any]:
    """FunASR's result dict: key, text, timestamp ([[start_ms, end_ms]] per token)."""
    if r.error is not None:
        raise ValueError(r.error)
    return {"key": r.key, "text": r.text, "timestamp": [[s, e] for s, e in r.timestamps]}


def _vad_spec(vad_model: str | None) -> str:
    """FunASR's `vad_model` -> a uniasr VAD spec ("auto" when none: long inputs still get a VAD)."""
    if vad_model is None:
        return "auto"
    if str(vad_model) in VAD_NAMES:
        return VAD_NAMES[str(vad_model)]
    if Path(vad_model).is_dir():
        return f"fsmn:{vad_model}"
    raise ValueError(
        f"vad_model={vad_model!r}: give a local FSMN-VAD model dir or one of {', '.join(VAD_NAMES)}"
    )
