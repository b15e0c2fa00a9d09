"""FunASR's `frontend_conf` keys (WavFrontend, WavFrontendOnline) and our frontend field names, shared by
the UniASR config.yaml (`model_config`) and the FSMN-VAD one (`fsmn_vad`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# FunASR key -> field of `audio.features.FrontendConfig` and `vad.fsmn_frontend.FsmnFrontendConfig`
FRONTEND_KEYS = {
    "fs": "sample_rate",
    "window": "window",
    "n_mels": "n_mels",
    "frame_length": "frame_length_ms",
    "frame_shift": "frame_shift_ms",
    "lfr_m": "lfr_m",
    "lfr_n": "lfr_n",
    "dither": "dither",
}


def frontend_fields(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A FunASR `frontend_conf` -> our field values, for the keys it gives (other keys are left out)."""
    return {ours: conf[theirs] for theirs, ours in FRONTEND_KEYS.items() if theirs in conf}


def frontend_conf(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Our frontend field values (e.g. `dataclasses.asdict(FrontendConfig)`) -> a FunASR `frontend_conf`."""
    return {theirs: fields[ours] for theirs, ours in FRONTEND_KEYS.items() if ours in fields}
