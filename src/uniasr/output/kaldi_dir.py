"""The `--output-dir` layout (FunASR's / ModelScope's): Kaldi-style `key value` files per hypothesis rank.

    OUT/1best_recog/{text,token,score,time_stamp,rtf}    the best hypothesis of each input
    OUT/2best_recog/{text,token,score} ... Nbest_recog/   the n-th hypothesis, with nbest=N (N > 1)

Keys never hold whitespace (it would end the key); existing files are never replaced without `overwrite`.
`merge_output_dirs` joins the dirs that parts of one run wrote (`uniasr.sharding`) into one, in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from uniasr.result import Result

OUTPUT_FILES = ("text", "token", "score", "time_stamp", "rtf")  # 1best_recog
NBEST_FILES = ("text", "token", "score")  # 2best_recog ... Nbest_recog: alternatives carry no times


def recog_dir_name(rank: int) -> str:
    """1 -> "1best_recog", 2 -> "2best_recog", ..."""
    if rank < 1:
        raise ValueError(f"hypothesis rank {rank} must be >= 1")
    return f"{rank}best_recog"


def recog_files(rank: int) -> tuple[str, ...]:
    return OUTPUT_FILES if rank == 1 else NBEST_FILES


def files_of(dir_name: str) -> tuple[str, ...]:
    """The files of a rank dir by its name ("1best_recog" -> OUTPUT_FILES, "3best_recog" -> NBEST_FILES)."""
    return OUTPUT_FILES if dir_name == recog_dir_name(1) else NBEST_FILES


def output_dir_files(output_dir: str | Path, nbest: int = 1) -> list[Path]:
    """The files `write_output_dir` writes for `nbest` hypotheses per input."""
    ranks = range(1, max(nbest, 1) + 1)
    return [Path(output_dir) / recog_dir_name(n) / name for n in ranks for name in recog_files(n)]


def refuse_existing(paths: Sequence[Path], what: str = "") -> None:
    """FileExistsError naming the first of `paths` that exists (and how many more), before any work."""
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more of the files it would write)" if len(existing) > 1 else ""
        raise FileExistsError(
            f"{existing[0]} already exists{more}; pass overwrite=True (--overwrite) to replace it{what}"
        )


def check_key(key: str) -> str:
    """A key for Kaldi-style `key value` lines: non-empty and without whitespace (it would end the key)."""
    if not key or any(c.isspace() for c in key):
        raise ValueError(
            f"key {key!r} cannot start a 'key value' line: keys must be non-empty and contain no whitespace "
            "(keys made from file names get '_' for whitespace; give wav.scp keys without spaces)"
        )
    return key


def _lines(r: Result, rank: int) -> dict[str, str]:
    """The `value` of each file of hypothesis `rank` (1 = the Result itself) of one Result."""
    if rank == 1:
        stamps = " ".join(f"{s},{e}" for s, e in r.timestamps)
        return {
            "text": r.text, "token": " ".join(r.tokens), "score": f"{r.score:.6f}", "time_stamp": stamps,
            "rtf": f"{r.rtf:.4f}",
        }  # fmt: skip
    alt = r.nbest[rank - 1]
    return {"text": alt.text, "token": " ".join(alt.tokens), "score": f"{alt.score:.6f}"}


def write_output_dir(
    results: Sequence[Result], output_dir: str | Path, overwrite: bool = False, nbest: int | None = None
) -> Path:
    """Write `1best_recog/` and, for nbest N > 1, `2best_recog/` ... `Nbest_recog/`; returns 1best_recog.

    nbest: how many rank dirs (default: the most alternatives any result has). An input with fewer
    hypotheses than a rank (a beam that found fewer) has no line there; failed inputs have none anywhere.
    Existing files are never replaced unless `overwrite` is true. Keys must hold no whitespace (ValueError).
    """
    ranks = nbest if nbest is not None else max([len(r.nbest) for r in results if r.error is None] + [1])
    if not overwrite:
        refuse_existing(output_dir_files(output_dir, ranks))
    for r in results:
        check_key(r.key)
    for rank in range(1, ranks + 1):
        out = Path(output_dir) / recog_dir_name(rank)
        out.mkdir(parents=True, exist_ok=True)
        files = {name: (out / name).open("w", encoding="utf-8") for name in recog_files(rank)}
        try:
            for r in results:
                if r.error is not None or (rank > 1 and len(r.nbest) < rank):
                    continue
                for name, value in _lines(r, rank).items():
                    files[name].write(f"{r.key} {value}\n")
        finally:
            for f in files.values():
                f.close()
    return Path(output_dir) / recog_dir_name(1)


def _read_lines(path: Path) -> dict[str, str]:
    """``key value`` lines -> {key: whole line}."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line:
            out[line.split(" ", 1)[0]] = line
    return out


def merge_output_dirs(
    parts: Sequence[str | Path], output_dir: str | Path, keys: Sequence[str], overwrite: bool = False
) -> set[str]:
    """Join output dirs that each hold some of `keys` (written by `write_output_dir`) into `output_dir`,
    lines in the order of `keys`; returns the keys found in 1best_recog/text. Every rank dir that any part
    has is written (1best_recog always). FileExistsError before writing when a target exists and not
    `overwrite`."""
    lines: dict[str, dict[str, dict[str, str]]] = {}  # rank dir -> file -> key -> line
    for part in parts:
        for rank_dir in sorted(Path(part).glob("*best_recog")):
            for name in files_of(rank_dir.name):
                lines.setdefault(rank_dir.name, {}).setdefault(name, {}).update(_read_lines(rank_dir / name))
    lines.setdefault(recog_dir_name(1), {})
    out = Path(output_dir)
    if not overwrite and any((out / d / name).exists() for d in lines for name in files_of(d)):
        raise FileExistsError(
            f"{out / recog_dir_name(1)} already holds results; pass --overwrite to replace them"
        )
    for recog, by_file in lines.items():
        (out / recog).mkdir(parents=True, exist_ok=True)
        for name in files_of(recog):
            found = by_file.get(name, {})
            with (out / recog / name).open("w", encoding="utf-8") as f:
                f.writelines(found[k] + "\n" for k in keys if k in found)
    return set(lines[recog_dir_name(1)].get("text", {}))
