"""Tests for uniasr.cer: alignment counts, normalisation, file reading and the report."""

from __future__ import annotations

import random
import time

import pytest

from uniasr.cer import (
    ErrorCounts,
    NormalizeOptions,
    align,
    main_eval_texts,
    normalize_text,
    read_text_file,
    score_texts,
)

RAW = NormalizeOptions(nfkc=False, strip_punctuation=False, strip_spaces=False)


def reference_dp(ref: str, hyp: str) -> tuple[int, int, int]:
    """Plain O(n*m) DP over (errors, deletions, insertions) tuples, compared lexicographically.

    Returns (errors, deletions, insertions) of the minimum-edit alignment with fewest deletions, then
    fewest insertions: the tie-break that `align` documents.
    """
    n, m = len(ref), len(hyp)
    prev = [(j, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, i, 0)]
        for j in range(1, m + 1):
            e, d, ins = prev[j - 1]
            same = ref[i - 1] == hyp[j - 1]
            options = [
                (e + (0 if same else 1), d, ins),
                (prev[j][0] + 1, prev[j][1] + 1, prev[j][2]),
                (cur[j - 1][0] + 1, cur[j - 1][1], cur[j - 1][2] + 1),
            ]
            cur.append(min(options))
        prev = cur
    return prev[m]


def test_known_small_case():
    # あいうえお -> あいえおか: う deleted, か inserted (2 edits; the all-substitution path needs 3).
    c = align("あいうえお", "あいえおか")
    assert (c.substitutions, c.deletions, c.insertions, c.reference_length) == (0, 1, 1, 5)
    assert c.errors == 2
    assert c.cer == pytest.approx(0.4)


def test_substitutions_and_identity():
    assert align("今日は晴れ", "今日は雨だ") == ErrorCounts(2, 0, 0, 5)
    assert align("東京", "東京") == ErrorCounts(0, 0, 0, 2)
    # a swap costs two substitutions, preferred over a deletion + insertion pair
    assert align("ab", "ba") == ErrorCounts(2, 0, 0, 2)


def test_empty_strings():
    assert align("", "") == ErrorCounts(0, 0, 0, 0)
    assert align("あいう", "") == ErrorCounts(0, 3, 0, 3)
    empty_ref = align("", "あい")
    assert empty_ref == ErrorCounts(0, 0, 2, 0)
    assert empty_ref.cer == 2.0  # reference length 0 counts as 1
    assert ErrorCounts().cer == 0.0


def test_counts_add():
    total = ErrorCounts(1, 2, 3, 10) + ErrorCounts(4, 5, 6, 20)
    assert total == ErrorCounts(5, 7, 9, 30)
    assert total.errors == 21
    assert total.cer == pytest.approx(21 / 30)


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_dp_on_random_strings(seed):
    rng = random.Random(seed)
    alphabet = "あいうアイ漢字ab"
    for _ in range(60):
        letters = alphabet[: rng.randint(1, len(alphabet))]  # small alphabets give many matches
        ref = "".join(rng.choice(letters) for _ in range(rng.randint(0, 14)))
        hyp = "".join(rng.choice(letters) for _ in range(rng.randint(0, 14)))
        c = align(ref, hyp)
        errors, deletions, insertions = reference_dp(ref, hyp)
        assert (c.errors, c.deletions, c.insertions) == (errors, deletions, insertions), (ref, hyp)
        # the counts describe a real alignment: |hyp| = |ref| - D + I, and S + D <= |ref|
        assert len(hyp) == len(ref) - c.deletions + c.insertions
        assert c.substitutions >= 0 and c.substitutions + c.deletions <= len(ref)


def test_long_strings_are_fast():
    rng = random.Random(0)
    alphabet = [chr(0x3042 + i) for i in range(40)]
    ref = "".join(rng.choice(alphabet) for _ in range(2000))
    hyp = list(ref)
    for _ in range(300):  # ~15 % random edits
        pos = rng.randrange(len(hyp))
        op = rng.choice("sdi")
        if op == "s":
            hyp[pos] = rng.choice(alphabet)
        elif op == "d":
            del hyp[pos]
        else:
            hyp.insert(pos, rng.choice(alphabet))
    hyp_s = "".join(hyp)
    start = time.perf_counter()
    c = align(ref, hyp_s)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"align of 2000 chars took {elapsed:.3f} s"
    assert 0 < c.errors <= 300
    assert len(hyp_s) == len(ref) - c.deletions + c.insertions


