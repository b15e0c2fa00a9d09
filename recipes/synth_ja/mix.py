"""One Kaldi training dir from several: `DIR[:N]` takes N utterances of DIR drawn with the seed (all: no N).

    python -m recipes.synth_ja.mix --out data/mix6/train data/kokoro_train_ortho/alpha \
        data/kokoro_train_ortho/gong data/synth_ja_ortho/train:2400

Writes `wav.scp`, `text` and `utt2dur` (sorted by key) of the chosen utterances. Deterministic: the draw from
DIR depends only on `--seed` and DIR's own keys.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np

from uniasr.cer import read_text_file

FILES = ("wav.scp", "text", "utt2dur")


def pick(source: str, seed: int) -> tuple[Path, list[str]]:
    """`DIR` or `DIR:N` -> (DIR, the keys taken: all, or N drawn without replacement)."""
    path, _, count = source.partition(":")
    d = Path(path)
    keys = sorted(read_text_file(d / "wav.scp"))
    if count:
        n = int(count)
        if not 0 < n <= len(keys):
            raise ValueError(f"{source}: asked for {n} of {len(keys)} utterances")
        rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
        keys = sorted(keys[i] for i in rng.choice(len(keys), size=n, replace=False))
    return d, keys


def mix(sources: list[str], out: Path, seed: int) -> int:
    """Write the mixed dir; returns the number of utterances."""
    tables: dict[str, dict[str, str]] = {name: {} for name in FILES}
    for source in sources:
        d, keys = pick(source, seed)
        for name in FILES:
            table = read_text_file(d / name)
            missing = [k for k in keys if k not in table]
            if missing:
                raise ValueError(f"{d / name}: no entry for {len(missing)} utterances, e.g. {missing[0]}")
            clash = [k for k in keys if k in tables[name]]
            if clash:
                raise ValueError(f"{d}: key {clash[0]} is already taken by an earlier source")
            tables[name].update((k, table[k]) for k in keys)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        (out / name).write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())), encoding="utf-8")
    return len(tables["wav.scp"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="Kaldi dirs, each DIR or DIR:N")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"{args.out}: {mix(args.sources, args.out, args.seed)} utterances")


if __name__ == "__main__":
    main()
