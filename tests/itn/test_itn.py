"""Japanese ITN: golden files (tests/itn_golden/<family>.tsv), the numeral parser, the CLI round trip."""

from __future__ import annotations

import doctest
import importlib
import random
import subprocess
import sys

import pytest

from conftest import ROOT
from uniasr.itn import format_number, normalize, normalize_lines, parse_kanji_number
from uniasr.itn.__main__ import main
from uniasr.itn.lexicon import counters, prefixes, protected_words
from uniasr.itn.protected import find_protected_spans

GOLDEN_DIR = ROOT / "tests" / "itn_golden"
#: Golden families run with kana=True; every other file runs with the default kana=False.
KANA_FAMILIES = {"kana"}


def _golden_cases() -> list:
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*.tsv")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            source, sep, expected = line.partition("\t")
            assert sep and "\t" not in expected, (
                f"{path.name}:{lineno}: expected input<TAB>expected: {line!r}"
            )
            family = path.stem
            cases.append(pytest.param(family, source, expected, id=f"{family}:{lineno}:{source}"))
    return cases


GOLDEN = _golden_cases()


def test_golden_files_are_large_enough():
    families = {case.values[0] for case in GOLDEN}
    assert len(GOLDEN) >= 300, len(GOLDEN)
    expected_families = {"cardinals", "decimals", "dates", "times", "money", "percent", "fractions", "phone"}
    expected_families |= {"counters", "negative", "ordinals", "ranges", "protected", "width", "passthrough"}
    assert expected_families | KANA_FAMILIES <= families


@pytest.mark.parametrize(("family", "source", "expected"), GOLDEN)
def test_golden(family: str, source: str, expected: str):
    kana = family in KANA_FAMILIES
    got = normalize(source, kana=kana)
    assert got == expected, f"[{family}] normalize({source!r}, kana={kana}) = {got!r}, expected {expected!r}"


@pytest.mark.parametrize(("family", "source", "expected"), GOLDEN)
def test_idempotent(family: str, source: str, expected: str):
    once = normalize(source, kana=family in KANA_FAMILIES)
    assert normalize(once) == once  # kana=True converts kana input; its output is written text


@pytest.mark.parametrize(
    ("numeral", "value"),
    [
        ("一億二千三百四十五万六千七百八十九", 123456789),
        ("二千二十四", 2024),
        ("十", 10),
        ("百", 100),
        ("千百十一", 1111),
        ("一万", 10000),
        ("十万", 100000),
        ("三百五十万", 3500000),
        ("一億二千万", 120000000),
        ("五兆三千億", 5_300_000_000_000),
        ("九千九百九十九兆九千九百九十九億", 9999_9999_0000_0000),
        ("〇", 0),
        ("2千", 2000),
        ("2千5百", 2500),
        ("1億2000万", 120000000),
        ("一万一", 10001),
    ],
)
def test_parse_kanji_number(numeral: str, value: int):
    assert parse_kanji_number(numeral) == value


@pytest.mark.parametrize(
    "numeral", ["", "二三", "十百", "百十百", "万", "億万", "二三十", "千2000", "〇十", "三x"]
)
def test_parse_kanji_number_rejects(numeral: str):
    with pytest.raises(ValueError):
        parse_kanji_number(numeral)


def test_parse_error_names_the_value():
    with pytest.raises(ValueError, match="十百"):
        parse_kanji_number("十百")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (7, "7"),
        (9999, "9999"),
        (10000, "1万"),
        (12000, "1万2000"),
        (3500000, "350万"),
        (100000001, "1億1"),
        (123456789, "1億2345万6789"),
        (10**12, "1兆"),
        (-5, "-5"),
    ],
)
def test_format_number(value: int, text: str):
    assert format_number(value) == text


