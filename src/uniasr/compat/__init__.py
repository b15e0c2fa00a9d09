"""The entry points users bring from the model card and from FunASR, running on uniasr.

    from uniasr.compat import Tasks, pipeline     # was: from modelscope.pipelines import pipeline
                                                  #      from modelscope.utils.constant import Tasks
    p = pipeline(task=Tasks.auto_speech_recognition, model="path/to/model_dir")
    p(audio_in="a.wav", param_dict={"decoding_model": "normal"})        # {"text": "..."}

    from uniasr.compat import AutoModel           # was: from funasr import AutoModel
    AutoModel(model="path/to/model_dir").generate(input="a.wav")        # [{"key", "text", "timestamp"}]

Both are thin: they map arguments onto `uniasr.load()` and `Recognizer.transcribe()`, and shape the
results as those libraries do. The mapping, and what is not supported, is in `docs/compat.md`.
"""

from __future__ import annotations

from uniasr.compat.funasr import AutoModel
from uniasr.compat.modelscope import AsrPipeline, Tasks, pipeline

__all__ = ["AsrPipeline", "AutoModel", "Tasks", "pipeline"]
