"""ModelScope's `pipeline(task=Tasks.auto_speech_recognition, model=...)` as the UniASR model cards use it.

    inference_pipeline = pipeline(task=Tasks.auto_speech_recognition, model=DIR, output_dir="./results",
                                  param_dict={"decoding_model": "normal"})
    rec_result = inference_pipeline(audio_in=..., param_dict={"decoding_model": "offline"})

audio_in: a path, an http(s) URL, bytes, a numpy array or torch tensor (16 kHz unless `audio_fs=`), or a
`wav.scp`. Result: `{"text": text}` for one input; `{"text": [{"key": k, "value": text}, ...]}` for several
(a wav.scp or a list). `output_dir` gets `1best_recog/{text,score,time_stamp,rtf,token}` (and
`Nbest_recog/` with param_dict["nbest"]).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uniasr.compat.common import check_mode, hotword_kwargs, load_named
from uniasr.pipeline import Recognizer
from uniasr.result import Result

PARAMS = ("decoding_model", "hotword", "nbest", "beam_size")


class Tasks:
    """The task names of `modelscope.utils.constant.Tasks` that this layer serves."""

    auto_speech_recognition = "auto-speech-recognition"


class AsrPipeline:
    """What `pipeline(...)` returns: call it with `audio_in=`."""

    def __init__(
        self, rec: Recognizer, param_dict: dict[str, Any] | None = None, output_dir: str | Path | None = None
    ) -> None:
        self.recognizer = rec
        self.param_dict = _checked_params(param_dict, "pipeline(param_dict=...)")
        self.output_dir = output_dir

    def __call__(
        self,
        audio_in: Any = None,
        *,
        param_dict: dict[str, Any] | None = None,
        output_dir: str | Path | None = None,
        audio_fs: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if audio_in is None:
            if "input" not in kwargs:
                raise TypeError("the pipeline needs audio_in= (a path, URL, bytes, array or wav.scp)")
            audio_in = kwargs.pop("input")
        if kwargs:
            raise TypeError(f"unsupported argument(s): {', '.join(sorted(kwargs))} (see docs/compat.md)")
        params = {**self.param_dict, **_checked_params(param_dict, "param_dict")}
        rec = self.recognizer
        results = rec.transcribe(
            audio_in,
            mode=check_mode(params.get("decoding_model", rec.defaults.mode), 'param_dict["decoding_model"]'),
            beam_size=params.get("beam_size"),
            nbest=int(params.get("nbest", 1)),
            source_rate=audio_fs,
            output_dir=output_dir if output_dir is not None else self.output_dir,
            overwrite=True,  # as ModelScope, which rewrites its output files
            **hotword_kwargs(rec, params.get("hotword")),
        )
        return shape_results(results, several=_several(audio_in))


def _checked_params(param_dict: dict[str, Any] | None, where: str) -> dict[str, Any]:
    params = dict(param_dict or {})
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ValueError(f"{where}: unsupported key(s) {', '.join(unknown)}; supported: {', '.join(PARAMS)}")
    return params


def _several(audio_in: Any) -> bool:
    """A list, or a wav.scp / .jsonl list file: results come back keyed."""
    if isinstance(audio_in, (list, tuple)):
        return True
    return isinstance(audio_in, (str, Path)) and str(audio_in).endswith((".scp", ".jsonl"))


def shape_results(results: list[Result], several: bool) -> dict[str, Any]:
    """ModelScope's shapes: {"text": str} for one input, {"text": [{"key", "value"}, ...]} for several."""
    for r in results:
        if r.error is not None:
            raise ValueError(r.error)
    if not several and len(results) == 1:
        return {"text": results[0].text}
    return {"text": [{"key": r.key, "value": r.text} for r in results]}


def pipeline(
    task: str = Tasks.auto_speech_recognition,
    model: Any = None,
    *,
    param_dict: dict[str, Any] | None = None,
    output_dir: str | Path | None = None,
    device: str = "cpu",
    backend: str | None = None,
    model_revision: str | None = None,
    **kwargs: Any,
) -> AsrPipeline:
    """ModelScope's `pipeline()` for `Tasks.auto_speech_recognition` with a UniASR model (`model_revision` is
    ignored: a local dir has one). Other ModelScope arguments (`vad_model`, `punc_model`, `lm_model`, ...)
    are refused with their names rather than silently ignored."""
    if task != Tasks.auto_speech_recognition:
        raise ValueError(f"task={task!r}: uniasr.compat serves only Tasks.auto_speech_recognition")
    if kwargs:
        raise TypeError(f"unsupported argument(s): {', '.join(sorted(kwargs))} (see docs/compat.md)")
    return AsrPipeline(load_named(model, device=device, backend=backend), param_dict, output_dir)
