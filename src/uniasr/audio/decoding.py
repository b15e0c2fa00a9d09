"""Decode one audio input whole -> float32 mono at a target rate; resampling; the input checks.

Inputs (``AudioSource``): a local path (wav/flac/ogg through soundfile, everything else through PyAV/FFmpeg),
an http(s) URL, the bytes of any container, or a numpy array / torch tensor (1-D, or 2-D with channels on the
smaller axis when it is <= 8). Nothing is written to disk.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from uniasr.audio.errors import AudioError
from uniasr.audio.url import download

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, "torch.Tensor"]  # noqa: UP007

MAX_SAMPLE_RATE = 384_000
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga"})
_INT_SCALES = {np.dtype(np.int8): 128.0, np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _check_rate(rate: Any, what: str) -> int:
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float, np.integer, np.floating))
        or rate != int(rate)
    ):
        raise AudioError(f"{what}={rate!r}: expected an integer sample rate in Hz")
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{what}={rate!r}: sample rate must be in 1..{MAX_SAMPLE_RATE} Hz")
    return int(rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality (soxr 'HQ') resampling of [N] (or [N, C]) samples; returns float32, ``~N * to / from``."""
    from_rate = _check_rate(from_rate, "from_rate")
    to_rate = _check_rate(to_rate, "to_rate")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate == to_rate or samples.shape[0] == 0:
        return samples
    import soxr

    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"), dtype=np.float32)


# ----------------------------------------------------------------------------------------- decoding
def _decode_soundfile(file: Any) -> tuple[np.ndarray, int]:
    """-> ([N, C] float32, rate). Integer PCM comes back scaled to [-1, 1)."""
    import soundfile as sf

    data, rate = sf.read(file, dtype="float32", always_2d=True)
    return data, int(rate)


def _decode_av(file: Any) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV -> ([N, C] float32, rate)."""
    return _concat_blocks(list(_iter_av(file, block_seconds=None)))


def _iter_av(file: Any, block_seconds: float | None) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ([n, C] float32, rate) pieces of the first audio stream, each >= ``block_seconds`` if set."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a core dependency
        raise ImportError("decoding this format needs PyAV: pip install av") from exc
    with av.open(file, mode="r") as container:
        if not container.streams.audio:
            raise AudioError("the container has no audio stream")
        stream = container.streams.audio[0]
        converter = av.AudioResampler(format="fltp")  # planar float32, keeps layout and rate
        pending: list[np.ndarray] = []
        pending_len, rate = 0, 0
        for packet_frame in container.decode(stream):
            for frame in converter.resample(packet_frame):
                rate = rate or int(frame.sample_rate)
                pending.append(frame.to_ndarray().T)
                pending_len += frame.samples
                if block_seconds is not None and pending_len >= block_seconds * rate:
                    yield np.concatenate(pending), rate
                    pending, pending_len = [], 0
        for frame in converter.resample(None):
            rate = rate or int(frame.sample_rate)
            pending.append(frame.to_ndarray().T)
        if pending:
            yield np.concatenate(pending), rate


def _concat_blocks(blocks: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    if not blocks:
        return np.zeros((0, 1), dtype=np.float32), 0
    rate = blocks[0][1]
    return np.concatenate([b for b, _ in blocks]), rate


def _decode_bytes(data: bytes, label: str) -> tuple[np.ndarray, int]:
    """Sniff any container from memory: soundfile first, then PyAV."""
    if len(data) == 0:
        raise AudioError(f"{label}: empty bytes (0 bytes), no audio to decode")
    _warn_if_truncated(data[: 1 << 16], len(data), label)
    try:
        return _decode_soundfile(io.BytesIO(data))
    except ImportError:
        raise
    except Exception as sf_exc:  # noqa: BLE001 - fall back to FFmpeg, report both below
        try:
            return _decode_av(io.BytesIO(data))
        except AudioError as exc:
            raise AudioError(f"{label}: {exc}") from exc
        except ImportError:
            raise
        except Exception as av_exc:  # noqa: BLE001
            raise AudioError(
                f"{label}: cannot decode {len(data)} bytes as audio: not a format soundfile reads "
                f"(wav/flac/ogg: {sf_exc}) nor one PyAV/FFmpeg reads ({av_exc})"
            ) from av_exc


def wav_truncation(head: bytes, size: int) -> str | None:
    """Why a RIFF/WAVE file of `size` bytes beginning with `head` is cut short, or None: its data chunk
    declares more bytes than follow it (a copy or recording that stopped part-way). Streamed wavs that
    declare 0 or 0xFFFFFFFF bytes are not judged."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, declared = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            present = size - (pos + 8)
            if declared in (0, 0xFFFFFFFF) or declared <= present:
                return None
            return f"truncated wav: its data chunk declares {declared} bytes but only {present} follow"
        pos += 8 + declared + (declared & 1)
    return None


def _warn_if_truncated(head: bytes, size: int, label: str) -> None:
    problem = wav_truncation(head, size)
    if problem:
        logger.warning("%s: %s; decoding the audio that is there", label, problem)


