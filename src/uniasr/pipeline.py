"""Recognizer: audio -> features -> UniASR passes -> search -> Result (and the `output_dir` writer)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from uniasr.audio.features import Cmvn, Frontend
from uniasr.audio.io import AudioError, expand_inputs, input_name
from uniasr.decode.passes import PassResult, decode
from uniasr.decode.search import Hypothesis, SearchOptions, hypothesis_tokens
from uniasr.decode.tokens import TokenTable, token_times
from uniasr.hotwords import DEFAULT_WEIGHT, HotwordLimits, build_graph, parse_hotwords, written_forms
from uniasr.kana_kanji import KanaKanjiConverter, UserWords
from uniasr.longform import LongformOptions
from uniasr.model.config import DecodingDefaults, UniASRConfig
from uniasr.model.modes import mode_settings
from uniasr.output_dir import (  # noqa: F401 - re-exported: uniasr.pipeline.write_output_dir
    OUTPUT_FILES,
    check_key,
    output_dir_files,
    refuse_existing,
    write_output_dir,
)

if TYPE_CHECKING:  # torch is imported only by the torch backend: the onnx runtime works without it
    import torch

    from uniasr.backends.base import AcousticBackend
    from uniasr.decode.context import ContextGraph
    from uniasr.decode.lm_fusion import TokenLMFusion
    from uniasr.model.uniasr import UniASR

log = logging.getLogger(__name__)


LONG_DEFAULTS = LongformOptions()


class DecodeError(RuntimeError):
    """Decoding one input failed (the model or search raised); the message names the input."""


TEXT_FORMS = ("auto", "written", "kana")


@dataclass
class Alternative:
    """One entry of the n-best list."""

    text: str
    tokens: list[str]
    token_ids: list[int]
    score: float
    kana: str = ""  # the model's own output when `text` was converted from it (see Recognizer.text_form)


@dataclass
class Segment:
    """One recognised stretch of a long input (a VAD segment), or the whole of a short one.

    Times in ms from the start of the input; `timestamps` are per token, absolute.
    """

    start_ms: int
    end_ms: int
    text: str
    tokens: list[str] = field(default_factory=list)
    timestamps: list[tuple[int, int]] = field(default_factory=list)
    score: float = 0.0
    kana: str = ""


@dataclass
class Result:
    """Recognition result of one utterance. Times are in ms from the start of the audio.

    `text`: what to show (kanji-kana text for a model that writes orthographic kana, see
    `Recognizer.text_form`; ITN applied when asked); `kana`: the model's own output (its reading), always set.
    `segments`: the VAD segments of a long input, or one segment spanning a short input (empty on error).
    """

    key: str
    text: str = ""
    tokens: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    timestamps: list[tuple[int, int]] = field(default_factory=list)
    score: float = 0.0
    nbest: list[Alternative] = field(default_factory=list)
    mode: str = ""
    duration_s: float = 0.0
    rtf: float = math.nan
    error: str | None = None
    segments: list[Segment] = field(default_factory=list)
    kana: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["timestamps"] = [list(t) for t in self.timestamps]
        for seg in d["segments"]:
            seg["timestamps"] = [list(t) for t in seg["timestamps"]]
        return d


class Recognizer:
    """A loaded UniASR model: shared, stateless, safe to call with many inputs.

    >>> rec = load("path/to/model_dir")            # doctest: +SKIP
    >>> rec.transcribe("clip.wav", mode="offline")   # doctest: +SKIP
    """

    def __init__(
        self,
        model: UniASR | AcousticBackend,
        frontend: Frontend,
        tokens: TokenTable,
        defaults: DecodingDefaults = DecodingDefaults(),
        device: str | torch.device = "cpu",
        text_form: str = "auto",
        converter: KanaKanjiConverter | None = None,
    ) -> None:
        """`model`: a torch `UniASR` module (run on `device`) or any `AcousticBackend` (e.g. onnxruntime).
        `text_form`: see the property; `converter`: kana -> written text (default: the dictionary alone)."""
        if hasattr(model, "encode_blocks"):
            self.backend = model
        else:
            from uniasr.backends.torch_backend import TorchBackend

            self.backend = TorchBackend(model, device)
        self.frontend = frontend
        self.tokens = tokens
        self.defaults = defaults
        self.text_form = text_form
        self.converter = converter
        self.lm: TokenLMFusion | None = None  # fused into every search (see use_lm)
        self._written: dict[ContextGraph, UserWords] = {}

    @property
    def text_form(self) -> str:
        """What `Result.text` holds: "written" (kanji-kana text converted from the model's kana by
        `uniasr.kana_kanji`), "kana" (the model's output as it is) or "auto" (written when the model dir's
        decoding.yaml says `convert_kana: true`, as the bundled default model's does; else kana)."""
        return self._text_form

    @text_form.setter
    def text_form(self, value: str) -> None:
        if value not in TEXT_FORMS:
            raise ValueError(f"text_form={value!r}; valid: {', '.join(map(repr, TEXT_FORMS))}")
        self._text_form = value

    def render_text(self, kana: str, context: ContextGraph | None = None) -> str:
        """The model's detokenised output -> the text a Result shows (see `text_form`). With the hotwords
        of `context`, the converter writes each phrase that was read as given (a user dictionary)."""
        convert = self._text_form == "written" or (self._text_form == "auto" and self.defaults.convert_kana)
        if not convert:
            return kana
        if self.converter is None:
            self.converter = KanaKanjiConverter()
        words: UserWords = ()
        if context is not None:
            words = self._written.get(context)
            if words is None:
                if len(self._written) > 16:
                    self._written.clear()
                words = self._written[context] = written_forms(context, self.tokens.tokens)
        return self.converter(kana, words)

    # --- contextual decoding ------------------------------------------------------------------------------

    def hotword_graph(
        self, hotwords: Any, weight: float | None = None, limits: HotwordLimits = HotwordLimits()
    ) -> ContextGraph | None:
        """A hotword list (a path, text lines, {phrase: weight}, a list; see `uniasr.hotwords`) in this
        model's token space, for `transcribe(hotwords=...)` / `StreamingSession(hotwords=...)`; None when
        empty. A ContextGraph is passed through. `weight`: the bonus per token of phrases without one."""
        from uniasr.decode.context import ContextGraph

        if hotwords is None or isinstance(hotwords, ContextGraph):
            return hotwords
        return build_graph(
            parse_hotwords(hotwords), self.tokens.index, DEFAULT_WEIGHT if weight is None else weight, limits
        )

    def use_lm(self, lm: Any, weight: float, length_bonus: float = 0.0) -> None:
        """Fuse a token-level n-gram LM (an ARPA path or an `NgramLM`) into every search from now on, with
        this weight and per-token bonus; `lm=None` stops it. See `uniasr.decode.lm_fusion`."""
        if lm is None:
            self.lm = None
            return
        from uniasr.decode.lm_fusion import TokenLMFusion
        from uniasr.lm.ngram import NgramLM

        model = lm if isinstance(lm, NgramLM) else NgramLM.read_arpa(lm)
        self.lm = TokenLMFusion(model, self.tokens.tokens, weight, length_bonus)

    @property
    def model(self) -> UniASR | None:
        """The torch module (None for backends without one)."""
        return getattr(self.backend, "model", None)

    @property
    def device(self) -> Any:
        """The torch backend's device (assignable: moves the model); "cpu" for onnxruntime."""
        return getattr(self.backend, "device", "cpu")

    @device.setter
    def device(self, device: Any) -> None:
        self.backend.device = device

    @property
    def config(self) -> UniASRConfig:
        return self.backend.config

    @property
    def sample_rate(self) -> int:
        return self.frontend.cfg.sample_rate

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device = "cpu") -> Recognizer:
        """A FunASR 1.x or ModelScope 0.x model directory on the torch backend."""
        from uniasr.model.funasr_compat import load_funasr_state_dict, read_model_dir
        from uniasr.model.uniasr import UniASR

        md = read_model_dir(path)
        model = UniASR(md.config)
        load_funasr_state_dict(model, md.checkpoint_path, md.config)
        frontend = Frontend(md.config.frontend, Cmvn.from_file(md.cmvn_path))
        converter = KanaKanjiConverter.for_model_dir(path)
        return cls(model, frontend, TokenTable(md.tokens), md.decoding, device, converter=converter)

    # --- the pieces ---------------------------------------------------------------------------------------

    def features(self, samples: np.ndarray, name: str | None = None) -> Any:
        """float32 mono samples at the model rate -> CMVN'd LFR features [T, F] (torch backend: a tensor on
        the model's device; onnxruntime: a numpy array). `name` (e.g. the input's key) starts any error."""
        feats = self.frontend(samples)
        if feats.shape[0] == 0:
            raise AudioError(
                f"{name + ': ' if name else ''}audio of {len(samples)} samples is too short: need at least "
                f"{self.frontend.cfg.window_samples} samples ({self.frontend.cfg.frame_length_ms:g} ms)"
            )
        return self.backend.features_array(np.ascontiguousarray(feats))

    def search_options(
        self, beam_size: int | None, nbest: int, hotwords: ContextGraph | None = None
    ) -> SearchOptions:
        beam = self.defaults.beam_size if beam_size is None else beam_size
        return SearchOptions(
            beam_size=beam, nbest=nbest, token_num_relax=self.defaults.token_num_relax, hotwords=hotwords,
            lm=self.lm,
        )  # fmt: skip

    def decode_features(
        self, feats: Sequence[Any], mode: str, opts: SearchOptions
    ) -> list[tuple[PassResult, list[Hypothesis]]]:
        """Batch of feature matrices -> (acoustic output, n-best hypotheses) per utterance."""
        return decode(self.backend, feats, mode, opts)

    def decode_each(
        self, keys: Sequence[str], feats: Sequence[Any], mode: str, opts: SearchOptions
    ) -> list[tuple[PassResult, list[Hypothesis]] | DecodeError]:
        """`decode_features` where no input can cost another its result: when the batch fails, each input
        is decoded alone, and one that still fails comes back as a DecodeError naming it (`keys[i]`)."""
        try:
            return list(self.decode_features(feats, mode, opts))
        except Exception as e:  # noqa: BLE001 - isolated below; the failing input gets the error
            if len(feats) == 1:
                error = DecodeError(f"{keys[0]}: decoding failed ({type(e).__name__}: {e})")
                error.__cause__ = e
                return [error]
            log.warning(
                "a batch of %d inputs failed (%s: %s); decoding each alone", len(feats), type(e).__name__, e
            )
        return [self.decode_each([k], [f], mode, opts)[0] for k, f in zip(keys, feats)]

    def make_result(
        self,
        key: str,
        out: PassResult,
        hyps: list[Hypothesis],
        mode: str,
        seconds: float,
        context: ContextGraph | None = None,
    ) -> Result:
        """`context`: the hotwords of the search (their phrases are written as given)."""
        best = hyps[0]
        steps = [i for i, t in enumerate(best.token_ids[1:-1]) if t not in (0, 1, 2)]
        ids = hypothesis_tokens(best)
        toks = self.tokens.to_tokens(ids)
        times = token_times(steps, out.cif.fire_frames, out.cif.alphas, out.frame_ms)
        alts = []
        for h in hyps:
            h_ids = hypothesis_tokens(h)
            h_toks = self.tokens.to_tokens(h_ids)
            h_kana = self.tokens.detokenize(h_toks)
            alts.append(Alternative(self.render_text(h_kana, context), h_toks, h_ids, h.score, h_kana))
        kana = self.tokens.detokenize(toks)
        text = self.render_text(kana, context)
        return Result(key, text, toks, ids, times, best.score, alts, mode, seconds, kana=kana)

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
        from uniasr.longform import finish_short_result, read_or_transcribe

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
    from uniasr.export.metadata import is_export_dir
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
