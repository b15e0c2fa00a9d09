"""Corpora larger than one process: split an input list across ``torchrun`` ranks and merge the outputs.

    torchrun --nproc_per_node 4 -m uniasr transcribe wav.scp --model DIR --output-dir OUT [--format srt]

Every rank reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (:class:`uniasr.launch.RankInfo`) and takes
every ``WORLD_SIZE``-th input from ``RANK`` on. No process group is created: ranks talk through files under
``OUT/.shards/`` (the output files are written and merged by :mod:`uniasr.output`):

    manifest.json            all keys in input order, world size, format (written by every rank, identical)
    rank<r>/status.json      running | done | failed (+ error), the rank's keys, the run id
    rank<r>/part<k>/1best_recog/{text,token,score,time_stamp,rtf}   one part per chunk of inputs
                    (2best_recog/ ... Nbest_recog/ too with --nbest N)
    rank<r>/files/<key>.<fmt>                                        per-input json/srt/vtt/tsv files
    rank<r>/failed.tsv       key <TAB> error, for inputs that could not be recognised
    merge.json               what the merge found (complete, missing keys, failed keys, rank states)

A rank writes its outputs chunk by chunk, so a rank that dies keeps what it finished. A rank that raises
marks its shard failed and keeps running until the merge is done, because torchrun stops every worker
as soon as one exits with an error. When all ranks are done (or failed) the first to take
``merge-<run>.lock`` merges, in input order, into ``OUT/1best_recog/`` (and ``Nbest_recog/``) and
``OUT/<key>.<fmt>``; if some rank never reports, rank 0 merges what exists after ``barrier_timeout_s``. A
complete merge removes ``OUT/.shards/`` (once the other ranks have read the report); an incomplete one keeps
it, and ``merge_shards`` (CLI: ``uniasr transcribe ... --output-dir OUT --merge-only``) merges again by
hand, e.g. after a rank was killed, removing it when that merge is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uniasr.launch import RankInfo
from uniasr.output.formats import FILE_FORMATS, CueOptions, output_paths, result_path, write_result_files
from uniasr.output.kaldi_dir import merge_output_dirs, refuse_existing, write_output_dir
from uniasr.pipeline import Recognizer
from uniasr.result import Result

log = logging.getLogger(__name__)

SHARDS_DIR = ".shards"
FINAL_STATES = ("done", "failed")


def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """Every ``world_size``-th item from ``rank`` on (round robin: shards differ by at most one item).

    >>> shard(list("abcdefg"), 1, 3)
    ['b', 'e']
    """
    return list(items[rank::world_size])


@dataclass(frozen=True)
class ShardJob:
    """What every rank of one run does. ``fmt`` decides the per-input files (json/srt/vtt/tsv)."""

    out_dir: Path
    fmt: str = "text"
    overwrite: bool = False
    chunk_inputs: int = 32  # inputs per transcribe() call and per output part
    barrier_timeout_s: float = 3600.0  # how long a finished rank waits for the others
    poll_s: float = 0.5
    cue_options: CueOptions = field(default_factory=CueOptions)

    @property
    def shards(self) -> Path:
        return Path(self.out_dir) / SHARDS_DIR


@dataclass
class MergeReport:
    out_dir: str
    complete: bool
    written: int
    missing: list[str]
    failed: dict[str, str]
    ranks: dict[str, str]
    errors: list[str]
    run_id: str = ""

    def summary(self) -> str:
        """One line: what was merged and what is missing."""
        parts = [f"merged {self.written} inputs into {self.out_dir}"]
        bad_ranks = {r: s for r, s in self.ranks.items() if s != "done"}
        if bad_ranks:
            parts.append("ranks not done: " + ", ".join(f"rank{r}={s}" for r, s in bad_ranks.items()))
        if self.missing:
            parts.append(f"{len(self.missing)} keys missing: {', '.join(self.missing[:10])}")
        if self.failed:
            parts.append(f"{len(self.failed)} inputs failed: {', '.join(list(self.failed)[:10])}")
        parts += self.errors[:10]
        return "; ".join(parts)


@dataclass
class RankOutcome:
    """How one rank's run ended. Only the rank that merged reports failure in its exit code: another
    rank exiting non-zero would make torchrun stop the merging one."""

    report: MergeReport | None
    merged_here: bool

    @property
    def exit_code(self) -> int:
        if self.report is None:
            return 1
        return 0 if self.report.complete or not self.merged_here else 1


# ------------------------------------------------------------------------------------------ files
def _write_json(path: Path, data: Any) -> None:
    """Atomic: readers see the old file or the new one, never a partial one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_tag(run_id: str) -> str:
    return hashlib.sha1(run_id.encode()).hexdigest()[:12]


