"""Cheap duration probes: container headers or the array length, never a full decode."""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from uniasr.audio.decoding import AudioSource, _as_numpy, _url_scheme

logger = logging.getLogger(__name__)


def audio_duration_seconds(source: AudioSource, *, source_rate: int | None = None) -> float | None:
    """Duration in seconds from headers where cheap (files, bytes) or the array length; None if unknown.

    Arrays use ``source_rate`` (None: 16 kHz). URLs are not downloaded (None). Never raises for bad input.
    """
    try:
        array = _as_numpy(source) if not isinstance(source, (str, os.PathLike, bytes)) else None
        if array is not None:
            if array.ndim == 0 or array.ndim > 2:
                return None
            num = array.shape[0] if array.ndim == 1 else max(array.shape) if min(array.shape) <= 8 else None
            return None if num is None else num / (source_rate or 16000)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return _probe_duration(lambda: io.BytesIO(data))
        if not isinstance(source, (str, os.PathLike)):
            return None
        text = os.fsdecode(os.fspath(source))
        if _url_scheme(text) is not None or not os.path.isfile(text):
            return None
        return _probe_duration(lambda: text)
    except Exception as exc:  # noqa: BLE001 - a probe; the real decode reports errors
        logger.debug("duration probe failed: %s", exc)
        return None


def _probe_duration(opener: Any) -> float | None:
    import soundfile as sf

    try:
        info = sf.info(opener())
        if info.samplerate > 0:
            return info.frames / info.samplerate
    except Exception:  # noqa: BLE001, S110 - not a soundfile format; try FFmpeg
        pass
    import av

    with av.open(opener()) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000  # av.time_base
    return None
