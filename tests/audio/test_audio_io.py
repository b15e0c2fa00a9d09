"""Audio input: every source kind, resampling, wav.scp / input expansion, block decoding, URLs, errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import FIXTURES, serve_files
from uniasr.audio import url as audio_url
from uniasr.audio.blocks import iter_audio_blocks
from uniasr.audio.decoding import load_audio, resample
from uniasr.audio.errors import AudioError
from uniasr.audio.inputs import expand_inputs, read_wav_scp
from uniasr.audio.probe import audio_duration_seconds

CLIP = FIXTURES / "inputs" / "speech_10s.wav"


def _sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.shape[0])))
    return float(np.fft.rfftfreq(samples.shape[0], 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    data, rate = sf.read(CLIP, dtype="int16")
    assert rate == 16000
    return data


# ----------------------------------------------------------------------------------------- sources
def test_wav_path_is_int16_scaled(clip: np.ndarray) -> None:
    out = load_audio(CLIP)
    assert out.dtype == np.float32 and out.shape == (160000,)
    np.testing.assert_array_equal(out, clip.astype(np.float32) / 32768)
    assert load_audio(str(CLIP)).shape == (160000,)


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_soundfile_formats_path_and_bytes(tmp_path: Path, fmt: str, subtype: str) -> None:
    tone = _sine(440, 16000)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, tone, 16000, format=fmt, subtype=subtype)
    for source in (path, path.read_bytes()):
        out = load_audio(source)
        assert out.dtype == np.float32 and out.ndim == 1
        assert out.shape[0] == 16000
        assert abs(_peak_hz(out, 16000) - 440) < 3
        if fmt != "OGG":  # lossless: exactly the 16-bit quantised tone
            np.testing.assert_allclose(out, tone, atol=1 / 32768)


def _encode_with_av(path: Path, codec: str, rate: int, samples: np.ndarray) -> None:
    av = pytest.importorskip("av")
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV/FFmpeg here has no '{codec}' encoder")
    try:
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=rate)
            stream.layout = "mono"
            pcm = (samples * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        pytest.skip(f"PyAV cannot encode with '{codec}' here: {exc}")


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [
        (".mp3", "libmp3lame", 44100),
        (".m4a", "aac", 44100),
        (".opus", "libopus", 48000),
        (".webm", "libopus", 48000),
    ],
)
def test_ffmpeg_formats_path_and_bytes(tmp_path: Path, suffix: str, codec: str, rate: int) -> None:
    path = tmp_path / f"tone{suffix}"
    _encode_with_av(path, codec, rate, _sine(1000, rate, seconds=2.0))
    for source in (path, path.read_bytes()):
        out = load_audio(source)
        assert out.dtype == np.float32
        assert abs(out.shape[0] - 32000) < 0.1 * 16000  # encoder delay/padding only
        assert abs(_peak_hz(out, 16000) - 1000) < 3
        assert 0.3 < np.abs(out).max() <= 1.0
    duration = audio_duration_seconds(path)
    assert duration is not None and abs(duration - 2.0) < 0.1
    blocks = list(iter_audio_blocks(path, block_seconds=0.5))
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(path), atol=1e-6)


def test_numpy_int16_float_and_stereo(clip: np.ndarray) -> None:
    expected = clip.astype(np.float32) / 32768
    np.testing.assert_array_equal(load_audio(clip), expected)
    np.testing.assert_array_equal(load_audio(expected), expected)
    np.testing.assert_array_equal(load_audio(expected.astype(np.float64)), expected)
    np.testing.assert_array_equal(load_audio(clip.astype(np.int32) << 16), expected)
    left, right = expected, 0.5 * expected
    mono = (left + right) / 2
    np.testing.assert_allclose(load_audio(np.stack([left, right])), mono, atol=1e-7)  # [2, N]
    np.testing.assert_allclose(load_audio(np.stack([left, right], axis=1)), mono, atol=1e-7)  # [N, 2]
    np.testing.assert_array_equal(load_audio(expected[None, :]), expected)  # [1, N]


def test_torch_tensor(clip: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    expected = clip.astype(np.float32) / 32768
    np.testing.assert_array_equal(load_audio(torch.from_numpy(expected)), expected)
    np.testing.assert_array_equal(load_audio(torch.from_numpy(clip.copy())), expected)
    stereo = torch.from_numpy(np.stack([expected, expected]))
    np.testing.assert_allclose(load_audio(stereo), expected, atol=1e-7)
    half = load_audio(torch.from_numpy(expected).half())
    np.testing.assert_allclose(half, expected, atol=1e-3)
    out = load_audio(torch.from_numpy(_sine(1000, 8000)), source_rate=8000)
    assert out.shape == (16000,)
    blocks = list(iter_audio_blocks(torch.from_numpy(_sine(1000, 8000)), block_seconds=0.3, source_rate=8000))
    assert [b.shape[0] for b in blocks] == [4800, 4800, 4800, 1600]
    np.testing.assert_array_equal(np.concatenate(blocks), out)
    with pytest.raises(AudioError, match="^array: non-numeric dtype complex64"):
        load_audio(torch.zeros(10, dtype=torch.complex64))
    with pytest.raises(AudioError, match=r"^array: 3-D array"):
        load_audio(torch.zeros(1, 2, 100))


@pytest.mark.parametrize(("rate", "freq"), [(8000, 1000.0), (44100, 3000.0), (48000, 5000.0), (22050, 440.0)])
def test_resampling_keeps_length_and_frequency(tmp_path: Path, rate: int, freq: float) -> None:
    tone = _sine(freq, rate, seconds=1.5)
    for out in (
        load_audio(tone, source_rate=rate),
        resample(tone, rate, 16000),
        load_audio(_write(tmp_path / "tone.wav", tone, rate, "FLOAT")),
    ):
        assert out.dtype == np.float32
        assert abs(out.shape[0] - 24000) <= 1
        assert abs(_peak_hz(out, 16000) - freq) < 2
        # the amplitude survives (away from the edges)
        assert abs(np.abs(out[2000:-2000]).max() - 0.5) < 0.01


def test_resampling_removes_content_above_nyquist() -> None:
    tone = _sine(10000, 48000) + _sine(1000, 48000, amp=0.1)
    out = resample(tone, 48000, 16000)
    spectrum = np.abs(np.fft.rfft(out[1000:-1000]))
    freqs = np.fft.rfftfreq(out.shape[0] - 2000, 1 / 16000)
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 2  # the 10 kHz tone cannot alias into the band
    np.testing.assert_array_equal(resample(tone, 48000, 48000), tone)


def _write(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


# ----------------------------------------------------------------------------------------- blocks, duration
@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2), (8000, 1)])
def test_iter_audio_blocks_matches_load_audio(tmp_path: Path, rate: int, channels: int) -> None:
    rng = np.random.default_rng(rate)
    data = (0.2 * rng.standard_normal((int(3.3 * rate), channels))).astype(np.float32)
    path = _write(tmp_path / "noise.wav", data, rate)
    whole = load_audio(path)
    blocks = list(iter_audio_blocks(path, block_seconds=0.7))
    assert all(block.shape[0] == 11200 for block in blocks[:-1]) and 0 < blocks[-1].shape[0] <= 11200
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    in_memory = list(iter_audio_blocks(path.read_bytes(), block_seconds=1.0))
    np.testing.assert_array_equal(np.concatenate(in_memory), whole)
    assert audio_duration_seconds(path) == pytest.approx(data.shape[0] / rate)
    assert audio_duration_seconds(path.read_bytes()) == pytest.approx(data.shape[0] / rate)


def test_duration_probe_cases(tmp_path: Path) -> None:
    assert audio_duration_seconds(np.zeros(8000)) == 0.5
    assert audio_duration_seconds(np.zeros((2, 8000)), source_rate=8000) == 1.0
    assert audio_duration_seconds(tmp_path / "missing.wav") is None
    assert audio_duration_seconds(b"garbage") is None
    assert audio_duration_seconds("https://example.invalid/a.wav") is None


# ----------------------------------------------------------------------------------------- lists
def test_read_wav_scp(tmp_path: Path) -> None:
    scp = tmp_path / "wav.scp"
    scp.write_text("utt1 /data/a.wav\n\nutt2\t/data/with space/b.flac  \nutt3 https://h/x.mp3\n")
    assert read_wav_scp(scp) == [
        ("utt1", "/data/a.wav"),
        ("utt2", "/data/with space/b.flac"),
        ("utt3", "https://h/x.mp3"),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("utt1 a.wav\nutt2\n", r"wav.scp:2: expected '<key> <path>', got 'utt2'"),
        ("utt1 a.wav\nutt2 b.wav\nutt1 c.wav\n", r"wav.scp:3: duplicate key 'utt1' \(first on line 1\)"),
        ("utt1 sox a.wav -t wav - |\n", r"wav.scp:1: Kaldi pipe commands"),
    ],
)
def test_read_wav_scp_errors(tmp_path: Path, text: str, match: str) -> None:
    scp = tmp_path / "wav.scp"
    scp.write_text(text)
    with pytest.raises(AudioError, match=match):
        read_wav_scp(scp)
    with pytest.raises(AudioError, match="wav.scp not found"):
        read_wav_scp(tmp_path / "none.scp")


def test_expand_inputs_keys(tmp_path: Path) -> None:
    scp = tmp_path / "list.scp"
    scp.write_text("k1 /x/one.wav\nk2 /x/two.wav\n")
    array = np.zeros(10, np.float32)
    pairs = expand_inputs(
        ["/d/a.wav", Path("/e/a.mp3"), b"RIFF", array, str(scp), "https://h/p/talk%201.m4a?x=1"]
    )
    keys = [key for key, _ in pairs]
    assert keys == ["a", "a_2", "bytes_2", "array_3", "k1", "k2", "talk_1"]  # whitespace -> "_"
    assert pairs[3][1] is array and pairs[4][1] == "/x/one.wav"
    assert expand_inputs("/d/clip.flac") == [("clip", "/d/clip.flac")]
    assert [k for k, _ in expand_inputs(["/a/x.wav", "/b/x.wav", "/c/x_2.wav", "/d/x.wav"])] == [
        "x",
        "x_2",
        "x_2_2",
        "x_3",
    ]
    (tmp_path / "wav.scp").write_text("\n")
    with pytest.raises(AudioError, match="wav.scp: wav.scp has no entries"):
        expand_inputs(tmp_path / "wav.scp")
    with pytest.raises(AudioError, match="no inputs given"):
        expand_inputs([])
    with pytest.raises(AudioError, match=r"inputs\[1\]: unsupported input type int"):
        expand_inputs(["/a.wav", 3])
    with pytest.raises(AudioError, match="source_rate=0"):
        expand_inputs("/a.wav", source_rate=0)


# ----------------------------------------------------------------------------------------- URLs
@pytest.fixture()
def http_base(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local HTTP server on 127.0.0.1 serving ``files``; shut down after the test."""
    files: dict[str, bytes] = {}
    with serve_files(files) as base:
        yield base, files


