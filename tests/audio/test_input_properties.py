"""Property-based tests of what users send `transcribe()`: any array (dtype, shape, length 0..3 s, NaN/Inf,
sample rate) and any wav.scp line. The invariant: a clear error naming the problem, or a result; never a
crash, never a lost neighbour. Kept small (tiny model, few examples) so the suite runs in seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import INPUTS
from uniasr.audio.errors import AudioError

SHORT = INPUTS / "short_0_7s.wav"
FAST = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DTYPES = ["float32", "float64", "float16", "int16", "int32", "int8", "uint8", "int64", "bool", "complex64"]
RATES = [None, 8000, 16000, 22050, 44100, 0, -16000, 10**9]


@pytest.fixture(scope="module")
def reference(tiny_recognizer):
    return tiny_recognizer.transcribe(SHORT)[0]


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(0, 3 * 16000))
    layout = draw(st.sampled_from(["1d", "channels_first", "channels_last", "3d", "wide"]))
    shape = {
        "1d": (n,),
        "channels_first": (draw(st.integers(1, 3)), n),
        "channels_last": (n, draw(st.integers(1, 3))),
        "3d": (1, 1, n),
        "wide": (9, n),
    }[layout]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) * draw(st.sampled_from([0.0, 0.1, 1.0, 30000.0]))
    if x.size and draw(st.booleans()):
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)


@FAST
@given(array=arrays(), rate=st.sampled_from(RATES))
def test_any_array_gives_a_named_error_or_a_result_and_keeps_its_neighbour(
    tiny_recognizer, reference, array, rate
):
    try:
        results = tiny_recognizer.transcribe([SHORT, array], source_rate=rate, errors="report")
    except AudioError as e:  # a bad source_rate is an argument of the whole call, refused before any work
        assert rate is not None and "source_rate" in str(e)
        return
    assert len(results) == 2
    assert results[0].error is None and results[0].token_ids == reference.token_ids
    r = results[1]
    assert r.key == "array_1"
    if r.error is not None:
        assert r.error.startswith("array_1") and len(r.error) > len("array_1: ")
    else:
        assert isinstance(r.text, str) and r.duration_s >= 0


ONE_LINE = st.characters(codec="utf-8", exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
PATH_LIKE = st.one_of(
    st.just(str(SHORT)),
    st.just(str(SHORT) + " |"),
    st.just("/no/such/file.wav"),
    st.just(str(INPUTS)),  # a directory
    st.just("http://"),
    st.just("ftp://host/x.wav"),
    st.text(
        st.characters(codec="utf-8", exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
        max_size=12,
    ),
)
KEY = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=8
)


@FAST
@given(lines=st.lists(st.tuples(KEY, st.sampled_from([" ", "\t", "  "]), PATH_LIKE), min_size=1, max_size=4))
def test_any_wav_scp_gives_a_named_error_or_results_for_every_entry(tiny_recognizer, reference, lines):
    with tempfile.TemporaryDirectory() as tmp:
        scp = Path(tmp) / "wav.scp"
        scp.write_text("".join(f"{k}{sep}{p}\n" for k, sep, p in lines), encoding="utf-8")
        try:
            results = tiny_recognizer.transcribe([scp, SHORT], errors="report")
        except AudioError as e:  # a malformed list: the message names the file and line
            assert str(e).startswith(str(scp))
            return
    assert results[-1].error is None and results[-1].token_ids == reference.token_ids
    for r in results[:-1]:
        assert r.key and not any(c.isspace() for c in r.key)
        if r.error is not None:
            assert r.error.startswith(r.key)
        else:
            assert r.token_ids == reference.token_ids  # only the real clip decodes