def _preflight(job: ShardJob, info: RankInfo, keys: Sequence[str]) -> Path:
    """Refuse to reuse outputs of an earlier run unless ``overwrite`` (every file the merge would write is
    checked before any decoding); returns this rank's fresh dir."""
    mine = job.shards / f"rank{info.rank}"
    if not job.overwrite:
        refuse_existing(output_paths(job.out_dir, keys, job.fmt), "; nothing was decoded")
    if mine.exists():
        if not job.overwrite:
            raise FileExistsError(
                f"{mine} exists from an earlier run; pass --overwrite to start again, or merge it with "
                "--merge-only"
            )
        shutil.rmtree(mine)
    if info.rank == 0:
        for stale in [*job.shards.glob("merge-*.lock"), job.shards / "merge.json"]:
            stale.unlink(missing_ok=True)
    mine.mkdir(parents=True)
    return mine


# ------------------------------------------------------------------------------------------ one rank
def run_rank(
    rec: Recognizer,
    pairs: Sequence[tuple[str, Any]],
    info: RankInfo,
    job: ShardJob,
    transcribe_kwargs: dict[str, Any] | None = None,
) -> RankOutcome:
    """Recognise this rank's share of ``pairs`` (key, source), then take part in the merge.

    ``transcribe_kwargs`` go to :meth:`Recognizer.transcribe` (mode, search, longform, itn, progress, ...).
    Never raises for a failure of the recognition itself: it is recorded in the shard and in the report.
    """
    keys = [k for k, _ in pairs]
    mine = _preflight(job, info, keys)
    _write_json(
        job.shards / "manifest.json", {"keys": keys, "world_size": info.world_size, "format": job.fmt}
    )
    my_pairs = shard(pairs, info.rank, info.world_size)
    status = {
        "rank": info.rank,
        "run_id": info.run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "keys": [k for k, _ in my_pairs],
    }
    _write_json(mine / "status.json", {**status, "state": "running"})
    try:
        _recognise_shard(rec, my_pairs, mine, job, transcribe_kwargs or {})
        _write_json(mine / "status.json", {**status, "state": "done"})
    except Exception as e:  # noqa: BLE001 - recorded; exiting now would make torchrun kill the other ranks
        log.error("rank %d failed: %s", info.rank, e)
        error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
        _write_json(mine / "status.json", {**status, "state": "failed", "error": error})
    return _finish(info, job)