def test_url(http_base: tuple[str, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    base, files = http_base
    files["/clip.wav"] = CLIP.read_bytes()
    np.testing.assert_array_equal(load_audio(f"{base}/clip.wav"), load_audio(CLIP))
    assert expand_inputs(f"{base}/clip.wav")[0][0] == "clip"
    with pytest.raises(AudioError, match=r"/missing.wav: download failed with HTTP 404"):
        load_audio(f"{base}/missing.wav")
    monkeypatch.setattr(audio_url, "MAX_URL_BYTES", 1000)
    with pytest.raises(AudioError, match="exceeds the 1000-byte limit"):
        load_audio(f"{base}/clip.wav")


def test_url_connection_refused() -> None:
    import socket

    with socket.socket() as sock:  # a free port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AudioError, match="download failed"):
        load_audio(f"http://127.0.0.1:{port}/a.wav")


# ----------------------------------------------------------------------------------------- errors
def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="audio file not found: .*nope.wav"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a directory, not an audio file"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match="audio file not found"):
        list(iter_audio_blocks(tmp_path / "nope.mp3"))


def test_corrupt_inputs(tmp_path: Path) -> None:
    garbage = b"this is definitely not audio " * 20
    with pytest.raises(AudioError, match=r"bytes: cannot decode 580 bytes .*soundfile.*PyAV/FFmpeg"):
        load_audio(garbage)
    path = tmp_path / "broken.wav"
    path.write_bytes(garbage)
    with pytest.raises(
        AudioError, match=r"broken.wav: cannot decode audio file .*soundfile: .*PyAV/FFmpeg: "
    ):
        load_audio(path)
    with pytest.raises(AudioError, match="broken.wav"):
        list(iter_audio_blocks(path))
    truncated = CLIP.read_bytes()[:30]  # header cut short
    with pytest.raises(AudioError, match="cannot decode 30 bytes"):
        load_audio(truncated, name="utt7")
    with pytest.raises(AudioError, match="^utt7: cannot decode"):
        load_audio(truncated, name="utt7")


def test_empty_audio(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty.wav: empty audio \(0 samples\)"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"empty audio \(0 samples\)"):
        list(iter_audio_blocks(path))
    with pytest.raises(AudioError, match=r"array: empty audio \(0 samples\)"):
        load_audio(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match=r"empty audio"):
        load_audio(np.zeros((2, 0), np.float32))
    with pytest.raises(AudioError, match=r"bytes: empty bytes"):
        load_audio(b"")


def test_non_finite_samples(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"array: 100 of 100 samples are not finite \(100 NaN, 0 Inf\)"):
        load_audio(np.full(100, np.nan, np.float32))
    partial = np.zeros(1000, np.float32)
    partial[[3, 50, 700]] = np.nan
    partial[9] = np.inf
    with pytest.raises(AudioError, match=r"utt: 4 of 1000 samples are not finite \(3 NaN, 1 Inf\)"):
        load_audio(partial, name="utt")
    path = _write(tmp_path / "nan.wav", partial, 16000, "FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: 4 of 1000 samples are not finite"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"nan.wav: 4 samples are not finite"):
        list(iter_audio_blocks(path))


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array(["a", "b"]), "non-numeric dtype <U1"),
        (np.zeros(10, np.complex64), "non-numeric dtype complex64"),
        (np.zeros(10, bool), "non-numeric dtype bool"),
        (np.zeros(10, np.int64), "integer dtype int64 is not supported; use int16, int32"),
        (np.zeros((2, 3, 100), np.float32), r"3-D array of shape \(2, 3, 100\)"),
        (np.zeros((16, 1000), np.float32), r"2-D array of shape \(16, 1000\) has no channel axis"),
    ],
)
def test_bad_arrays(array: np.ndarray, match: str) -> None:
    with pytest.raises(AudioError, match="^array: " + match):
        load_audio(array)


