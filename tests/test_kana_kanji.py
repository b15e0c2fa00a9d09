"""Kana -> Japanese text (uniasr.kana_kanji) and how recognisers apply it (Recognizer.text_form)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import uniasr
from uniasr.itn import normalize
from uniasr.kana_kanji import LM_FILE, KanaKanjiConverter, convert_kana, katakana_to_hiragana
from uniasr.lm.ngram import NgramLM, train_kneser_ney
from uniasr.longform import join_segment_texts
from uniasr.output import formats
from uniasr.result import result_from_json

# orthographic katakana (as the default model writes it) -> the sentence as written; each checked by hand
GOLDEN = [
    ("トウキョウヘイッテコウエンデラーメンヲタベタ。", "東京へ行って公園でラーメンを食べた。"),
    ("ユレルフェリーニノルノハワタシニトッテクギョウデス。", "揺れるフェリーに乗るのは私にとって苦行です。"),
    ("シュサイシャハ、コノフェスノキャパガチイサイコトヲ、セシルカラキイタ。",
     "主催者は、このフェスのキャパが小さいことを、セシルから聞いた。"),
    ("マキョウニアシヲフミイレル。", "魔境に足を踏み入れる。"),
    ("コマッテルヒトニムケテキフヲシマシタ。", "困ってる人に向けて寄付をしました。"),
    ("キャリーバッグハリョコウニヒッス。", "キャリーバッグは旅行に必須。"),
    ("コンピューターデレシピヲシラベル。", "コンピューターでレシピを調べる。"),
    ("キョウハテンキガイイデスネ。", "今日は天気がいいですね。"),
    ("サンカクカンスウニオイテピュタゴラスノテイリハヒッスデス。",
     "三角関数においてピュタゴラスの定理は必須です。"),
    # full-width ？ and ！ are breaks: か？ alone would become 過？
    ("エキマデドノクライカカリマスカ？", "駅までどのくらいかかりますか？"),
    ("ゲンキデスカ！ハイ、ゲンキデス。", "元気ですか！はい、元気です。"),
]  # fmt: skip


@pytest.mark.parametrize("kana, written", GOLDEN)
def test_golden_sentences(kana, written):
    assert convert_kana(kana) == written
    assert convert_kana(katakana_to_hiragana(kana)) == written  # hiragana input is the same


def test_pronunciation_kana_is_not_what_the_dictionary_reads():
    # why the default model writes orthographic kana: Open JTalk's pronunciation (ー, ワ for は) misleads it
    assert convert_kana("コウエンハ") == "公園は"
    assert convert_kana("コーエンワ") != "公園は"


def test_punctuation_spaces_and_empty_text_stay():
    assert convert_kana("") == ""
    assert convert_kana(" ") == " "
    assert convert_kana("「サヨナラ、ジュモクタチ！」") == "「さよなら、樹木たち！」"
    assert katakana_to_hiragana("ラーメン、ヴ") == "らーめん、ゔ"


def test_itn_runs_on_the_converted_text():
    assert normalize(convert_kana("サンジュウゴニンガキタ。")) == "35人が来た。"
    assert normalize(convert_kana("センエンハラッタ。")) == "1000円払った。"


def test_joined_segments_never_run_together():
    assert join_segment_texts(["今日は晴れ。", "", "明日は", "雨です"]) == "今日は晴れ。明日は 雨です"
    assert join_segment_texts(["hello.", "world"], spaced=True) == "hello. world"


def test_text_form_of_a_recognizer(tiny_recognizer):
    rec = tiny_recognizer
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    try:
        assert rec.text_form == "auto" and not rec.defaults.convert_kana
        (r,) = rec.transcribe(audio, beam_size=1)
        assert r.text == r.kana and r.segments[0].kana == r.kana  # auto: the fixture does not convert
        rec.text_form = "written"
        (w,) = rec.transcribe(audio, beam_size=1)
        assert w.kana == r.kana and w.text == convert_kana(r.kana)
        rec.text_form = "auto"
        rec.defaults = replace(rec.defaults, convert_kana=True)  # as the default model's decoding.yaml says
        (a,) = rec.transcribe(audio, beam_size=1, nbest=2)
        assert a.text == w.text and all(alt.text == convert_kana(alt.kana) for alt in a.nbest)
        back = result_from_json(formats.format_json(a))
        assert (back.text, back.kana, back.segments[0].kana) == (a.text, a.kana, a.kana)
        with pytest.raises(ValueError, match="text_form='kanji'; valid: 'auto', 'written', 'kana'"):
            rec.text_form = "kanji"
    finally:
        rec.text_form = "auto"
        rec.defaults = replace(rec.defaults, convert_kana=False)


def test_load_takes_the_text_form(tiny_dir):
    assert uniasr.load(tiny_dir, text_form="kana").text_form == "kana"


def test_a_language_model_picks_among_the_dictionarys_candidates(tmp_path):
    assert convert_kana("イロイロアルンダヨ。") == "色々あるんだよ。"  # the dictionary's first choice
    lm = train_kneser_ney([list("いろいろあるんだよ。")] * 3, order=3)
    assert KanaKanjiConverter(lm)("イロイロアルンダヨ。") == "いろいろあるんだよ。"
    # a model dir's written_lm.arpa.gz is read at the first conversion
    lm.write_arpa(tmp_path / LM_FILE)
    from_dir = KanaKanjiConverter.for_model_dir(tmp_path)
    assert from_dir("イロイロアルンダヨ。") == "いろいろあるんだよ。" and isinstance(from_dir.lm, NgramLM)
    assert KanaKanjiConverter.for_model_dir(tmp_path / "elsewhere").lm is None
