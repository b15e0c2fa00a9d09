"""Training data: Kaldi-style dirs (wav.scp + text), JSON-lines manifests and feature shards; validation.

Sources (`read_source` tells them apart):
* a directory with ``wav.scp`` and ``text`` (``key path`` / ``key transcript`` lines);
* a ``.jsonl`` manifest, one ``{"key", "audio", "text"[, "duration"]}`` per line (FunASR's
  ``{"key", "source", "target"}`` is accepted too);
* a feature-shard directory (written by `uniasr.train.features.dump_features`): ``shard_*.jsonl`` files whose
  lines are ``{"key", "text", "fbank": "<npz file>", "frames"}``; each jsonl file is one shard.

Problems are collected as `DataIssue`s (key + what is wrong) instead of stopping at the first one; the caller
decides (``--on-bad-data skip|error``) with `handle_issues`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from uniasr.audio.errors import AudioError
from uniasr.audio.features import FrontendConfig
from uniasr.audio.inputs import read_wav_scp
from uniasr.audio.probe import audio_duration_seconds

log = logging.getLogger(__name__)

DEV_NAMES = ("dev", "validation", "valid", "val")
MAX_LISTED = 20


@dataclass(frozen=True)
class Utterance:
    """One training example. Exactly one of `audio` (path/URL) and `fbank` (.npz holding array `key`).

    duration: seconds (optional); frames: LFR frames (known for feature shards, else estimated).
    """

    key: str
    text: str
    audio: str | None = None
    fbank: str | None = None
    duration: float | None = None
    frames: int | None = None


@dataclass(frozen=True)
class DataIssue:
    """A problem with one entry: `key` is the utterance key (or ``file:line`` when there is none)."""

    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


class BadDataError(ValueError):
    """Raised under ``--on-bad-data error``; the message lists the offending keys."""

    def __init__(self, issues: Sequence[DataIssue], where: str) -> None:
        self.issues = list(issues)
        shown = "\n  ".join(str(i) for i in self.issues[:MAX_LISTED])
        more = f"\n  ... and {len(self.issues) - MAX_LISTED} more" if len(self.issues) > MAX_LISTED else ""
        super().__init__(
            f"{where}: {len(self.issues)} bad entries (use --on-bad-data skip to train without them):\n"
            f"  {shown}{more}"
        )


def handle_issues(issues: Sequence[DataIssue], policy: str, where: str) -> None:
    """Raise BadDataError (policy "error") or log every issue by key (policy "skip")."""
    if policy not in ("skip", "error"):
        raise ValueError(f"on_bad_data={policy!r}; valid: 'skip', 'error'")
    if not issues:
        return
    if policy == "error":
        raise BadDataError(issues, where)
    log.warning("%s: skipping %d bad entries", where, len(issues))
    for issue in issues:
        log.warning("  skipped %s", issue)


# --- readers ------------------------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e


def _lenient_scp(path: Path) -> tuple[dict[str, str], list[DataIssue]]:
    """wav.scp entries, collecting malformed lines and duplicates as issues (read_wav_scp stops at one)."""
    try:
        return dict(read_wav_scp(path)), []
    except AudioError:
        pass
    entries: dict[str, str] = {}
    issues = []
    for number, line in enumerate(_lines(path), start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if len(parts) == 1:
            issues.append(DataIssue(parts[0], f"{path.name}:{number}: no audio path after the key"))
        elif parts[0] in entries:
            issues.append(DataIssue(parts[0], f"{path.name}:{number}: duplicate key in wav.scp"))
        elif parts[1].strip().endswith("|"):
            issues.append(DataIssue(parts[0], f"{path.name}:{number}: pipe commands are not supported"))
        else:
            entries[parts[0]] = parts[1].strip()
    return entries, issues


def _text_file(path: Path) -> tuple[dict[str, str], list[DataIssue]]:
    texts: dict[str, str] = {}
    issues = []
    for number, line in enumerate(_lines(path), start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if parts[0] in texts:
            issues.append(DataIssue(parts[0], f"{path.name}:{number}: duplicate key in text"))
            continue
        texts[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return texts, issues


def read_kaldi_dir(path: str | Path) -> tuple[list[Utterance], list[DataIssue]]:
    """`path`/wav.scp + `path`/text -> utterances (in wav.scp order) and issues."""
    path = Path(path)
    for name in ("wav.scp", "text"):
        if not (path / name).is_file():
            raise ValueError(f"data dir {path} has no {name} (expected wav.scp and text)")
    audio, issues = _lenient_scp(path / "wav.scp")
    texts, text_issues = _text_file(path / "text")
    issues += text_issues
    utts = []
    for key, source in audio.items():
        if key not in texts:
            issues.append(DataIssue(key, "has audio in wav.scp but no line in text"))
        else:
            utts.append(Utterance(key, texts[key], audio=source))
    issues += [
        DataIssue(k, "has a transcript in text but no audio in wav.scp") for k in texts if k not in audio
    ]
    return utts, issues


def _manifest_entry(obj: object, where: str, base: Path) -> Utterance | DataIssue:
    if not isinstance(obj, dict):
        return DataIssue(where, "not a JSON object")
    key = obj.get("key")
    if not isinstance(key, str) or not key:
        return DataIssue(where, "no string 'key'")
    text = obj.get("text", obj.get("target"))
    if not isinstance(text, str):
        return DataIssue(key, f"{where}: no string 'text'")
    audio, fbank = obj.get("audio", obj.get("source")), obj.get("fbank")
    if fbank is not None:
        if not isinstance(fbank, str):
            return DataIssue(key, f"{where}: 'fbank' must be a file name")
        frames = obj.get("frames")
        return Utterance(key, text, fbank=str(base / fbank), frames=int(frames) if frames else None)
    if not isinstance(audio, str) or not audio:
        return DataIssue(key, f"{where}: no 'audio' path")
    duration = obj.get("duration")
    if duration is not None and not isinstance(duration, (int, float)):
        return DataIssue(key, f"{where}: 'duration' must be a number of seconds")
    return Utterance(key, text, audio=audio, duration=float(duration) if duration is not None else None)


def read_manifest(path: str | Path) -> tuple[list[Utterance], list[DataIssue]]:
    """JSON-lines manifest -> utterances and issues (bad JSON is named by ``file:line``)."""
    path = Path(path)
    utts, issues, seen = [], [], set()
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            entry = _manifest_entry(json.loads(line), where, path.parent)
        except ValueError as e:
            entry = DataIssue(where, f"invalid JSON ({e})")
        if isinstance(entry, DataIssue):
            issues.append(entry)
        elif entry.key in seen:
            issues.append(DataIssue(entry.key, f"{where}: duplicate key"))
        else:
            seen.add(entry.key)
            utts.append(entry)
    return utts, issues


def shard_files(path: str | Path) -> list[Path] | None:
    """The shard manifests of a feature-shard dir (or a ``.list`` of jsonl paths); None for other sources."""
    path = Path(path)
    if path.is_file() and path.suffix == ".list":
        return [Path(line.strip()) for line in _lines(path) if line.strip()]
    if path.is_dir() and not (path / "wav.scp").exists():
        shards = sorted(path.glob("shard_*.jsonl"))
        return shards or None
    return None


def read_source(path: str | Path) -> tuple[list[Utterance], list[DataIssue]]:
    """Any supported source -> (utterances, issues)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"training data {str(path)!r} does not exist")
    shards = shard_files(path)
    if shards is not None:
        utts, issues = [], []
        for shard in shards:
            u, i = read_manifest(shard)
            utts += u
            issues += i
        return utts, issues
    if path.is_dir():
        return read_kaldi_dir(path)
    if path.suffix in (".jsonl", ".json"):
        return read_manifest(path)
    raise ValueError(
        f"{path}: not a data dir (wav.scp + text), a .jsonl manifest, a feature-shard dir or a .list file"
    )


