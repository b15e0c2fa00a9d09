"""ModelBundle: a loaded model's pieces (backend, frontend, token table, decoding defaults, text form) and
the steps of one batch: samples -> features -> n-best hypotheses -> Result.

`uniasr.pipeline.Recognizer` adds whole inputs (reading, long inputs, batching, output files) on top;
`uniasr.longform` and `uniasr.stream` need only the pieces here, so they never import the pipeline.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from uniasr.acoustic import PassResult, decode
from uniasr.audio.errors import AudioError
from uniasr.audio.features import Frontend
from uniasr.backends.base import AcousticBackend
from uniasr.decode.context import ContextGraph
from uniasr.decode.search import Fusion, Hypothesis, SearchOptions
from uniasr.decode.tokens import TokenTable
from uniasr.hotwords import (
    DEFAULT_AC_THRESHOLD,
    DEFAULT_WEIGHT,
    Hotword,
    HotwordLimits,
    build_graph,
    parse_hotwords,
    written_forms,
)
from uniasr.kana_kanji import KanaKanjiConverter, UserWords
from uniasr.model.config import DecodingDefaults, UniASRConfig
from uniasr.result import Result, hypotheses_to_result

if TYPE_CHECKING:  # torch is imported only by the torch backend: the onnx runtime works without it
    import torch

    from uniasr.decode.lm_fusion import TokenLMFusion
    from uniasr.model.uniasr import UniASR

log = logging.getLogger(__name__)


class DecodeError(RuntimeError):
    """Decoding one input failed (the model or search raised); the message names the input."""


TEXT_FORMS = ("auto", "written", "kana")
LN10 = float(np.log(10.0))  # ARPA log10 -> nats

HotwordSpec = str | Path | Mapping[str, float] | Sequence[str | Hotword] | ContextGraph
"""Hotwords as `transcribe()` and `StreamingSession` take them (see `uniasr.hotwords`): a path, a text of
lines, {phrase: weight}, a list of phrases, or a graph made once by `ModelBundle.hotword_graph`."""


class ModelBundle:
    """A loaded UniASR model's pieces: shared, stateless, safe to use from many sessions and threads.

    Made by `uniasr.load()` as a `uniasr.pipeline.Recognizer`, which adds `transcribe()`.
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
        if isinstance(model, AcousticBackend):
            self.backend: AcousticBackend = model
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

    def render_text(self, kana: str, hotwords: Fusion | None = None) -> str:
        """The model's detokenised output -> the text a Result shows (see `text_form`). With a hotword
        ContextGraph, the converter writes each phrase that was read as given (a user dictionary)."""
        context = hotwords if isinstance(hotwords, ContextGraph) else None
        convert = self._text_form == "written" or (self._text_form == "auto" and self.defaults.convert_kana)
        if not convert:
            return kana
        words: UserWords = ()
        if context is not None:
            cached = self._written.get(context)
            if cached is None:
                if len(self._written) > 16:
                    self._written.clear()
                cached = self._written[context] = written_forms(context, self.tokens.tokens)
            words = cached
        return self._kana_converter()(kana, words)

    # --- contextual decoding ------------------------------------------------------------------------------

    def hotword_graph(
        self,
        hotwords: HotwordSpec | None,
        weight: float | None = None,
        limits: HotwordLimits = HotwordLimits(),
        ac_threshold: float | None = None,
    ) -> ContextGraph | None:
        """A hotword list (a path, text lines, {phrase: weight}, a list; see `uniasr.hotwords`) in this
        model's token space, for `transcribe(hotwords=...)` / `StreamingSession(hotwords=...)`; None when
        empty. A ContextGraph is passed through. `weight`: the bonus per token of phrases without one;
        `ac_threshold`: the decoder probability a phrase's tokens must average (geometric mean) to count."""
        if hotwords is None or isinstance(hotwords, ContextGraph):
            return hotwords
        return build_graph(
            parse_hotwords(hotwords),
            self.tokens.index,
            DEFAULT_WEIGHT if weight is None else weight,
            limits,
            ac_threshold=DEFAULT_AC_THRESHOLD if ac_threshold is None else ac_threshold,
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
        return self.backend.model

    @property
    def device(self) -> Any:
        """The torch backend's device (assignable: moves the model); "cpu" for onnxruntime."""
        return self.backend.device

    @device.setter
    def device(self, device: Any) -> None:
        self.backend.device = device

    @property
    def config(self) -> UniASRConfig:
        return self.backend.config

    @property
    def sample_rate(self) -> int:
        return self.frontend.cfg.sample_rate

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
        d = self.defaults
        return SearchOptions(
            beam_size=d.beam_size if beam_size is None else beam_size, nbest=nbest,
            token_num_relax=d.token_num_relax, hotwords=hotwords, lm=self.lm, early_end=d.early_end,
            agreement_weight=d.agreement_weight, agreement_order=d.agreement_order,
            joint_pass1_weight=d.joint_pass1_weight, joint_length_bonus=d.joint_length_bonus,
            joint_text_score=self.written_score if d.joint_written_weight > 0 and d.convert_kana else None,
        )  # fmt: skip

    def written_score(self, tokens: Sequence[int]) -> float:
        """`defaults.joint_written_weight` x `written_logprob(tokens)`: the joint choice's text score."""
        return self.defaults.joint_written_weight * self.written_logprob(tokens)

    def written_logprob(self, tokens: Sequence[int]) -> float:
        """The converter's written LM's ln-probability of the kanji-kana conversion of `tokens` (ids, no
        <s>/</s>; with </s>), whatever `text_form` shows; 0 without an LM."""
        converter = self._kana_converter()
        lm = converter.lm
        if lm is None:
            return 0.0
        text = converter(self.tokens.detokenize(self.tokens.to_tokens(list(tokens))))
        return LN10 * lm.sentence_logprob(list(text))

    def _kana_converter(self) -> KanaKanjiConverter:
        """`converter`, made (the dictionary alone) at its first use when none was given."""
        if self.converter is None:
            self.converter = KanaKanjiConverter()
        return self.converter

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
        hotwords: Fusion | None = None,
    ) -> Result:
        """The n-best `hyps` (best first) of one utterance with its acoustic output `out` -> its Result;
        `hotwords`: the search's hotword fusion (the phrases of a ContextGraph are written as given)."""
        render = functools.partial(self.render_text, hotwords=hotwords)
        cif = out.cif
        return hypotheses_to_result(
            key, hyps, cif.fire_frames, cif.alphas, out.config.frame_ms, self.tokens, render, mode=mode,
            duration_s=seconds,
        )  # fmt: skip
