"""Recognizer: whole inputs -> Results. Reads any input, sends long ones to `uniasr.longform`, batches the
short ones through the `ModelBundle` steps (features -> passes -> search -> Result) and writes `output_dir`.

`load()` makes one from a model directory or an ONNX export."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from uniasr.audio.decoding import AudioSource
from uniasr.audio.errors import AudioError
from uniasr.audio.features import Cmvn, Frontend
from uniasr.audio.inputs import expand_inputs, input_name
from uniasr.bundle import DecodeError, HotwordSpec, ModelBundle
from uniasr.decode.search import SearchOptions
from uniasr.decode.tokens import TokenTable
from uniasr.kana_kanji import KanaKanjiConverter
from uniasr.longform import LongformOptions, finish_short_result, read_or_transcribe
from uniasr.model.modes import Mode, as_mode
from uniasr.output.kaldi_dir import output_dir_files, refuse_existing, write_output_dir
from uniasr.result import Result

if TYPE_CHECKING:  # torch is imported only by the torch backend: the onnx runtime works without it
    import torch

log = logging.getLogger(__name__)

Inputs = AudioSource | Sequence[AudioSource]
"""What `transcribe()` takes: one input (path, URL, bytes, array, wav.scp / jsonl list) or a sequence."""
ErrorPolicy = Literal["raise", "report"]


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
        inputs: Inputs,
        *,
        mode: Mode | None = None,
        search: SearchOptions | None = None,
        longform: LongformOptions | None = None,
        beam_size: int | None = None,
        nbest: int | None = None,
        hotwords: HotwordSpec | None = None,
        hotword_weight: float | None = None,
        itn: bool = False,
        source_rate: int | None = None,
        errors: ErrorPolicy = "raise",
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        progress: Callable[[Progress], None] | None = None,
    ) -> list[Result]:
        """Recognise one input or a list of inputs (paths, URLs, bytes, arrays, wav.scp files).

        An array (numpy or torch) carries no sample rate: it is taken to be at `source_rate`, and when that is
        None at the model's rate (16 kHz), as FunASR does; pass `source_rate` for audio at any other rate.

        mode: fast | normal | offline (default: the model dir's decoding.yaml, else normal).
        search: the beam search (default: the model dir's decoding.yaml); `beam_size` and `nbest` are
        shorthands for it (give one or the other). The n-gram LM of `use_lm` is fused unless `search`
        has its own.
        longform: how inputs are segmented and batched (`LongformOptions`, defaults chosen on the dev set,
        see the README): short inputs are decoded whole in length-sorted batches of at most
        `batch_seconds` of audio; long ones (over `threshold_s`) block by block, cut by a VAD into
        segments (their Result has one Segment per speech segment); `vad=None`: no speech detection.
        Results come back in input order.

        errors="raise" stops at the first bad input; "report" returns a Result with `error` set for it and
        goes on; either way the error names the input, and an input that fails in a batch never costs the
        others their results (the batch is decoded again one by one). `progress` is called with the
        inputs and seconds of audio finished since its last call. `itn` applies Japanese inverse text
        normalisation to each text.

        hotwords: phrases to favour (a path, text lines, {phrase: weight}, a list, or a ContextGraph from
        `hotword_graph`; rules in `uniasr.hotwords`), each with `hotword_weight` nats per token unless it
        gives its own.
        """
        mode = as_mode(mode or self.defaults.mode)
        if errors not in ("raise", "report"):
            raise ValueError(f"errors={errors!r}; valid: 'raise', 'report'")
        opts = self._search_for(search, beam_size, nbest, hotwords, hotword_weight)
        long_opts = longform if longform is not None else LongformOptions()
        if output_dir is not None and not overwrite:
            refuse_existing(output_dir_files(output_dir, opts.nbest), "; nothing was decoded")
        pairs = expand_inputs(inputs, source_rate=source_rate)
        run = _Run(mode, opts, long_opts, itn, source_rate, errors == "raise", progress or _no_progress)
        for i, (key, source) in enumerate(pairs):
            self._read_one(run, i, key, source)
        for batch in _batches(run.loaded, long_opts.batch_seconds):
            self._decode_batch(run, batch)
        ordered = [run.results[i] for i in range(len(pairs))]
        if output_dir is not None:
            write_output_dir(ordered, output_dir, overwrite=overwrite, nbest=opts.nbest)
        return ordered

    def _search_for(
        self,
        search: SearchOptions | None,
        beam_size: int | None,
        nbest: int | None,
        hotwords: HotwordSpec | None,
        hotword_weight: float | None,
    ) -> SearchOptions:
        if search is not None and (beam_size is not None or nbest is not None):
            raise ValueError(
                f"search= and beam_size={beam_size!r}/nbest={nbest!r} were both given; set them in search="
            )
        opts = search if search is not None else self.search_options(beam_size, nbest or 1)
        graph = self.hotword_graph(hotwords, hotword_weight)
        if graph is not None:
            opts = replace(opts, hotwords=graph)
        if opts.lm is None and self.lm is not None:
            opts = replace(opts, lm=self.lm)
        return opts

    def _read_one(self, run: _Run, i: int, key: str, source: AudioSource) -> None:
        """Input `i`: a short one is loaded into `run.loaded`; a long one is recognised (`run.results`)."""
        try:
            started = time.perf_counter()
            samples = read_or_transcribe(
                self, key, source, mode=run.mode, opts=run.opts, options=run.longform,
                source_rate=run.source_rate, itn=run.itn, progress_seconds=run.seconds_done,
            )  # fmt: skip
            if isinstance(samples, Result):  # a long input, already recognised segment by segment
                run.results[i] = samples
                run.progress(Progress(inputs=1))
                return
            run.names[i] = input_name(key, source)
            seconds = len(samples) / self.sample_rate
            run.loaded.append((i, key, self.features(samples, run.names[i]), seconds))
            run.own_s[i] = time.perf_counter() - started
        except (AudioError, OSError, DecodeError) as e:
            if run.raise_errors:
                raise
            log.warning("%s", e)
            run.results[i] = Result(key, mode=run.mode, error=str(e))
            run.progress(Progress(inputs=1))

    def _decode_batch(self, run: _Run, batch: list[_Loaded]) -> None:
        """One length-sorted batch of short inputs -> their Results (with their share of the time)."""
        t0 = time.perf_counter()
        decoded = self.decode_each(
            [run.names[b[0]] for b in batch], [b[2] for b in batch], run.mode, run.opts
        )
        elapsed = time.perf_counter() - t0
        batch_seconds = sum(b[3] for b in batch)
        for (i, key, _, seconds), got in zip(batch, decoded):
            if isinstance(got, DecodeError):
                if run.raise_errors:
                    raise got
                log.warning("%s", got)
                run.results[i] = Result(key, mode=run.mode, duration_s=seconds, error=str(got))
                continue
            r = self.make_result(key, got[0], got[1], run.mode, seconds, run.opts.hotwords)
            run.results[i] = finish_short_result(r, run.itn)
            run.results[i].rtf = utterance_rtf(run.own_s[i], elapsed, seconds, batch_seconds)
        run.progress(Progress(inputs=len(batch), seconds=batch_seconds))


@dataclass(frozen=True)
class Progress:
    """Work finished since the last `transcribe(progress=...)` call: whole inputs and seconds of audio
    (a long input reports its seconds segment batch by segment batch, then itself as one input)."""

    inputs: int = 0
    seconds: float = 0.0


_Loaded = tuple[int, str, Any, float]  # input index, key, features [T, F], seconds


@dataclass
class _Run:
    """The settings and the state of one `transcribe()` call."""

    mode: Mode
    opts: SearchOptions
    longform: LongformOptions
    itn: bool
    source_rate: int | None
    raise_errors: bool
    progress: Callable[[Progress], None]
    results: dict[int, Result] = field(default_factory=dict)
    loaded: list[_Loaded] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # how errors name each input (key and path or URL)
    own_s: dict[int, float] = field(default_factory=dict)  # each input's own reading + feature time (s)

    def seconds_done(self, seconds: float) -> None:
        self.progress(Progress(seconds=seconds))


def _no_progress(_: Progress) -> None:
    pass


def utterance_rtf(own_s: float, batch_s: float, seconds: float, batch_seconds: float) -> float:
    """One input's real-time factor: its own reading + feature time plus its share of its batch's
    decoding time (hypotheses of a batch are decoded together, so the batch's time is shared in
    proportion to audio length), over its duration."""
    return (own_s + batch_s * seconds / max(batch_seconds, 1e-9)) / max(seconds, 1e-9)


def _batches(items: list[_Loaded], batch_seconds: float) -> Iterator[list[_Loaded]]:
    """Length-sorted batches whose total audio stays under `batch_seconds` (a long item goes alone)."""
    batch: list[_Loaded] = []
    total = 0.0
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
    if path is not None and is_export_dir(path):
        if backend == "torch":
            raise ValueError(
                f"{path} is an exported model (onnxruntime); load the original model dir for torch"
            )
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
