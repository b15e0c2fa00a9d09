"""Back-off n-gram LMs (uniasr.lm.ngram): Kneser-Ney training, ARPA round trip, errors."""

from __future__ import annotations

import math

import pytest

from uniasr.lm.ngram import BOS, EOS, UNK, ArpaError, NgramLM, train_kneser_ney

TEXTS = ["今日は晴れ", "今日は雨", "明日は晴れ", "昨日は雪だった"]


@pytest.fixture(scope="module")
def lm() -> NgramLM:
    return train_kneser_ney([list(t) for t in TEXTS], order=3)


@pytest.mark.parametrize("history", [[BOS], [BOS, "今"], ["日", "は"], ["は", "晴"], ["x", "y"], ["雪"]])
def test_every_distribution_sums_to_one(lm, history):
    vocab = [g[0] for g in lm.probs[1] if g[0] != BOS]  # includes </s> and <unk>
    assert math.fsum(10 ** lm.logprob(history, w) for w in vocab) == pytest.approx(1.0, abs=1e-9)


def test_seen_text_beats_shuffled_text_and_unknown_symbols_get_unk(lm):
    assert lm.sentence_logprob(list("今日は晴れ")) > lm.sentence_logprob(list("晴日は今れ"))
    assert lm.logprob(["は"], "嵐") == lm.logprob(["は"], UNK) < lm.logprob(["は"], "晴")
    assert lm.sentence_logprob([], eos=True) == lm.logprob([BOS], EOS)


def test_arpa_round_trip(lm, tmp_path):
    for name in ("lm.arpa", "lm.arpa.gz"):
        back = NgramLM.read_arpa(lm.write_arpa(tmp_path / name))
        assert back.order == 3 and back.probs[3].keys() == lm.probs[3].keys()
        for text in TEXTS + ["知らない文"]:
            assert back.sentence_logprob(list(text)) == pytest.approx(
                lm.sentence_logprob(list(text)), abs=1e-5
            )


@pytest.mark.parametrize(
    "body, message",
    [
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n\\end\\\n", "says ngram 1=2, found 1"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\nx\ta\n\\end\\\n", "lm.arpa:5: bad 1-gram line"),
        ("hello\n", "lm.arpa:1: unexpected line 'hello'"),
        ("", "no \\\\data\\\\ section"),
    ],
)
def test_bad_arpa_files_name_the_file_and_line(tmp_path, body, message):
    (tmp_path / "lm.arpa").write_text(body, encoding="utf-8")
    with pytest.raises(ArpaError, match=message.replace("(", "\\(")):
        NgramLM.read_arpa(tmp_path / "lm.arpa")


def test_missing_file_is_an_arpa_error(tmp_path):
    with pytest.raises(ArpaError, match="cannot read ARPA file .*nope.arpa"):
        NgramLM.read_arpa(tmp_path / "nope.arpa")


def test_order_must_be_positive():
    with pytest.raises(ValueError, match="order=0"):
        train_kneser_ney([["a"]], order=0)