def _check_wav_file(path: Path, label: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        _warn_if_truncated(head, path.stat().st_size, label)
    except OSError:
        pass  # the decoder reports unreadable files


def _check_path(path: Path, label: str) -> None:
    if not path.exists():
        raise AudioError(f"{label}: audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{label}: is a directory, not an audio file: {path}")


def _decode_path(path: Path, label: str) -> tuple[np.ndarray, int]:
    """soundfile for wav/flac/ogg (PyAV if that fails); PyAV for everything else (soundfile if that fails)."""
    _check_path(path, label)
    _check_wav_file(path, label)
    order = [_decode_soundfile, _decode_av]
    if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
        order.reverse()
    errors = []
    for decoder in order:
        try:
            return decoder(str(path))
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - try the other decoder, report both below
            errors.append(f"{'soundfile' if decoder is _decode_soundfile else 'PyAV/FFmpeg'}: {exc}")
    raise AudioError(f"{label}: cannot decode audio file {path} ({'; '.join(errors)})")


def _url_scheme(source: str) -> str | None:
    match = _URL_RE.match(source)
    return match.group(1).lower() if match else None


def _check_url(url: str, label: str) -> None:
    scheme = _url_scheme(url)
    if scheme not in ("http", "https"):
        raise AudioError(f"{label}: unsupported URL scheme '{scheme}://' (use http(s) or a local path)")


# ----------------------------------------------------------------------------------------- arrays
def _as_numpy(source: Any) -> np.ndarray | None:
    """numpy view of an ndarray or torch.Tensor (None if it is neither)."""
    if isinstance(source, np.ndarray):
        return source
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(source, torch.Tensor):
        tensor = source.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()  # numpy has no bfloat16; complex/bool are rejected as numpy dtypes
        return tensor.numpy()
    return None


def _array_to_channels(array: np.ndarray, label: str) -> np.ndarray:
    """1-D [N] or 2-D [C, N] / [N, C] -> float32 [N, C] scaled to [-1, 1]."""
    dtype = array.dtype
    if dtype.kind == "f":
        data = array.astype(np.float32, copy=False)
    elif dtype in _INT_SCALES:
        data = array.astype(np.float32) / np.float32(_INT_SCALES[dtype])
    elif dtype.kind in "iu":
        raise AudioError(
            f"{label}: integer dtype {dtype} is not supported; use int16, int32 or float samples"
        )
    else:
        raise AudioError(
            f"{label}: non-numeric dtype {dtype}; expected float32/float64 or int16/int32 samples"
        )
    if data.ndim == 1:
        return data[:, None]
    if data.ndim != 2:
        raise AudioError(
            f"{label}: {data.ndim}-D array of shape {tuple(data.shape)}; "
            "expected [N] or [channels, N] / [N, channels]"
        )
    rows, cols = data.shape
    if min(rows, cols) > 8:
        raise AudioError(
            f"{label}: 2-D array of shape {(rows, cols)} has no channel axis (the smaller axis must be <= 8)"
        )
    return data.T if rows <= cols else data


def _finalize(data: np.ndarray, rate: int, sample_rate: int, label: str) -> np.ndarray:
    """[N, C] float32 at ``rate`` -> checked float32 mono [M] at ``sample_rate``."""
    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(f"{label}: empty audio (0 samples)")
    rate = _check_rate(rate, f"{label}: sample rate")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        nan = int(np.count_nonzero(np.isnan(data)))
        raise AudioError(
            f"{label}: {bad} of {data.size} samples are not finite ({nan} NaN, {bad - nan} Inf); "
            "audio must be finite"
        )
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    peak = float(np.max(np.abs(mono)))
    if peak > 2.0:
        logger.warning(
            "%s: peak amplitude %.1f is far outside [-1, 1]; was int16 audio passed as float?", label, peak
        )
    return resample(np.ascontiguousarray(mono), rate, sample_rate)


def _label(source: Any, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "bytes"
    return "array"


def load_audio(
    source: AudioSource, sample_rate: int = 16000, *, source_rate: int | None = None, name: str | None = None
) -> np.ndarray:
    """Decode ``source`` -> float32 mono [num_samples] in [-1, 1] at ``sample_rate`` Hz.

    ``source_rate`` is the rate of an array input (None: already at ``sample_rate``); containers carry
    their own rate and ignore it. ``name`` replaces the path / "array" / "bytes" in error messages (e.g. a
    wav.scp key).
    """
    sample_rate = _check_rate(sample_rate, "sample_rate")
    label = _label(source, name)
    data, rate = _decode_any(source, sample_rate, source_rate, label)
    return _finalize(data, rate, sample_rate, label)


def _decode_any(source: Any, sample_rate: int, source_rate: int | None, label: str) -> tuple[np.ndarray, int]:
    """-> ([N, C] float32, rate) for any supported source."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if _url_scheme(text) is not None:
            _check_url(text, label)
            return _decode_bytes(download(text, label), label)
        return _decode_path(Path(text), label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(source), label)
    array = _as_numpy(source)
    if array is None:
        raise AudioError(
            f"{label}: unsupported input type {type(source).__name__}; expected a path, URL, bytes, "
            "numpy array or torch tensor"
        )
    rate = sample_rate if source_rate is None else _check_rate(source_rate, f"{label}: source_rate")
    return _array_to_channels(array, label), rate
