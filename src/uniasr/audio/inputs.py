"""Input lists: one input or many -> unique (key, source) pairs; Kaldi wav.scp and FunASR .jsonl lists."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from uniasr.audio.decoding import AudioSource, _as_numpy, _check_rate, _url_scheme
from uniasr.audio.errors import AudioError


def input_name(key: str, source: Any) -> str:
    """How errors name an input: its key, plus the path or URL when that differs from the key."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(source))
        if text != key:
            return f"{key} ({text})"
    return key


def _read_lines(where: str, what: str) -> list[str]:
    """The lines of a UTF-8 list file (BOM allowed); AudioError naming `what` and the path otherwise."""
    try:
        return Path(where).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise AudioError(f"{what} not found: {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AudioError(f"{where}: cannot read as UTF-8 text ({exc})") from exc


def read_wav_scp(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Parse a Kaldi ``wav.scp`` (``<key> <path-or-URL>`` per line; blank lines skipped) -> [(key, path)].

    Paths are returned as written (Kaldi resolves relative paths against the working directory).
    """
    where = os.fspath(path)
    lines = _read_lines(where, "wav.scp")
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
    lines = _read_lines(where, "input list")
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