def _recognise_shard(
    rec: Recognizer,
    pairs: Sequence[tuple[str, Any]],
    mine: Path,
    job: ShardJob,
    kwargs: dict[str, Any],
) -> None:
    for part, begin in enumerate(range(0, len(pairs), job.chunk_inputs)):
        chunk = pairs[begin : begin + job.chunk_inputs]
        part_dir = mine / f"part{part:05d}"
        part_dir.mkdir()
        inputs: Any = [src for _, src in chunk]
        if all(isinstance(src, (str, os.PathLike)) for src in inputs):  # a wav.scp keeps the keys everywhere
            inputs = part_dir / "wav.scp"
            inputs.write_text("".join(f"{k} {os.fspath(src)}\n" for k, src in chunk), encoding="utf-8")
        results = _transcribe_chunk(rec, inputs, chunk, kwargs)
        for (key, _), r in zip(chunk, results):
            r.key = key  # arrays and bytes would otherwise be named by their position in the chunk
        with (mine / "failed.tsv").open("a", encoding="utf-8") as failed:
            for r in results:
                if r.error is not None:
                    failed.write(f"{r.key}\t{' '.join(r.error.split())}\n")
        if job.fmt in FILE_FORMATS:
            errors = write_result_files(
                results, job.fmt, mine / "files", overwrite=True, options=job.cue_options
            )
            if errors:
                raise OSError("; ".join(errors))
        search = kwargs.get("search")
        nbest = search.nbest if search is not None else kwargs.get("nbest") or 1
        write_output_dir(results, part_dir, overwrite=True, nbest=nbest)


def _transcribe_chunk(
    rec: Recognizer, inputs: Any, chunk: Sequence[tuple[str, Any]], kwargs: dict[str, Any]
) -> list[Any]:
    """The chunk's Results; if the call fails as a whole, each input is tried alone and one that fails gets a
    Result with the error (naming it), so one input never costs the rest of the chunk their results. When
    every input fails alone too, the recogniser is what is broken (e.g. its device): that error is raised."""
    try:
        return rec.transcribe(inputs, errors="report", **kwargs)
    except Exception as e:  # noqa: BLE001 - isolated below
        first = e
        log.warning(
            "a chunk of %d inputs failed (%s: %s); trying each alone", len(chunk), type(e).__name__, e
        )
    results, failures = [], 0
    for key, src in chunk:
        try:
            results += rec.transcribe([src], errors="report", **kwargs)
        except Exception as e:  # noqa: BLE001 - recorded in failed.tsv with the key
            log.error("%s: %s: %s", key, type(e).__name__, e)
            results.append(Result(key, error=f"{key}: {type(e).__name__}: {e}"))
            failures += 1
    if failures == len(chunk) > 1:
        raise first
    return results


def _states(job: ShardJob, world_size: int, run_id: str | None) -> dict[int, str]:
    """State of every rank (``missing`` without a status of this run)."""
    states = {}
    for r in range(world_size):
        status = _read_json(job.shards / f"rank{r}" / "status.json")
        if status is None or (run_id is not None and status.get("run_id") != run_id):
            states[r] = "missing"
        else:
            states[r] = str(status.get("state", "missing"))
    return states


