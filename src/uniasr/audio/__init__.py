"""Audio input (any container, URL, bytes, arrays -> 16 kHz mono float32) and the FunASR feature frontend."""

from uniasr.audio.blocks import iter_audio_blocks
from uniasr.audio.decoding import AudioSource, load_audio, resample
from uniasr.audio.errors import AudioError
from uniasr.audio.features import (
    Cmvn,
    FeatureState,
    Frontend,
    FrontendConfig,
    accept_samples,
    apply_lfr,
    compute_fbank,
    finish,
    finish_state,
    init_feature_state,
)
from uniasr.audio.inputs import expand_inputs, read_wav_scp
from uniasr.audio.probe import audio_duration_seconds

__all__ = [
    "AudioError",
    "AudioSource",
    "Cmvn",
    "FeatureState",
    "Frontend",
    "FrontendConfig",
    "accept_samples",
    "apply_lfr",
    "audio_duration_seconds",
    "compute_fbank",
    "expand_inputs",
    "finish",
    "finish_state",
    "init_feature_state",
    "iter_audio_blocks",
    "load_audio",
    "read_wav_scp",
    "resample",
]
