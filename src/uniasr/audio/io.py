"""Read any audio input as float32 mono at a target rate; resampling; wav.scp / input-list expansion.

Inputs (``AudioSource``): a local path (wav/flac/ogg through soundfile, everything else through PyAV/FFmpeg),
an http(s) URL, the bytes of any container, or a numpy array / torch tensor (1-D, or 2-D with channels on the
smaller axis when it is <= 8). Nothing is written to disk.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import urllib.parse
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


def input_name(key: str, source: Any) -> str:
    """How errors name an input: its key, plus the path or URL when that differs from the key."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(source))
        if text != key:
            return f"{key} ({text})"
    return key


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


def iter_audio_blocks(
    source: AudioSource,
    sample_rate: int = 16000,
    block_seconds: float = 60.0,
    *,
    source_rate: int | None = None,
    name: str | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``source`` incrementally: float32 mono blocks of ``block_seconds`` (the last one shorter).

    Local files are read block by block (an hour-long file is never whole in memory) and resampled with a
    streaming resampler; bytes, URLs and arrays are already in memory and are decoded whole, then sliced.
    The concatenated blocks equal ``load_audio(source, sample_rate)`` (bit-identical in the tests; soxr's
    streaming and one-shot outputs agree).
    """
    sample_rate = _check_rate(sample_rate, "sample_rate")
    if not block_seconds > 0:
        raise AudioError(f"block_seconds={block_seconds!r}: must be > 0")
    block = max(1, int(round(block_seconds * sample_rate)))
    label = _label(source, name)
    if isinstance(source, (str, os.PathLike)) and _url_scheme(os.fsdecode(os.fspath(source))) is None:
        path = Path(os.fsdecode(os.fspath(source)))
        _check_path(path, label)
        yield from _rebuffer(
            _resampled_blocks(_path_blocks(path, label, block_seconds), sample_rate, label), block
        )
        return
    samples = load_audio(source, sample_rate, source_rate=source_rate, name=name)
    for start in range(0, samples.shape[0], block):
        yield samples[start : start + block]


def _path_blocks(path: Path, label: str, block_seconds: float) -> Iterator[tuple[np.ndarray, int]]:
    """([n, C] float32, rate) pieces of a file: the same decoder order as ``_decode_path``.

    The second decoder is only tried when the first fails before producing any audio.
    """
    _check_wav_file(path, label)
    order = [_soundfile_blocks, _iter_av]
    if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
        order.reverse()
    errors = []
    for decoder in order:
        produced = False
        try:
            for piece in decoder(str(path), block_seconds):
                produced = True
                yield piece
            return
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - try the other decoder, report both below
            if produced:
                raise AudioError(f"{label}: decoding failed part-way through {path} ({exc})") from exc
            errors.append(f"{'soundfile' if decoder is _soundfile_blocks else 'PyAV/FFmpeg'}: {exc}")
    raise AudioError(f"{label}: cannot decode audio file {path} ({'; '.join(errors)})")


def _soundfile_blocks(file: str, block_seconds: float) -> Iterator[tuple[np.ndarray, int]]:
    import soundfile as sf

    with sf.SoundFile(file) as handle:
        frames = max(1, int(block_seconds * handle.samplerate))
        for data in handle.blocks(blocksize=frames, dtype="float32", always_2d=True):
            yield data, int(handle.samplerate)


def _resampled_blocks(
    pieces: Iterator[tuple[np.ndarray, int]], sample_rate: int, label: str
) -> Iterator[np.ndarray]:
    """Check, downmix and stream-resample decoded pieces -> float32 mono pieces at ``sample_rate``."""
    stream, rate, offset, total = None, None, 0, 0
    for data, piece_rate in pieces:
        if rate is None:
            rate = _check_rate(piece_rate, f"{label}: sample rate")
            if rate != sample_rate:
                import soxr

                stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(data.size - np.count_nonzero(finite))
            raise AudioError(
                f"{label}: {bad} samples are not finite (NaN/Inf) in the block starting at "
                f"{offset / rate:.2f} s; audio must be finite"
            )
        offset += data.shape[0]
        mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
        out = mono if stream is None else stream.resample_chunk(np.ascontiguousarray(mono), last=False)
        total += out.shape[0]
        yield np.asarray(out, dtype=np.float32)
    if offset == 0:
        raise AudioError(f"{label}: empty audio (0 samples)")
    if stream is not None:
        yield np.asarray(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True), dtype=np.float32)


def _rebuffer(pieces: Iterator[np.ndarray], block: int) -> Iterator[np.ndarray]:
    """Regroup pieces into blocks of exactly ``block`` samples (the last may be shorter, never empty)."""
    buffer: list[np.ndarray] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += piece.shape[0]
        while size >= block:
            joined = np.concatenate(buffer)
            yield joined[:block]
            rest = joined[block:]
            buffer, size = ([rest] if rest.size else []), rest.shape[0]
    if size:
        yield np.concatenate(buffer)


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


# ----------------------------------------------------------------------------------------- lists
def read_wav_scp(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Parse a Kaldi ``wav.scp`` (``<key> <path-or-URL>`` per line; blank lines skipped) -> [(key, path)].

    Paths are returned as written (Kaldi resolves relative paths against the working directory).
    """
    where = os.fspath(path)
    try:
        lines = Path(where).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise AudioError(f"wav.scp not found: {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AudioError(f"{where}: cannot read as UTF-8 text ({exc})") from exc
    entries: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise AudioError(f"{where}:{number}: expected '<key> <path>', got {line.strip()!r}")
        key, value = parts[0], parts[1].strip()
        if value.endswith("|"):
            raise AudioError(
                f"{where}:{number}: Kaldi pipe commands ('... |') are not supported; give a file path"
            )
        if key in seen:
            raise AudioError(f"{where}:{number}: duplicate key {key!r} (first on line {seen[key]})")
        seen[key] = number
        entries.append((key, value))
    return entries


JSONL_AUDIO_FIELDS = ("source", "audio", "wav")  # FunASR's list files use "source"; our manifests "audio"


def read_jsonl_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Parse a FunASR-style ``.jsonl`` input list (one ``{"key": ..., "source": ...}`` object per line,
    other fields such as ``target`` ignored; ``audio`` / ``wav`` also name the audio) -> [(key, path)].

    Paths are returned as written, as for wav.scp.
    """
    where = os.fspath(path)
    try:
        lines = Path(where).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise AudioError(f"input list not found: {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AudioError(f"{where}: cannot read as UTF-8 text ({exc})") from exc
    entries: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AudioError(f"{where}:{number}: not JSON ({exc.msg})") from None
        source = next((obj.get(f) for f in JSONL_AUDIO_FIELDS if isinstance(obj, dict) and f in obj), None)
        if not isinstance(obj, dict) or not isinstance(obj.get("key"), str) or not obj["key"]:
            raise AudioError(f'{where}:{number}: expected an object with a string "key": {line.strip()!r}')
        if not isinstance(source, str) or not source:
            raise AudioError(f'{where}:{number}: key {obj["key"]!r} has no string "source" (the audio path)')
        key = obj["key"]
        if key in seen:
            raise AudioError(f"{where}:{number}: duplicate key {key!r} (first on line {seen[key]})")
        seen[key] = number
        entries.append((key, source))
    return entries


def _is_scp(source: Any) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fsdecode(os.fspath(source))
    return _url_scheme(text) is None and (text.endswith(".scp") or Path(text).name == "wav.scp")


def _is_jsonl(source: Any) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fsdecode(os.fspath(source))
    return _url_scheme(text) is None and text.endswith(".jsonl")


def _key_for(source: Any, index: int) -> str:
    """The key of a listed input: a path's or URL's file stem with each run of whitespace replaced by `_`
    (``my clip.wav`` -> ``my_clip``), so it reads back from Kaldi ``key value`` lines; else by position."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(source))
        if _url_scheme(text) is not None:
            stem = Path(urllib.parse.unquote(urllib.parse.urlparse(text).path)).stem
        else:
            stem = Path(text).stem
        stem = re.sub(r"\s+", "_", stem.strip())
        return stem or f"{'url' if _url_scheme(text) else 'input'}_{index}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"bytes_{index}"
    return f"array_{index}"


def expand_inputs(inputs: Any, *, source_rate: int | None = None) -> list[tuple[str, AudioSource]]:
    """One input or a list/tuple of inputs -> unique (key, source) pairs, in order.

    ``*.scp`` and FunASR ``*.jsonl`` lists expand to their entries (keys from the file); a path or URL
    gets its file stem (whitespace replaced by ``_``: keys start Kaldi ``key value`` lines); bytes
    get ``bytes_<i>`` and arrays ``array_<i>`` (i = position in ``inputs``). A repeated key gets ``_2``,
    ``_3``, ... (the first keeps the plain key).
    ``source_rate`` is only validated here; pass it on to ``load_audio`` for the arrays.
    """
    if source_rate is not None:
        _check_rate(source_rate, "source_rate")
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not items:
        raise AudioError("no inputs given (an empty list)")
    pairs: list[tuple[str, AudioSource]] = []
    for index, item in enumerate(items):
        if _is_scp(item):
            entries = read_wav_scp(item)
            if not entries:
                raise AudioError(f"{os.fspath(item)}: wav.scp has no entries")
            pairs.extend(entries)
        elif _is_jsonl(item):
            entries = read_jsonl_list(item)
            if not entries:
                raise AudioError(f"{os.fspath(item)}: the .jsonl list has no entries")
            pairs.extend(entries)
        elif (
            isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)) or _as_numpy(item) is not None
        ):
            pairs.append((_key_for(item, index), item))
        else:
            raise AudioError(
                f"inputs[{index}]: unsupported input type {type(item).__name__}; expected a path, URL, "
                "wav.scp, bytes, numpy array or torch tensor"
            )
    used: set[str] = set()
    unique: list[tuple[str, AudioSource]] = []
    for key, source in pairs:
        candidate, n = key, 1
        while candidate in used:
            n += 1
            candidate = f"{key}_{n}"
        used.add(candidate)
        unique.append((candidate, source))
    return unique
