"""Hotword lists (uniasr.hotwords): file / dict / list forms, readings, the documented rules for bad input;
and their effect on a fixture model through every path: transcribe, streaming sessions (both passes),
batched sessions with different lists, the kana -> kanji step writing the phrase as given."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import uniasr
from conftest import FIXTURES, INPUTS, batched_finals
from uniasr.audio.decoding import load_audio
from uniasr.decode.search import hypothesis_tokens
from uniasr.hotwords import (
    MAX_WEIGHT,
    Hotword,
    HotwordError,
    HotwordLimits,
    build_graph,
    parse_hotwords,
    parse_lines,
    token_forms,
    written_forms,
)
from uniasr.stream.session import StreamingSession

TOKENS = ["<blank>", "<s>", "</s>", "ア", "イ", "ウ", "カ", "キ", "ミ", "タ", "ラ", "<unk>"]
INDEX = {t: i for i, t in enumerate(TOKENS)}
PHRASE = "ヌヌネ"  # katakana the fixture model never writes here unless biased


def fake_reader(text: str) -> list[str]:
    return {"御手洗": ["ミタライ", "ミタアライ"], "木": ["キ"]}.get(text, ["カ"])


def test_funasr_file_lines_weights_and_readings(tmp_path):
    f = tmp_path / "hot.txt"
    text = "# comment\n阿里巴巴 20\n\nアイ\n御手洗 2.5 ミタライ みたらい\nNew York 1.5\n"
    f.write_text(text, encoding="utf-8")
    hws = parse_hotwords(f)
    assert hws == [
        Hotword("阿里巴巴", MAX_WEIGHT),  # FunASR's 20 is clipped
        Hotword("アイ"),
        Hotword("御手洗", 2.5, ("ミタライ", "みたらい")),
        Hotword("New York", 1.5),
    ]
    assert parse_hotwords({"アイ": 2, "カキ": None}) == [Hotword("アイ", 2.0), Hotword("カキ")]
    assert parse_hotwords(["アイ 1", Hotword("カキ")]) == [Hotword("アイ", 1.0), Hotword("カキ")]
    assert parse_hotwords("アイ\nカキ 3") == [Hotword("アイ"), Hotword("カキ", 3.0)]
    assert parse_hotwords(None) == [] and parse_hotwords("") == []


@pytest.mark.parametrize(
    "value, fragment",
    [({"アイ": "x"}, "not a number"), ({"アイ": float("nan")}, "finite"), ({"アイ": -1}, "> 0"),
     ({1: 2}, "not a string"), (3.5, "type float"), ([None], "not a string")],
)  # fmt: skip
def test_bad_lists_name_the_problem(value, fragment):
    with pytest.raises(HotwordError, match=fragment):
        parse_hotwords(value)


def test_readings_as_written_kana_and_explicit():
    assert token_forms(Hotword("アイ"), INDEX, fake_reader) == ["アイ"]
    assert token_forms(Hotword("あい"), INDEX, fake_reader) == ["アイ"]  # hiragana -> katakana
    assert token_forms(Hotword("御手洗"), INDEX, fake_reader) == ["ミタライ", "ミタアライ"]  # several
    assert token_forms(Hotword("御手洗", None, ("みたらい",)), INDEX, fake_reader) == ["ミタライ"]
    with pytest.raises(HotwordError, match="cannot write 'ヌ'"):
        token_forms(Hotword("ヌヌ"), INDEX, fake_reader)


def test_graph_rules_empty_single_token_limits():
    assert build_graph([], INDEX) is None  # an empty list: no biasing
    g = build_graph(parse_lines(["御手洗 2", "アイ"]), INDEX, 1.0, reader=fake_reader)
    assert [(p.token_ids, p.weight, p.text) for p in g.phrases] == [
        ((8, 9, 10, 4), 2.0, "御手洗"), ((8, 9, 3, 10, 4), 2.0, "御手洗"), ((3, 4), 1.0, "アイ"),
    ]  # fmt: skip
    assert written_forms(g, TOKENS) == (("ミタアライ", "御手洗"), ("ミタライ", "御手洗"))
    with pytest.raises(HotwordError, match="single token"):
        build_graph([Hotword("木")], INDEX, reader=fake_reader)
    with pytest.raises(HotwordError, match="at most 2"):
        build_graph([Hotword("アイ")] * 3, INDEX, limits=HotwordLimits(max_phrases=2))
    with pytest.raises(HotwordError, match="at most 4"):
        build_graph([Hotword("アイアイア")], INDEX, limits=HotwordLimits(max_chars=4))
    with pytest.raises(HotwordError, match=r"threshold 1.0 must be in \[0, 1\)"):
        build_graph([Hotword("アイ")], INDEX, reader=fake_reader, ac_threshold=1.0)


def test_converter_writes_the_phrase_as_given():
    from uniasr.kana_kanji import KanaKanjiConverter

    conv = KanaKanjiConverter()
    plain = conv("サギノミヤデアウ。")
    assert "鷺ノ宮" not in plain
    assert conv("サギノミヤデアウ。", (("サギノミヤ", "鷺ノ宮"),)).startswith("鷺ノ宮")
    assert conv("サギノミヤデアウ。") == plain  # the cache keeps the two apart


# --- a fixture model -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rec():
    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")  # non-empty texts in every mode


@pytest.fixture(scope="module")
def audio():
    return load_audio(INPUTS / "speech_10s.wav")[: 16000 * 4]


@pytest.mark.parametrize("mode", ["fast", "normal"])
def test_a_hotword_changes_the_hypothesis(rec, audio, mode):
    plain = rec.transcribe(audio, mode=mode)[0]
    assert PHRASE not in plain.text
    biased = rec.transcribe(audio, mode=mode, hotwords={PHRASE: 3.0})[0]
    assert PHRASE in biased.text
    graph = rec.hotword_graph({PHRASE: 3.0})
    again = rec.transcribe(audio, mode=mode, hotwords=graph)[0]
    assert again.token_ids == biased.token_ids and again.score == pytest.approx(biased.score)
    # greedy search is biased too
    assert PHRASE in rec.transcribe(audio, mode=mode, beam_size=1, hotwords=graph)[0].text


def test_score_is_decoder_score_plus_kept_bonus(rec, audio):
    """Re-score the biased hypothesis without bias: the difference is the bonus of its whole matches."""
    from uniasr.decode.context import ContextGraph, ContextPhrase

    graph = ContextGraph([ContextPhrase(tuple(rec.tokens.to_ids(list(PHRASE))), 3.0, PHRASE)])
    got = rec.transcribe(audio, mode="fast", hotwords=graph)[0]
    kept = 0.0
    state = graph.initial()
    for t in got.token_ids:
        kept += float(graph.bonus(state, np.zeros(len(rec.tokens)))[t])
        state = graph.next_state(state, t)
    kept += graph.final(state)
    assert kept == pytest.approx(3.0 * len(PHRASE) * got.text.count(PHRASE), abs=1e-3)


@pytest.mark.parametrize("mode", ["fast", "normal"])
def test_streaming_final_equals_whole_utterance_with_hotwords(rec, audio, mode):
    want = rec.transcribe(audio, mode=mode, hotwords={PHRASE: 3.0})[0]
    session = StreamingSession(rec, mode=mode, hotwords={PHRASE: 3.0})
    events = []
    for pos in range(0, len(audio), 9600):
        events += session.accept_waveform(audio[pos : pos + 9600])
    events += session.finish()
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 1 and finals[0].result.token_ids == want.token_ids
    assert finals[0].result.score == pytest.approx(want.score, rel=1e-6, abs=2e-4)
    assert any(PHRASE in e.text for e in events if e.kind == "partial")  # pass 1 partials are biased too


def _stream_final(rec, audio, mode, graph):
    session = StreamingSession(rec, mode=mode, hotwords=graph)
    events = []
    for pos in range(0, len(audio), 9600):
        events += session.accept_waveform(audio[pos : pos + 9600])
    events += session.finish()
    return [e.result for e in events if e.kind == "final"]


def test_pass1_evidence_lets_pass_2_write_what_pass_1_found(rec):
    """At weight 1 without a threshold pass 1 writes the phrase and pass 2 alone does not; with the
    evidence pass 2 does, in whole-utterance and streaming decoding alike: on 10 s the streaming pass 2
    has searched most of the clip without the phrase before its final search is redone."""
    audio = load_audio(INPUTS / "speech_10s.wav")
    graph = rec.hotword_graph({PHRASE: 1.0}, ac_threshold=0.0)
    assert PHRASE in rec.transcribe(audio, mode="fast", hotwords=graph)[0].text
    off = replace(rec.search_options(None, 1), hotword_evidence=0.0)
    assert PHRASE not in rec.transcribe(audio, mode="normal", hotwords=graph, search=off)[0].text
    want = rec.transcribe(audio, mode="normal", hotwords=graph)[0]
    assert PHRASE in want.text
    finals = _stream_final(rec, audio, "normal", graph)
    assert [r.token_ids for r in finals] == [want.token_ids]
    assert finals[0].score == pytest.approx(want.score, rel=1e-6, abs=2e-4)


def test_what_pass_1_did_not_write_pass_2_does_not_favour(rec, audio):
    graph = rec.hotword_graph({PHRASE: 0.5}, ac_threshold=0.0)  # too weak: pass 1 does not write it
    assert PHRASE not in rec.transcribe(audio, mode="fast", hotwords=graph)[0].text
    for mode in ("normal", "offline"):
        a = rec.transcribe(audio, mode=mode, hotwords=graph)[0]
        b = rec.transcribe(audio, mode=mode)[0]
        assert a.token_ids == b.token_ids and a.score == b.score


def test_offline_streaming_final_equals_whole_utterance_with_evidence(rec, audio):
    graph = rec.hotword_graph({PHRASE: 2.0}, ac_threshold=0.0)
    want = rec.transcribe(audio, mode="offline", hotwords=graph)[0]
    assert [r.token_ids for r in _stream_final(rec, audio, "offline", graph)] == [want.token_ids]


def test_batched_sessions_keep_their_own_lists(rec, audio):
    clips = [audio] * 3
    lists = [None, {PHRASE: 3.0}, {"ヌヌネ": 3.0, "ポポ": 3.0}]
    sessions = [StreamingSession(rec, mode="normal", hotwords=h) for h in lists]
    finals = batched_finals(sessions, clips, 16000)
    for h, got in zip(lists, finals):
        want = rec.transcribe(clips[0], mode="normal", hotwords=h)[0]
        assert [e.result.token_ids for e in got] == [want.token_ids]
    assert finals[0][0].result.token_ids != finals[1][0].result.token_ids


def test_hypothesis_tokens_unchanged_without_hotwords(rec, audio):
    """An empty list is no biasing: the same tokens and score as without."""
    a = rec.transcribe(audio, mode="normal")[0]
    b = rec.transcribe(audio, mode="normal", hotwords=[])[0]
    assert a.token_ids == b.token_ids and a.score == b.score
    assert hypothesis_tokens  # imported API stays
    assert np.isfinite(a.score)
