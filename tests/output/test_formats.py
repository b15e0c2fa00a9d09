"""Output formats: SRT/WebVTT/TSV/JSON syntax, cue splitting, never-overwrite file writing."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import INPUTS
from uniasr.output import formats
from uniasr.output.formats import CueOptions, char_times, segment_cues
from uniasr.result import Alternative, Result, Segment, result_from_json

KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
SRT_TIME = r"\d\d:\d\d:\d\d,\d{3}"


def _segment(start_ms: int, text: str, ms_per_char: int = 100) -> Segment:
    tokens = list(text)
    times = [(start_ms + i * ms_per_char, start_ms + (i + 1) * ms_per_char) for i in range(len(tokens))]
    return Segment(start_ms, start_ms + len(tokens) * ms_per_char + 40, text, tokens, times, -1.5)


def _result(*segments: Segment) -> Result:
    tokens = [t for s in segments for t in s.tokens]
    stamps = [t for s in segments for t in s.timestamps]
    text = "".join(s.text for s in segments)
    score = sum(s.score for s in segments)
    return Result(
        "utt1", text, tokens, list(range(len(tokens))), stamps, score, [Alternative(text, tokens, [], score)],
        "normal", 100.0, 0.1, None, list(segments),
    )  # fmt: skip


def test_times():
    assert formats.srt_time(1230) == "00:00:01,230"
    assert formats.srt_time(3_723_004) == "01:02:03,004"
    assert formats.vtt_time(3_723_004) == "01:02:03.004"
    assert formats.srt_time(-5) == "00:00:00,000"


def test_srt_golden():
    r = _result(_segment(1230, "アイウ"), _segment(61_000, "カキ"))
    assert formats.format_srt(r) == (
        "1\n00:00:01,230 --> 00:00:01,570\nアイウ\n\n2\n00:01:01,000 --> 00:01:01,240\nカキ\n"
    )


def test_vtt_golden():
    r = _result(_segment(1230, "アイウ"), _segment(3_600_000, "カキ"))
    assert formats.format_vtt(r) == (
        "WEBVTT\n\n00:00:01.230 --> 00:00:01.570\nアイウ\n\n01:00:00.000 --> 01:00:00.240\nカキ\n"
    )


def test_srt_structure_of_many_segments():
    segs = [_segment(5000 * i + 300, KANA[i : i + 5 + i % 7]) for i in range(20)]
    segs.insert(3, Segment(16_000, 16_500, "", [], [], 0.0))  # empty segments give no cue
    out = formats.format_srt(_result(*segs))
    blocks = out.rstrip("\n").split("\n\n")
    assert len(blocks) == 20
    previous_end = 0
    for i, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        assert lines[0] == str(i)
        m = re.fullmatch(f"({SRT_TIME}) --> ({SRT_TIME})", lines[1])
        assert m, lines[1]
        start, end = (_ms(t) for t in m.groups())
        assert previous_end <= start < end
        previous_end = end
        assert lines[2:] and all(lines[2:])


def _ms(stamp: str) -> int:
    h, m, rest = stamp.split(":")
    s, ms = rest.replace(".", ",").split(",")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def test_long_segment_is_split_into_cues_by_characters():
    text = (KANA * 2)[:60]
    seg = _segment(10_000, text)  # 100 ms per character
    cues = segment_cues(seg, CueOptions(max_line_width=42, max_lines=2))  # 21 kana per line
    assert [c.text.replace("\n", "") for c in cues] == [text[:42], text[42:]]
    assert cues[0].text.split("\n") == [text[:21], text[21:42]]
    assert cues[0].start_ms == seg.start_ms and cues[-1].end_ms == seg.end_ms
    assert cues[1].start_ms == 10_000 + 42 * 100  # the start of the 43rd character's token
    assert cues[0].end_ms == cues[1].start_ms


def test_cues_prefer_punctuation_and_balance_lines():
    text = KANA[:25] + "。" + KANA[25:] + KANA[:5]  # 。 after 26 kana, before the 42-column limit
    cues = segment_cues(_segment(0, text), CueOptions(max_line_width=42, max_lines=2))
    assert cues[0].text.replace("\n", "").endswith("。")
    for cue in cues:
        assert len(cue.text.split("\n")) <= 2
        assert all(len(line) <= 21 for line in cue.text.split("\n"))
    short = segment_cues(_segment(0, KANA[:30]), CueOptions(max_line_width=42))[0]
    assert [len(line) for line in short.text.split("\n")] == [15, 15]  # balanced, not 21 + 9


def test_a_segment_of_several_sentences_gets_a_cue_per_sentence():
    text = "キョウハハレ。アシタハアメデス！ソウ？？ハイ"  # a merged VAD segment: 3 sentences + a fragment
    cues = segment_cues(_segment(5_000, text), CueOptions(max_line_width=42, max_lines=2))
    assert [c.text for c in cues] == ["キョウハハレ。", "アシタハアメデス！", "ソウ？？", "ハイ"]
    assert cues[1].start_ms == 5_000 + 7 * 100  # the first token of the second sentence
    assert all(a.end_ms <= b.start_ms for a, b in zip(cues, cues[1:]))


def test_latin_text_wraps_at_spaces():
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "keeps"]
    words += ["on", "running", "far", "away"]
    tokens = words
    times = [(i * 300, i * 300 + 250) for i in range(len(words))]
    seg = Segment(0, len(words) * 300, " ".join(words), tokens, times, 0.0)
    cues = segment_cues(seg, CueOptions(max_line_width=20, max_lines=2))
    for cue in cues:
        for line in cue.text.split("\n"):
            assert len(line) <= 20 and line == line.strip()
            assert all(w in words for w in line.split())  # no word cut in half
    assert " ".join(c.text.replace("\n", " ") for c in cues) == seg.text


def test_char_times_follow_itn_changes():
    tokens = list("二千二十四年に行く")
    times = [(i * 100, i * 100 + 100) for i in range(len(tokens))]
    got = char_times("2024年に行く", tokens, times, 0, 1000)
    assert got[4] == (500, 600) and got[-1] == (800, 900)  # 年 and く keep their tokens' times
    starts = [s for s, _ in got]
    assert starts == sorted(starts) and all(0 <= s <= e <= 1000 for s, e in got)
    assert got[:4] == [(0, 125), (125, 250), (250, 375), (375, 500)]  # 2024 share 二千二十四's time
    assert char_times("アイウエ", [], [], 0, 400) == [(0, 100), (100, 200), (200, 300), (300, 400)]


def test_tsv_columns():
    r = _result(_segment(1230, "アイウ"), Segment(9000, 9100, "", [], [], 0.0), _segment(61_000, "カ\tキ"))
    rows = [line.split("\t") for line in formats.format_tsv(r).splitlines()]
    assert rows == [["start", "end", "text"], ["1230", "1570", "アイウ"], ["61000", "61340", "カ キ"]]


def test_json_round_trip():
    r = _result(_segment(1230, "アイウ"), _segment(61_000, "カキ"))
    line = formats.format_json(r)
    assert "\n" not in line
    d = json.loads(line)
    assert set(d) >= {"key", "text", "kana", "tokens", "timestamps", "score", "segments"}
    assert d["segments"][1] == {
        "start_ms": 61_000,
        "end_ms": 61_240,
        "text": "カキ",
        "kana": "",
        "tokens": ["カ", "キ"],
        "timestamps": [[61_000, 61_100], [61_100, 61_200]],
        "score": -1.5,
    }
    back = result_from_json(line)
    assert back.segments == r.segments and back.timestamps == r.timestamps and back.text == r.text
    assert formats.format_json(back) == line
    failed = Result("bad", error="not found")
    assert result_from_json(formats.format_json(failed)).error == "not found"


def test_failed_result_has_no_subtitles():
    with pytest.raises(ValueError, match="failed input"):
        formats.format_result(Result("bad", error="boom"), "srt")
    assert formats.format_text(Result("bad", error="boom")) == "bad\tERROR: boom"


def test_write_never_overwrites(tmp_path):
    r = _result(_segment(0, "アイウ"))
    path = formats.write_result_file(r, "srt", tmp_path)
    assert path == tmp_path / "utt1.srt"
    before = path.read_text()
    other = _result(_segment(500, "カキ"))
    with pytest.raises(FileExistsError, match="utt1.srt"):
        formats.write_result_file(other, "srt", tmp_path)
    assert path.read_text() == before
    formats.write_result_file(other, "srt", tmp_path, overwrite=True)
    assert "カキ" in path.read_text()
    with pytest.raises(ValueError, match="path separators"):
        formats.result_path(tmp_path, "../evil", "srt")


def test_cli_srt_files_never_overwritten(tiny_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "speech_10s.srt").write_text("keep me\n")
    cmd = [
        sys.executable, "-m", "uniasr", "transcribe", str(INPUTS / "speech_10s.wav"),
        str(INPUTS / "short_0_7s.wav"), "--model", str(tiny_dir), "--mode", "fast", "--beam", "1",
        "--format", "srt", "--output-dir", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2  # refused before any decoding: no work is lost (issue 14)
    assert "speech_10s.srt already exists" in proc.stderr and "--overwrite" in proc.stderr
    assert "nothing was decoded" in proc.stderr
    assert (out / "speech_10s.srt").read_text() == "keep me\n"
    assert sorted(p.name for p in out.iterdir()) == ["speech_10s.srt"]
    assert proc.stdout == ""
    proc = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    srt = (out / "short_0_7s.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,700\n")
    assert len((out / "1best_recog" / "text").read_text().splitlines()) == 2
    blocks = (out / "speech_10s.srt").read_text().rstrip("\n").split("\n\n")
    assert blocks[0].startswith("1\n00:00:00,000 --> ")
    assert re.match(f"{len(blocks)}\n{SRT_TIME} --> 00:00:10,000\n", blocks[-1])
