"""Japanese inverse text normalisation: kanji numerals -> digits where a reader expects digits.

>>> from uniasr.itn import normalize
>>> normalize("二千二十四年十二月二十五日に三百五十万円を一緒に払った")
'2024年12月25日に350万円を一緒に払った'

Table-driven: lexicons are TSV files under ``uniasr/itn/data/``; conventions are in ``README.md``.
``python -m uniasr.itn`` normalises stdin line by line.
"""

from .normalizer import normalize, normalize_lines
from .numbers import format_number, parse_kanji_number

__all__ = ["format_number", "normalize", "normalize_lines", "parse_kanji_number"]
