"""Incremental decoding: float32 mono blocks of a file read piece by piece and stream-resampled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from uniasr.audio.decoding import (
    SOUNDFILE_SUFFIXES,
    AudioSource,
    _check_path,
    _check_rate,
    _check_wav_file,
    _iter_av,
    _label,
    _url_scheme,
    load_audio,
)
from uniasr.audio.errors import AudioError


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
