"""Extra training phrases so the model sees more characters and number expressions (optional, train only).

* dictionary phrases: nouns from the Open JTalk dictionary that ships with pyopenjtalk-plus, chosen greedily
  for characters the sentence corpus does not contain yet, each put in a short carrier sentence;
* number phrases: dates, times, prices, counts and quantities written with kanji numerals (the corpus style).

Both are deterministic for a given seed. The dictionary is read straight from MeCab's compiled ``sys.dic``:
a fixed header, the double array, the token table, then NUL-separated CSV feature strings. For nouns the
7th feature (base form) is the surface form and the 8th its reading.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from recipes.synth_ja.textprep import int_to_kanji

_NOUN_KINDS = {("名詞", "一般"), ("名詞", "サ変接続"), ("名詞", "形容動詞語幹"), ("名詞", "固有名詞")}
_WORD_RE = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff々\u3041-\u3096\u30a1-\u30faー]{2,6}$")
_HAS_KANJI_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

CARRIERS = (
    "{w}について調べました。",
    "これは{w}です。",
    "{w}という言葉を知っていますか。",
    "次は{w}の話です。",
    "{w}がとても大切だと思います。",
    "昨日、{w}を見ました。",
    "{w}に関する資料があります。",
    "皆さん、{w}をご存じですか。",
    "私は{w}が好きです。",
    "{w}とは何でしょうか。",
)


def dictionary_nouns(sys_dic: Path) -> list[tuple[str, str]]:
    """(surface, katakana reading) of the nouns of a compiled MeCab/Open JTalk ``sys.dic``, sorted, unique."""
    data = Path(sys_dic).read_bytes()
    if len(data) < 72:
        raise ValueError(f"{sys_dic} is too small to be a MeCab dictionary")
    _magic, _version, _kind, _lexsize, _lsize, _rsize, dsize, tsize, fsize, _dummy = struct.unpack(
        "<10I", data[:40]
    )
    charset = data[40:72].split(b"\0")[0].decode("ascii", "replace").lower()
    if charset.replace("-", "") != "utf8":
        raise ValueError(f"{sys_dic}: charset {charset!r}, expected utf-8")
    start = 72 + dsize + tsize
    if start + fsize > len(data):
        raise ValueError(f"{sys_dic}: header sizes exceed the file size; not a MeCab sys.dic")
    words = set()
    for raw in data[start : start + fsize].split(b"\0"):
        fields = raw.decode("utf-8", "replace").split(",")
        if len(fields) < 9 or (fields[0], fields[1]) not in _NOUN_KINDS:
            continue
        if fields[1] == "固有名詞" and fields[2] not in ("地域", "一般"):
            continue  # person and organisation names are mostly rare readings of common kanji
        surface, reading = fields[6], fields[7]
        if _WORD_RE.match(surface) and _HAS_KANJI_RE.search(surface) and reading not in ("*", ""):
            words.add((surface, reading))
    return sorted(words)


def coverage_words(words: list[tuple[str, str]], covered: Iterable[str], count: int, seed: int) -> list[str]:
    """Pick up to `count` words, each adding at least one character not seen yet (in a seeded order)."""
    seen = set(covered)
    order = list(words)
    random.Random(seed).shuffle(order)
    picked: list[str] = []
    for surface, _ in order:
        if len(picked) >= count:
            break
        if any(ch not in seen for ch in surface):
            picked.append(surface)
            seen.update(surface)
    return picked


def dictionary_phrases(words: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(CARRIERS).format(w=w) for w in words]


def number_phrases(count: int, seed: int) -> list[str]:
    """Dates, times, money, counters and measures, in kanji numerals (二千二十四年三月五日, 千二百八十円)."""
    rng = random.Random(seed)
    k = int_to_kanji
    counters = ("人", "個", "本", "枚", "回", "歳", "階", "冊", "台", "匹", "件", "箱", "杯")
    measures = ("キロ", "メートル", "センチ", "グラム", "リットル", "パーセント", "度", "キロメートル")

    def month_day() -> str:
        return f"{k(rng.randint(1, 12))}月{k(rng.randint(1, 28))}日"

    def price() -> int:
        return rng.choice((rng.randint(1, 999) * 10, rng.randint(1, 9999), rng.randint(1, 99) * 1000))

    makers = (
        lambda: f"{k(rng.randint(1950, 2040))}年{month_day()}です。",
        lambda: (
            f"{rng.choice(('午前', '午後'))}{k(rng.randint(1, 12))}時{k(rng.randint(1, 59))}分に集合します。"
        ),
        lambda: f"値段は{k(price())}円です。",
        lambda: f"全部で{k(rng.randint(1, 120))}{rng.choice(counters)}です。",
        lambda: f"およそ{k(rng.randint(1, 999))}{rng.choice(measures)}です。",
        lambda: f"人口は{k(rng.randint(1, 9999) * 10 ** rng.randint(2, 5))}人です。",
        lambda: f"{month_day()}の{rng.choice(('朝', '夜', '昼'))}に会います。",
        lambda: f"第{k(rng.randint(1, 300))}回の大会が開かれました。",
    )
    return [rng.choice(makers)() for _ in range(count)]


def broaden_phrases(
    count: int, covered_chars: Iterable[str], seed: int, sys_dic: Path | None = None
) -> list[str]:
    """`count` extra phrases: half number phrases, half dictionary phrases (fewer if the dictionary runs out
    of new characters). `sys_dic` defaults to the dictionary inside pyopenjtalk-plus."""
    if count <= 0:
        return []
    if sys_dic is None:
        from recipes.synth_ja.synth import dictionary_dir

        sys_dic = dictionary_dir() / "sys.dic"
    n_dict = count // 2
    words = coverage_words(dictionary_nouns(sys_dic), covered_chars, n_dict, seed)
    phrases = dictionary_phrases(words, seed + 1)
    phrases += number_phrases(count - len(phrases), seed + 2)
    return phrases