@pytest.mark.parametrize("rate", [0, -16000, 384001, 10**9, 16000.5])
def test_bad_sample_rates(rate: float) -> None:
    tone = _sine(100, 16000)
    with pytest.raises(AudioError, match=f"sample_rate={rate!r}"):
        load_audio(tone, sample_rate=rate)
    with pytest.raises(AudioError, match=f"source_rate={rate!r}"):
        load_audio(tone, source_rate=rate)
    with pytest.raises(AudioError, match=f"from_rate={rate!r}"):
        resample(tone, rate, 16000)


def test_unsupported_scheme_and_type() -> None:
    with pytest.raises(AudioError, match=r"unsupported URL scheme 'ftp://'"):
        load_audio("ftp://example.com/a.wav")
    with pytest.raises(AudioError, match=r"unsupported URL scheme 'file://'"):
        load_audio("file:///tmp/a.wav")
    with pytest.raises(AudioError, match="unsupported input type int"):
        load_audio(42)  # type: ignore[arg-type]
    assert isinstance(AudioError("x"), ValueError)


def test_bytes_via_memoryview_and_bytearray() -> None:
    data = CLIP.read_bytes()
    expected = load_audio(CLIP)
    np.testing.assert_array_equal(load_audio(bytearray(data)), expected)
    np.testing.assert_array_equal(load_audio(io.BytesIO(data).getbuffer()), expected)