def find_splits(data_dir: str | Path) -> tuple[Path, Path | None]:
    """`data_dir`/train and `data_dir`/dev (or validation/valid/val; dirs or .jsonl) -> (train, dev|None)."""
    data_dir = Path(data_dir)

    def pick(names: Sequence[str]) -> Path | None:
        for name in names:
            for cand in (data_dir / name, data_dir / f"{name}.jsonl"):
                if cand.exists():
                    return cand
        return None

    train = pick(["train"])
    if train is None:
        raise ValueError(f"data dir {data_dir} has no train/ (or train.jsonl) split")
    return train, pick(DEV_NAMES)


# --- validation ---------------------------------------------------------------------------------------------


def _is_local(source: str) -> bool:
    return "://" not in source


def check_utterances(
    utts: Sequence[Utterance], check_files: bool = True
) -> tuple[list[Utterance], list[DataIssue]]:
    """Drop entries with an empty transcript or a missing local audio/feature file."""
    good, issues = [], []
    for u in utts:
        if not u.text.strip():
            issues.append(DataIssue(u.key, "empty transcript"))
        elif check_files and u.audio is not None and _is_local(u.audio) and not os.path.isfile(u.audio):
            issues.append(DataIssue(u.key, f"audio file not found: {u.audio}"))
        elif check_files and u.fbank is not None and not os.path.isfile(u.fbank):
            issues.append(DataIssue(u.key, f"feature file not found: {u.fbank}"))
        else:
            good.append(u)
    return good, issues


def lfr_frames(num_samples: int, cfg: FrontendConfig) -> int:
    """LFR frames the frontend makes from `num_samples` samples."""
    return cfg.num_lfr_frames(cfg.num_fbank_frames(num_samples))


def with_frames(utts: Sequence[Utterance], cfg: FrontendConfig) -> tuple[list[Utterance], list[DataIssue]]:
    """Fill in `frames` (from `duration`, else from the audio header); unreadable headers become issues."""
    good, issues = [], []
    for u in utts:
        if u.frames is not None:
            good.append(u)
            continue
        seconds = u.duration
        if seconds is None and u.audio is not None:
            seconds = audio_duration_seconds(u.audio)
        if seconds is None:
            issues.append(DataIssue(u.key, f"unreadable audio (cannot read its header): {u.audio}"))
            continue
        frames = lfr_frames(int(round(seconds * cfg.sample_rate)), cfg)
        if frames <= 0:
            issues.append(DataIssue(u.key, f"audio too short ({seconds:.3f} s) for one feature frame"))
            continue
        good.append(replace(u, duration=seconds, frames=frames))
    return good, issues


def drop_long(utts: Sequence[Utterance], max_frames: int | None) -> tuple[list[Utterance], list[DataIssue]]:
    """Utterances longer than `max_frames` LFR frames become issues (they would not fit a batch)."""
    if not max_frames:
        return list(utts), []
    good = [u for u in utts if (u.frames or 0) <= max_frames]
    issues = [
        DataIssue(u.key, f"longer than --max-frames {max_frames} ({u.frames} LFR frames)")
        for u in utts
        if (u.frames or 0) > max_frames
    ]
    return good, issues