def test_normalize_nfkc_punctuation_spaces():
    opts = NormalizeOptions()
    # full-width digits/Latin -> ASCII, punctuation and (ideographic) spaces removed
    assert normalize_text("「２０歳」です。　ＯＫ！", opts) == "20歳ですOK"
    assert normalize_text("ア イ ウ", opts) == "アイウ"
    assert normalize_text("ｶﾀｶﾅ", opts) == "カタカナ"  # half-width katakana
    keep = NormalizeOptions(strip_punctuation=False, strip_spaces=False)
    assert normalize_text("今日は、 晴れ。", keep) == "今日は、 晴れ。"
    assert normalize_text("ＡＢ", NormalizeOptions(nfkc=False)) == "ＡＢ"
    # the long vowel mark is a letter (Lm), not punctuation
    assert normalize_text("ラーメン", opts) == "ラーメン"


def test_normalize_kana_maps_hiragana():
    out = normalize_text("あいうえお", NormalizeOptions(kana=True))
    assert out == "アイウエオ"


def test_score_texts_with_missing_keys():
    refs = {"u1": "あいうえお", "u2": "かきくけこ", "u3": "さしすせそ。"}
    hyps = {"u1": "あいえおか", "u3": "さしすせそ", "extra": "なにか"}
    total, per_key, missing = score_texts(refs, hyps, NormalizeOptions())
    assert missing == ["u2"]
    assert per_key["u1"] == ErrorCounts(0, 1, 1, 5)
    assert per_key["u2"] == ErrorCounts(0, 5, 0, 5)
    assert per_key["u3"] == ErrorCounts(0, 0, 0, 5)  # the 。 is stripped before scoring
    assert total == ErrorCounts(0, 6, 1, 15)
    assert total.cer == pytest.approx(7 / 15)


def test_score_texts_raw_options_count_punctuation():
    total, _, _ = score_texts({"a": "はい。"}, {"a": "はい"}, RAW)
    assert total == ErrorCounts(0, 1, 0, 3)


def test_read_text_file(tmp_path):
    p = tmp_path / "text"
    p.write_text("utt1 今日は 晴れ\n\nutt2\nutt3\tタブ 区切り\n", encoding="utf-8")
    assert read_text_file(p) == {"utt1": "今日は 晴れ", "utt2": "", "utt3": "タブ 区切り"}


def test_read_text_file_errors_name_file_and_line(tmp_path):
    dup = tmp_path / "dup"
    dup.write_text("a x\nb y\na z\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dup:3: duplicate key 'a' \(first seen on line 1\)"):
        read_text_file(dup)
    bad = tmp_path / "bad"
    bad.write_bytes(b"a ok\nb \xff\xfe\n")
    with pytest.raises(ValueError, match=r"bad:2: not valid UTF-8"):
        read_text_file(bad)
    indented = tmp_path / "indented"
    indented.write_text("a ok\n  b text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"indented:2: line starts with whitespace"):
        read_text_file(indented)


def test_main_eval_texts_report(tmp_path):
    ref = tmp_path / "ref"
    hyp = tmp_path / "hyp"
    ref.write_text("u1 あいうえお\nu2 かきくけこ\nu3 さしすせそ\n", encoding="utf-8")
    hyp.write_text("u1 あ い え お か\nu3 さしすせそ\n", encoding="utf-8")
    report = main_eval_texts(ref, hyp, NormalizeOptions())
    first = report.splitlines()[0]
    assert first.startswith("CER 46.67%")
    assert "S=0 D=6 I=1" in first and "N 15" in first
    assert "1 missing" in report
    # u2 (5 errors, missing) is listed before u1 (2 errors); u3 (no errors) is not listed
    assert report.index("u2") < report.index("  u1")
    assert "  u3" not in report
