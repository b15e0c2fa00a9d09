"""The ITN pipeline: width -> (kana -> kanji-kana text) -> protected words -> runs -> rules -> edits applied.

Rule order: phone-like digit chains, then decimals, then each remaining run on its own with its context
(see context.py); every converted number finally takes its affixes (マイナス -> -, パーセント -> %).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from .context import RunContext, approximate_pair, forced_runs, prefix_before, run_context
from .decimals import decimal_edits
from .lexicon import counters, match_suffix
from .numbers import digits_to_ascii, format_number, normalize_width, parse_kanji_number
from .phone import phone_edits
from .protected import find_protected_spans
from .runs import Run, find_runs

logger = logging.getLogger(__name__)

Edit = tuple[int, int, str]


def _format(numeral: str) -> str:
    return format_number(parse_kanji_number(numeral))


def convert_run(run: Run, context: RunContext, forced_text: str | None) -> str | None:
    """Replacement text for one run, or None to leave it as written (see context.py for the rules)."""
    if context.kind == "keep":
        return None
    if not run.needs_rewrite:
        return run.text  # already ASCII digits (with 万/億/兆): a number, affixes may still change
    has_context = context.kind is not None or forced_text is not None
    pair = approximate_pair(run.text)
    if pair is not None:
        try:
            return f"{_format(pair[0])}、{_format(pair[1])}" if has_context else None
        except ValueError:
            return None
    if set(run.text) == {"〇"}:
        return None  # 〇 / 〇〇 alone is a mark or placeholder (〇〇さん, 〇月〇日), not zeros; 零 converts
    if run.is_digit_sequence and forced_text in (None, run.text):
        digits = digits_to_ascii(run.text)
        if has_context or len(digits) >= 3 or (len(digits) == 2 and "0" in digits):
            return digits
        return None
    try:
        value = parse_kanji_number(forced_text or run.text)
    except ValueError:
        logger.debug("not a well-formed numeral, kept: %r", run.text)
        return None
    if has_context or len(run.text) >= 2:
        return format_number(value)
    return None


def _with_affixes(text: str, edit: Edit) -> Edit:
    """Extend a converted number over a rewritten counter (パーセント -> %) and prefix (マイナス -> -)."""
    start, end, out = edit
    counter = match_suffix(text, end, counters())
    if counter is not None and counter.output is not None:
        end, out = end + len(counter.text), out + counter.output
    prefix = prefix_before(text, start)
    if prefix is not None and prefix.output is not None:
        start, out = start - len(prefix.text), prefix.output + out
    return start, end, out


def _apply(text: str, edits: list[Edit]) -> str:
    pieces, pos = [], 0
    for start, end, out in sorted(edits):
        if start < pos:  # never expected: rules claim disjoint runs
            logger.warning("overlapping ITN edits at %d in %r, later one dropped", start, text)
            continue
        pieces.append(text[pos:start])
        pieces.append(out)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def normalize(text: str, *, kana: bool = False) -> str:
    """Japanese inverse text normalisation of one line: kanji numerals -> digits where a reader expects them.

    ``kana=True``: `text` is orthographic kana (what the default model writes before conversion): it is turned
    into kanji-kana text first (``uniasr.kana_kanji``), then normalised. Katakana is otherwise left alone.
    Conventions for each family are in ``uniasr/itn/README.md``.

    >>> normalize("令和六年三月五日の午前十時三十分に三百五十万円を一緒に払った")
    '令和6年3月5日の午前10時30分に350万円を一緒に払った'
    """
    if not text:
        return text
    text = normalize_width(text)
    if kana:
        from uniasr.kana_kanji import convert_kana

        text = convert_kana(text)
    runs = find_runs(text, find_protected_spans(text))
    if not runs:
        return text
    edits, claimed = phone_edits(text, runs)
    number_edits, used = decimal_edits(text, runs, claimed)
    claimed |= used
    contexts = [run_context(text, run) for run in runs]
    forced = forced_runs(text, runs, contexts, claimed)
    for i, run in enumerate(runs):
        if i in claimed:
            continue
        out = convert_run(run, contexts[i], forced.get(i))
        if out is not None:
            number_edits.append((run.start, run.end, out))
    for edit in number_edits:
        edit = _with_affixes(text, edit)
        if text[edit[0] : edit[1]] != edit[2]:
            edits.append(edit)
    return _apply(text, edits)


def normalize_lines(lines: Iterable[str], **kw: bool) -> Iterator[str]:
    """``normalize`` each line (a trailing newline is kept); ``kw`` are normalize's keyword options."""
    for line in lines:
        body = line.rstrip("\r\n")
        yield normalize(body, **kw) + line[len(body) :]