def test_parse_format_round_trip_over_many_values():
    # Every value written the kanji way parses back to itself (covers all place combinations up to 10^8).
    digits = "〇一二三四五六七八九"

    def kanji(n: int) -> str:
        out = ""
        for unit, name in ((10**8, "億"), (10**4, "万"), (1, "")):
            group, n = divmod(n, unit)
            if group:
                for place, ch in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
                    d, group = divmod(group, place)
                    if d:
                        out += ("" if d == 1 and ch else digits[d]) + ch
                out += name
        return out or "〇"

    for n in list(range(0, 2100)) + [10**4 * k + 7 for k in range(0, 300, 7)] + [123456789, 900000001]:
        assert parse_kanji_number(kanji(n)) == n, kanji(n)


def test_random_numeral_soup_never_raises_and_is_idempotent():
    # Seeded garbage of the characters the rules look at: no exception, and a second pass changes nothing.
    rng = random.Random(1234)
    alphabet = list("〇零一二三四五六七八九十百千万億兆0123456789点分の、から〜対第人円年月日時個つ数何")
    alphabet += [
        "ゼロ",
        "マイナス",
        "パーセント",
        "ー",
        "一人",
        "十分",
        "な",
        "に",
        "。",
        "ニジュウ",
        "サン",
        "ニン",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        once = normalize(text)  # (kana=True converts kana input first: its golden file covers it)
        assert normalize(once) == once, (text, once)


def test_empty_and_no_numbers():
    assert normalize("") == ""
    text = "今日はいい天気ですね。明日は雨が降るでしょう。"
    assert normalize(text) == text
    assert normalize("", kana=True) == ""


def test_kana_is_off_by_default_and_converted_first_when_on():
    assert normalize("サンジュウゴニン") == "サンジュウゴニン"
    assert normalize("サンジュウゴニン", kana=True) == "35人"
    assert not any(ch.isdigit() for ch in normalize("ゴゼンクジ", kana=True))  # was 5009ジ


def test_normalize_lines_keeps_newlines():
    lines = ["三個\n", "一緒に\r\n", "", "五人"]
    assert list(normalize_lines(lines)) == ["3個\n", "一緒に\r\n", "", "5人"]
    assert list(normalize_lines(["サンジュウゴニン\n"], kana=True)) == ["35人\n"]


def test_protected_word_is_not_cut_out_of_a_number():
    # 一人 is protected alone, but not as the tail of 三十一人; 万一 likewise inside 三万一千.
    assert find_protected_spans("一人で") == [(0, 2)]
    assert find_protected_spans("三十一人") == []
    assert find_protected_spans("三万一千円") == []
    assert normalize("三十一人と一人") == "31人と一人"


def test_lexicons_load_and_are_sane():
    words = [w.word for w in protected_words()]
    assert len(words) == len(set(words)), "duplicate protected words"
    assert len(words) > 200
    assert {"一緒", "十分", "千葉", "一石二鳥"} <= set(words)
    assert counters()[0].text and all(len(a.text) >= len(b.text) for a, b in zip(counters(), counters()[1:]))
    assert {"第", "マイナス"} <= {p.text for p in prefixes()}


def test_main_in_process(capsys, monkeypatch, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("三個\n一緒に\n", encoding="utf-8")
    assert main([str(path)]) == 0
    assert capsys.readouterr().out == "3個\n一緒に\n"
    assert main([str(tmp_path / "missing.txt")]) == 1
    assert "missing.txt" in capsys.readouterr().err


def test_main_round_trip_subprocess():
    source = "令和六年三月五日に三百五十万円\n一緒に行こう\n\nサンジュウゴニン\n"
    result = subprocess.run(
        [sys.executable, "-m", "uniasr.itn"],
        input=source.encode("utf-8"),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.decode("utf-8") == "令和6年3月5日に350万円\n一緒に行こう\n\nサンジュウゴニン\n"
    result = subprocess.run(
        [sys.executable, "-m", "uniasr.itn", "--kana"],
        input="サンジュウゴニン\n".encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.decode("utf-8") == "35人\n"


DOCTEST_MODULES = ["__init__", "numbers", "context", "runs", "protected", "normalizer"]


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_doctests(module: str):
    name = "uniasr.itn" if module == "__init__" else f"uniasr.itn.{module}"
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0, result


def test_no_torch_import():
    code = "import sys, uniasr.itn; uniasr.itn.normalize('三個'); print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