def _wait(predicate: Callable[[], bool], timeout_s: float, poll_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _try_lock(job: ShardJob, info: RankInfo) -> bool:
    try:
        fd = os.open(job.shards / f"merge-{_run_tag(info.run_id)}.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(info.rank).encode())
    os.close(fd)
    return True


def _finish(info: RankInfo, job: ShardJob) -> RankOutcome:
    """File barrier, one merge, and no exit before the merge is written (torchrun would stop it)."""

    def all_final() -> bool:
        return all(s in FINAL_STATES for s in _states(job, info.world_size, info.run_id).values())

    finished = _wait(all_final, job.barrier_timeout_s, job.poll_s)
    if not finished:
        states = _states(job, info.world_size, info.run_id)
        log.warning(
            "rank %d: barrier timed out after %.0f s; ranks: %s", info.rank, job.barrier_timeout_s, states
        )
    tag = _run_tag(info.run_id)
    if (finished or info.rank == 0) and _try_lock(job, info):
        report = merge_shards(job.out_dir, overwrite=job.overwrite, run_id=info.run_id, keep_shards=True)
        (log.info if report.complete else log.error)("rank %d: %s", info.rank, report.summary())
        others = [
            r
            for r, s in _states(job, info.world_size, info.run_id).items()
            if r != info.rank and s != "missing"
        ]
        acked = lambda: all((job.shards / f"rank{r}" / f"exit-{tag}").exists() for r in others)  # noqa: E731
        all_acked = _wait(acked, max(10 * job.poll_s, 5.0), job.poll_s)
        if all_acked:  # let the others exit first (with 0)
            time.sleep(job.poll_s)
        if report.complete and all_acked:  # they have read merge.json: nothing is left to recover
            shutil.rmtree(job.shards, ignore_errors=True)
        return RankOutcome(report, merged_here=True)

    def merged() -> bool:
        report = _read_json(job.shards / "merge.json")
        return report is not None and report.get("run_id") == info.run_id

    found = _wait(merged, job.barrier_timeout_s if finished else job.poll_s * 4, job.poll_s)
    written = _read_json(job.shards / "merge.json") if found else None  # before the merging rank removes it
    (job.shards / f"rank{info.rank}" / f"exit-{tag}").touch()  # the merging rank waits for this
    if written is not None:
        return RankOutcome(MergeReport(**written), merged_here=False)
    log.error("rank %d: no merge of this run was written; run --merge-only on %s", info.rank, job.out_dir)
    return RankOutcome(None, merged_here=False)


# ------------------------------------------------------------------------------------------ merge
def merge_shards(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    run_id: str = "",
    keep_shards: bool = False,
) -> MergeReport:
    """Merge ``out_dir/.shards`` into ``out_dir/*best_recog`` and ``out_dir/<key>.<fmt>``, in input order.

    Uses every rank directory present (whatever its state), so it also recovers a run whose rank died.
    Existing outputs are not replaced unless ``overwrite`` (*best_recog: FileExistsError; a per-input
    file: listed in ``errors``). Per-input files are copied as the ranks wrote them. A complete merge
    removes ``.shards/`` unless ``keep_shards`` (the merging rank removes it itself, after the others).
    """
    out = Path(out_dir)
    shards = out / SHARDS_DIR
    manifest = _read_json(shards / "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"{shards / 'manifest.json'} not found: {out} holds no sharded run to merge")
    keys, world, fmt = manifest["keys"], int(manifest["world_size"]), manifest.get("format", "text")
    failed: dict[str, str] = {}
    states: dict[str, str] = {}
    files: dict[str, Path] = {}
    parts: list[Path] = []
    for r in range(world):
        rank_dir = shards / f"rank{r}"
        status = _read_json(rank_dir / "status.json")
        states[str(r)] = "missing" if status is None else str(status.get("state"))
        parts += sorted(rank_dir.glob("part*"))
        if (rank_dir / "failed.tsv").exists():
            for line in (rank_dir / "failed.tsv").read_text(encoding="utf-8").splitlines():
                key, _, error = line.partition("\t")
                failed[key] = error
        if fmt in FILE_FORMATS and (rank_dir / "files").is_dir():
            files.update({p.stem: p for p in (rank_dir / "files").iterdir()})
    done = merge_output_dirs(parts, out, keys, overwrite)
    errors = _copy_files(keys, files, out, fmt, overwrite)
    missing = [k for k in keys if k not in done and k not in failed]
    complete = not missing and not failed and not errors and all(s == "done" for s in states.values())
    report = MergeReport(str(out), complete, len(done), missing, failed, states, errors, run_id)
    _write_json(shards / "merge.json", asdict(report))
    if complete and not keep_shards:
        shutil.rmtree(shards, ignore_errors=True)
    return report


def _copy_files(
    keys: Sequence[str], files: dict[str, Path], out: Path, fmt: str, overwrite: bool
) -> list[str]:
    errors = []
    for key in keys:
        src = files.get(key)
        if src is None:
            continue
        dest = result_path(out, key, fmt)
        try:
            with src.open("rb") as f_in, dest.open("wb" if overwrite else "xb") as f_out:
                shutil.copyfileobj(f_in, f_out)
        except FileExistsError:
            errors.append(f"{dest} already exists; pass --overwrite to replace it")
    return errors
