"""``python -m uniasr.itn``: normalise stdin (or files) line by line to stdout."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .normalizer import normalize_lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m uniasr.itn",
        description="Japanese inverse text normalisation: kanji numerals -> digits, one line at a time.",
    )
    parser.add_argument("files", nargs="*", help="UTF-8 text files to read (default: standard input)")
    parser.add_argument(
        "--kana",
        action="store_true",
        help="the input is orthographic kana: convert it to kanji-kana text first (サンジュウゴニン -> 35人)",
    )
    args = parser.parse_args(argv)
    for stream in (sys.stdin, sys.stdout):
        with contextlib.suppress(AttributeError):  # a replaced stream (test harness) may not reconfigure
            stream.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    if not args.files:
        sys.stdout.writelines(normalize_lines(sys.stdin, kana=args.kana))
        return 0
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as handle:
                sys.stdout.writelines(normalize_lines(handle, kana=args.kana))
        except OSError as exc:
            print(f"error: cannot read {path!r}: {exc.strerror}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
