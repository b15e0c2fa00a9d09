"""The audio input API under its old name: re-exports from the modules that own each part.

New code imports from those: ``audio.decoding`` (one input whole; resampling), ``audio.blocks`` (block
iteration), ``audio.probe`` (durations), ``audio.inputs`` (input lists, wav.scp / .jsonl, keys).
"""

from uniasr.audio.blocks import iter_audio_blocks
from uniasr.audio.decoding import (
    MAX_SAMPLE_RATE,
    SOUNDFILE_SUFFIXES,
    AudioSource,
    load_audio,
    resample,
    wav_truncation,
)
from uniasr.audio.errors import AudioError
from uniasr.audio.inputs import JSONL_AUDIO_FIELDS, expand_inputs, input_name, read_jsonl_list, read_wav_scp
from uniasr.audio.probe import audio_duration_seconds

__all__ = [
    "JSONL_AUDIO_FIELDS",
    "MAX_SAMPLE_RATE",
    "SOUNDFILE_SUFFIXES",
    "AudioError",
    "AudioSource",
    "audio_duration_seconds",
    "expand_inputs",
    "input_name",
    "iter_audio_blocks",
    "load_audio",
    "read_jsonl_list",
    "read_wav_scp",
    "resample",
    "wav_truncation",
]
