"""uniasr.output.kaldi_dir: 1best_recog/ and Nbest_recog/ for --nbest N; the per-utterance rtf they record."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, ROOT
from uniasr.longform import LongformOptions
from uniasr.output.kaldi_dir import output_dir_files, write_output_dir
from uniasr.pipeline import utterance_rtf
from uniasr.result import Alternative, Result

INPUTS = FIXTURES / "inputs"
CLIPS = [INPUTS / "speech_10s.wav", ROOT / "recipes" / "synth_ja" / "sample_ja.wav"]


def _lines(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in path.read_text().splitlines())


def test_nbest_n_writes_one_dir_per_rank(tiny_recognizer, tmp_path):
    out = tmp_path / "out"
    results = tiny_recognizer.transcribe(CLIPS, mode="fast", beam_size=3, nbest=3, output_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["1best_recog", "2best_recog", "3best_recog"]
    assert sorted(p.name for p in (out / "1best_recog").iterdir()) == sorted(
        ["text", "token", "score", "time_stamp", "rtf"]
    )
    for rank in (1, 2, 3):
        d = out / f"{rank}best_recog"
        texts, scores = _lines(d / "text"), _lines(d / "score")
        for r in results:
            if len(r.nbest) >= rank:
                alt = r.nbest[rank - 1]
                assert texts[r.key] == alt.text and float(scores[r.key]) == pytest.approx(alt.score, abs=1e-5)
                assert _lines(d / "token")[r.key] == " ".join(alt.tokens)
    assert _lines(out / "1best_recog" / "text") == {r.key: r.text for r in results}
    assert all(len(r.nbest) >= 2 for r in results)  # so 2best_recog is really filled
    # a second run refuses before decoding, naming an existing n-best file too
    (out / "1best_recog" / "text").unlink()
    with pytest.raises(FileExistsError, match="1best_recog/token already exists"):
        tiny_recognizer.transcribe(CLIPS, mode="fast", nbest=3, output_dir=out)


def test_output_dir_files_and_fewer_alternatives(tmp_path):
    names = [p.relative_to(tmp_path).as_posix() for p in output_dir_files(tmp_path, 2)]
    assert names[:5] == [f"1best_recog/{n}" for n in ("text", "token", "score", "time_stamp", "rtf")]
    assert names[5:] == ["2best_recog/text", "2best_recog/token", "2best_recog/score"]

    one = Result("a", text="x", tokens=["x"], nbest=[Alternative("x", ["x"], [5], -1.0)])
    two = Result("b", text="y", tokens=["y"], nbest=[Alternative("y", ["y"], [6], -1.0)] * 2)
    write_output_dir([one, two, Result("c", error="broken")], tmp_path, nbest=2)
    assert _lines(tmp_path / "2best_recog" / "text") == {"b": "y"}  # a's beam found one hypothesis
    assert _lines(tmp_path / "1best_recog" / "text") == {"a": "x", "b": "y"}


def test_rtf_is_per_utterance(tiny_recognizer):
    t0 = time.perf_counter()
    results = tiny_recognizer.transcribe(CLIPS, mode="normal", longform=LongformOptions(batch_seconds=600))
    wall = time.perf_counter() - t0
    rtfs = [r.rtf for r in results]
    assert all(math.isfinite(x) and x > 0 for x in rtfs)
    assert rtfs[0] != rtfs[1]  # not one value per batch
    assert sum(r.rtf * r.duration_s for r in results) <= wall  # the times attributed add up to at most all


def test_utterance_rtf_shares_the_batch_time_by_length():
    assert utterance_rtf(0.5, 3.0, 10.0, 30.0) == pytest.approx((0.5 + 1.0) / 10.0)
    shares = [utterance_rtf(0.0, 3.0, s, 30.0) * s for s in (10.0, 20.0)]
    np.testing.assert_allclose(sum(shares), 3.0)