def test_out_of_range_float_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="uniasr.audio.decoding"):
        load_audio(np.full(100, 3000.0, np.float32), name="loud")
    assert "loud: peak amplitude 3000.0 is far outside [-1, 1]" in caplog.text


def test_jsonl_input_lists_expand_like_wav_scp(tmp_path: Path) -> None:
    """FunASR's `{"key", "source", ...}` lists (the other fields, e.g. target, are not needed to decode)."""
    listing = tmp_path / "test.jsonl"
    lines = '{"key": "a", "source": "x/a.wav", "target": "ア"}\n\n{"key": "b", "audio": "b.flac"}\n'
    listing.write_text(lines, encoding="utf-8")
    assert expand_inputs(listing) == [("a", "x/a.wav"), ("b", "b.flac")]
    assert expand_inputs([str(listing), CLIP]) == [("a", "x/a.wav"), ("b", "b.flac"), ("speech_10s", CLIP)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "has no entries"),
        ("not json\n", r"test.jsonl:1: not JSON"),
        ('{"source": "a.wav"}\n', r'test.jsonl:1: expected an object with a string "key"'),
        ('{"key": "a", "target": "x"}\n', r"test.jsonl:1: key 'a' has no string \"source\""),
        ('{"key": "a", "source": "a.wav"}\n{"key": "a", "source": "b.wav"}\n', "2: duplicate key 'a'"),
    ],
)
def test_jsonl_input_list_errors_name_the_line(tmp_path: Path, text: str, match: str) -> None:
    listing = tmp_path / "test.jsonl"
    listing.write_text(text, encoding="utf-8")
    with pytest.raises(AudioError, match=match):
        expand_inputs(listing)
