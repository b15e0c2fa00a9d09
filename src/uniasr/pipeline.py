"""Recognizer: whole inputs -> Results. Reads any input, sends long ones to `uniasr.longform`, batches the
short ones through the `ModelBundle` steps (features -> passes -> search -> Result) and writes `output_dir`.

`load()` makes one from a model directory or an ONNX export."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uniasr.audio.features import Cmvn, Frontend
from uniasr.audio.io import AudioError, expand_inputs, input_name
from uniasr.bundle import DecodeError, ModelBundle
from uniasr.decode.tokens import TokenTable
from uniasr.kana_kanji import KanaKanjiConverter
from uniasr.longform import LongformOptions, finish_short_result, read_or_transcribe
from uniasr.model.modes import mode_settings
from uniasr.output.kaldi_dir import output_dir_files, refuse_existing, write_output_dir
from uniasr.result import Result

if TYPE_CHECKING:  # torch is imported only by the torch backend: the onnx runtime works without it
    import torch

log = logging.getLogger(__name__)


LONG_DEFAULTS = LongformOptions()


class Recognizer(ModelBundle):
    """A loaded UniASR model: shared, stateless, safe to call with many inputs.

    >>> rec = load("path/to/model_dir")            # doctest: +SKIP
    >>> rec.transcribe("clip.wav", mode="offline")   # doctest: +SKIP
    """

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device = "cpu") -> Recognizer:
        """A FunASR 1.x or ModelScope 0.x model directory on the torch backend."""
        from uniasr.funasr.model_dir import read_model_dir
        from uniasr.funasr.state_dict import load_funasr_state_dict
        from uniasr.model.uniasr import UniASR

        md = read_model_dir(path)
        model = UniASR(md.config)
        load_funasr_state_dict(model, md.checkpoint_path, md.config)
        frontend = Frontend(md.config.frontend, Cmvn.from_file(md.cmvn_path))
        converter = KanaKanjiConverter.for_model_dir(path)
        return cls(model, frontend, TokenTable(md.tokens), md.decoding, device, converter=converter)

    # --- the main entry point -----------------------------------------------------------------------------

    def transcribe(
        self,
        inputs: Any,
        *,
        mode: str | None = None,
        beam_size: int | None = None,
        nbest: int = 1,
        source_rate: int | None = None,
        batch_seconds: float = 120.0,
        errors: str = "raise",
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        progress: Callable[[int], None] | None = None,
        vad: Any = "auto",
        vad_threshold_s: float = 60.0,
        max_segment_s: float = 30.0,
        itn: bool = False,
        progress_seconds: Callable[[float], None] | None = None,
        max_whole_s: float = 600.0,
        merge_gap_s: float = LONG_DEFAULTS.merge_gap_s,
        segment_pad_s: float = LONG_DEFAULTS.pad_s,
        hotwords: Any = None,
        hotword_weight: float | None = None,
    ) -> list[Result]:
        """Recognise one input or a list of inputs (paths, URLs, bytes, arrays, wav.scp files).

        An array (numpy or torch) carries no sample rate: it is taken to be at `source_rate`, and when that is
        None at the model's rate (16 kHz), as FunASR does; pass `source_rate` for audio at any other rate.

        mode: fast | normal | offline (default: the model dir's decoding.yaml, else normal).
        Utterances are decoded in length-sorted batches of at most `batch_seconds` of audio; results come
        back in input order. errors="raise" stops at the first bad input; "report" returns a Result with
        `error` set for it and goes on; either way the error names the input, and an input that fails in a
        batch never costs the others their results (the batch is decoded again one by one).
        `progress(n)` is called as inputs finish.

        Long inputs (over `vad_threshold_s` seconds) are decoded block by block and cut by a VAD into
        segments of at most `max_segment_s` (see `uniasr.longform`); their Result has one Segment per
        speech segment. VAD segments less than `merge_gap_s` apart are decoded as one, and each with
        `segment_pad_s` of the audio around it (defaults chosen on the dev set, see the README).
        vad: "auto" (Silero at 8/16 kHz, else energy), "silero", "energy", "fsmn:<dir>",
        a detector object, or None for no speech detection: inputs of up to `max_whole_s` are decoded whole,
        longer ones (to bound memory) in pieces of at most `max_segment_s` cut at quiet points, all audio
        included. `itn` applies Japanese inverse text
        normalisation to each text. `progress_seconds(s)` is called with seconds of audio done.

        hotwords: phrases to favour (a path, text lines, {phrase: weight}, a list, or a ContextGraph from
        `hotword_graph`; rules in `uniasr.hotwords`), each with `hotword_weight` nats per token unless it
        gives its own. The n-gram LM of `use_lm` is fused too.
        """
        mode = mode or self.defaults.mode
        mode_settings(mode)
        if errors not in ("raise", "report"):
            raise ValueError(f"errors={errors!r}; valid: 'raise', 'report'")
        opts = self.search_options(beam_size, nbest, self.hotword_graph(hotwords, hotword_weight))
        if output_dir is not None and not overwrite:
            refuse_existing(output_dir_files(output_dir, nbest), "; nothing was decoded")
        pairs = expand_inputs(inputs, source_rate=source_rate)
        results: dict[int, Result] = {}
        loaded: list[tuple[int, str, torch.Tensor, float]] = []
        names: dict[int, str] = {}  # how errors name each input (key and path or URL)
        own_s: dict[int, float] = {}  # each input's own reading + feature time (s)
        long_opts = LongformOptions(
            vad, vad_threshold_s, max_segment_s=max_segment_s, batch_seconds=batch_seconds,
            max_whole_s=max_whole_s, merge_gap_s=merge_gap_s, pad_s=segment_pad_s,
        )  # fmt: skip
        for i, (key, source) in enumerate(pairs):
            try:
                started = time.perf_counter()
                samples = read_or_transcribe(
                    self, key, source, mode=mode, opts=opts, options=long_opts, source_rate=source_rate,
                    itn=itn, progress_seconds=progress_seconds,
                )  # fmt: skip
                if isinstance(samples, Result):  # a long input, already recognised segment by segment
                    results[i] = samples
                    if progress:
                        progress(1)
                    continue
                names[i] = input_name(key, source)
                loaded.append((i, key, self.features(samples, names[i]), len(samples) / self.sample_rate))
                own_s[i] = time.perf_counter() - started
            except (AudioError, OSError, DecodeError) as e:
                if errors == "raise":
                    raise
                log.warning("%s", e)
                results[i] = Result(key, mode=mode, error=str(e))
                if progress:
                    progress(1)
        for batch in _batches(loaded, batch_seconds):
            t0 = time.perf_counter()
            decoded = self.decode_each([names[b[0]] for b in batch], [b[2] for b in batch], mode, opts)
            elapsed = time.perf_counter() - t0
            for (i, key, _, seconds), got in zip(batch, decoded):
                if isinstance(got, DecodeError):
                    if errors == "raise":
                        raise got
                    log.warning("%s", got)
                    results[i] = Result(key, mode=mode, duration_s=seconds, error=str(got))
                    continue
                r = self.make_result(key, got[0], got[1], mode, seconds, opts.hotwords)
                results[i] = finish_short_result(r, itn)
                results[i].rtf = utterance_rtf(own_s[i], elapsed, seconds, sum(b[3] for b in batch))
            if progress:
                progress(len(batch))
            if progress_seconds:
                progress_seconds(sum(b[3] for b in batch))
        ordered = [results[i] for i in range(len(pairs))]
        if output_dir is not None:
            write_output_dir(ordered, output_dir, overwrite=overwrite, nbest=nbest)
        return ordered


def utterance_rtf(own_s: float, batch_s: float, seconds: float, batch_seconds: float) -> float:
    """One input's real-time factor: its own reading + feature time plus its share of its batch's
    decoding time (hypotheses of a batch are decoded together, so the batch's time is shared in
    proportion to audio length), over its duration."""
    return (own_s + batch_s * seconds / max(batch_seconds, 1e-9)) / max(seconds, 1e-9)


def _batches(items: list[tuple[int, str, torch.Tensor, float]], batch_seconds: float):
    """Length-sorted batches whose total audio stays under `batch_seconds` (a long item goes alone)."""
    batch, total = [], 0.0
    for item in sorted(items, key=lambda x: x[3]):
        if batch and total + item[3] > batch_seconds:
            yield batch
            batch, total = [], 0.0
        batch.append(item)
        total += item[3]
    if batch:
        yield batch


def load(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    backend: str | None = None,
    threads: int | None = None,
    text_form: str = "auto",
) -> Recognizer:
    """Load a FunASR 1.x or ModelScope 0.x UniASR model directory (or the bundled default model), or a
    directory made by `uniasr export --format onnx`.

    backend: "torch", "onnx", or None / "auto": an export dir runs on onnxruntime; a model dir runs on
    torch when torch is installed, else on its own ONNX export (`DIR/onnx`, which the bundled default
    model ships), so the base install (no torch) needs no flag. "onnx" on a model dir also picks `DIR/onnx`.
    threads: intra-op threads (torch: the process-wide setting; onnx: per session); None keeps the default.
    text_form: "auto", "written" or "kana": what `Result.text` holds (see `Recognizer.text_form`).
    """
    from uniasr.backends.export_dir import is_export_dir
    from uniasr.extras import missing_modules, require_extra
    from uniasr.hub import onnx_export_of, resolve_model

    if backend not in (None, "auto", "torch", "onnx"):
        raise ValueError(f"backend={backend!r}; valid: 'auto', 'torch', 'onnx'")
    exported = path is not None and is_export_dir(path)
    if exported and backend == "torch":
        raise ValueError(f"{path} is an exported model (onnxruntime); load the original model dir for torch")
    if exported:
        return _load_onnx(Path(path), threads, text_form, lm_dir=Path(path))
    model_dir = resolve_model(path)
    own_export = onnx_export_of(model_dir)
    no_torch = bool(missing_modules("torch"))
    if backend == "onnx" or (backend in (None, "auto") and own_export is not None and no_torch):
        if own_export is None:
            raise ValueError(
                f"backend='onnx' needs a dir made by `uniasr export --format onnx` (or a model dir holding "
                f"one in onnx/); not {model_dir}"
            )
        return _load_onnx(own_export, threads, text_form, lm_dir=model_dir)
    if no_torch:  # or export it once where torch is: uniasr export DIR --format onnx --int8 --output DIR/onnx
        require_extra("torch", f"the torch checkpoint {model_dir}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    rec = Recognizer.from_dir(model_dir, device=device)
    rec.text_form = text_form
    return rec


def _load_onnx(path: Path, threads: int | None, text_form: str, lm_dir: Path) -> Recognizer:
    """An ONNX export dir on onnxruntime; the kana -> text LM from the export, else from `lm_dir` (the
    model dir an `onnx/` export sits in)."""
    from uniasr.backends.onnx_backend import OnnxBackend
    from uniasr.kana_kanji import LM_FILE

    onnx = OnnxBackend(path, threads=threads)
    m = onnx.manifest
    frontend = Frontend(m.config.frontend, m.cmvn)
    converter = KanaKanjiConverter.for_model_dir(path if (path / LM_FILE).is_file() else lm_dir)
    tokens = TokenTable(m.tokens)
    return Recognizer(onnx, frontend, tokens, m.decoding, text_form=text_form, converter=converter)
