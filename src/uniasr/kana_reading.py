"""Orthographic katakana readings of Open JTalk words: what the default model writes (コウエン, ハ for the
particle は) rather than what Open JTalk says (コーエン, ワ). Used by the corpus recipe
(recipes/synth_ja/reading.py, which explains the rule) and to read hotwords (uniasr.hotwords).

>>> word_reading("公園", "名詞", "コウエン", "コーエン")
'コウエン'
>>> word_reading("一本", "名詞", "イチホン", "イッポン")
'イッポン'
"""

from __future__ import annotations

PUNCTUATION = frozenset("、。？！「」『』（）・…―〜／")
# (what Open JTalk says, how kana orthography spells it) at one position of a word's reading
SPELLING_ONLY = frozenset({("ワ", "ハ"), ("エ", "ヘ"), ("ズ", "ヅ"), ("ユ", "イ")})
LONG_VOWEL = "ー"


def word_reading(surface: str, pos: str, read: str, pron: str) -> str:
    """One Open JTalk word -> its orthographic katakana reading: `read` where it differs from `pron` by
    spelling alone (long-vowel marks, は/へ/づ/いう), else `pron`; punctuation as written."""
    pron = pron.replace("’", "")  # accent marks of pyopenjtalk-plus
    if pos == "記号":
        return surface if surface in PUNCTUATION else pron
    if read == pron or len(read) != len(pron):
        return pron
    if all(r == p or p == LONG_VOWEL or (p, r) in SPELLING_ONLY for r, p in zip(read, pron)):
        return read
    return pron
