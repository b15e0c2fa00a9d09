"""torchrun sharding: rank split, file barrier and merge, failing and missing ranks, --merge-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import INPUTS, ROOT
from uniasr.audio.inputs import expand_inputs
from uniasr.launch import RankInfo, device_for_rank, threads_for_rank
from uniasr.sharding import ShardJob, merge_shards, run_rank, shard

TORCHRUN = Path(sys.executable).parent / "torchrun"
CLIPS = ("speech_10s", "short_0_7s", "long_35s", "speech_10s", "short_0_7s", "speech_10s", "short_0_7s")


@pytest.fixture
def scp(tmp_path) -> Path:
    path = tmp_path / "wav.scp"
    path.write_text("".join(f"utt{i:02d} {INPUTS / name}.wav\n" for i, name in enumerate(CLIPS)))
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_rank_info_from_env():
    assert RankInfo.from_env({}) == RankInfo() and not RankInfo().sharded
    assert not RankInfo.from_env({"RANK": "0", "WORLD_SIZE": "1"}).sharded
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_PORT": "29500"}
    info = RankInfo.from_env(env)
    assert (info.rank, info.world_size, info.local_rank, info.local_world_size) == (3, 4, 1, 2)
    assert info.sharded and device_for_rank("cuda", info.local_rank, has_cuda=True) == "cuda:1"
    assert device_for_rank("cpu", info.local_rank) == "cpu"
    assert device_for_rank("auto", info.local_rank, has_cuda=False) == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        device_for_rank("cuda", info.local_rank, has_cuda=False)
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda, cuda:N"):
        device_for_rank("gpu")
    assert threads_for_rank(info, cpu_count=16) == 8
    with pytest.raises(ValueError, match="RANK=4"):
        RankInfo.from_env({**env, "RANK": "4"})
    with pytest.raises(ValueError, match="integers"):
        RankInfo.from_env({**env, "RANK": "x"})


def test_shards_cover_every_item_once():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "uniasr", "transcribe", *args],
        capture_output=True,
        text=True,
        timeout=180,
        **kw,
    )


def test_torchrun_two_ranks_equal_one_process(tiny_dir, scp, tmp_path):
    common = ["--model", str(tiny_dir), "--format", "srt", "--beam", "2", "--mode", "fast", "--nbest", "2"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    proc = _cli(str(scp), *common, "--output-dir", str(single))
    assert proc.returncode == 0, proc.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "uniasr", "transcribe", str(scp)]
    proc = subprocess.run(
        [*cmd, *common, "--output-dir", str(multi)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("text", "token", "time_stamp"):
        assert _lines(multi / "1best_recog" / name) == _lines(single / "1best_recog" / name), name
    for name in ("text", "token"):  # the second hypotheses too, merged in input order
        assert _lines(multi / "2best_recog" / name) == _lines(single / "2best_recog" / name), name
    assert _lines(single / "2best_recog" / "text") and not (single / "3best_recog").exists()
    keys = [f"utt{i:02d}" for i in range(len(CLIPS))]
    for name in ("score", "rtf"):
        assert [line.split()[0] for line in _lines(multi / "1best_recog" / name)] == keys
    for a, b in zip(_lines(single / "1best_recog" / "score"), _lines(multi / "1best_recog" / "score")):
        assert float(a.split()[1]) == pytest.approx(float(b.split()[1]), abs=1e-4)  # batches differ
    srts = sorted(p.name for p in single.glob("*.srt"))
    assert srts == [f"{k}.srt" for k in keys] == sorted(p.name for p in multi.glob("*.srt"))
    for name in srts:
        assert (multi / name).read_text() == (single / name).read_text()
    assert not (multi / ".shards").exists()  # a complete merge leaves nothing behind
    assert f"merged {len(CLIPS)} inputs into" in proc.stderr and "not done" not in proc.stderr


class _BrokenRecognizer:
    def transcribe(self, *args, **kwargs):
        raise RuntimeError("simulated device failure")


def _job(out: Path, **kw) -> ShardJob:
    return ShardJob(out, "srt", barrier_timeout_s=kw.pop("timeout", 0.3), poll_s=0.05, **kw)


def test_failing_rank_leaves_the_others_results(tiny_recognizer, scp, tmp_path):
    pairs = expand_inputs(scp)
    out = tmp_path / "out"
    kw = {"mode": "fast", "beam_size": 1}
    failed = run_rank(_BrokenRecognizer(), pairs, RankInfo(1, 2, run_id="run"), _job(out), kw)
    assert failed.report is None and failed.exit_code == 1  # rank 0 never reported within the timeout
    status = json.loads((out / ".shards" / "rank1" / "status.json").read_text())
    assert status["state"] == "failed" and "simulated device failure" in status["error"]
    outcome = run_rank(tiny_recognizer, pairs, RankInfo(0, 2, run_id="run"), _job(out, timeout=30), kw)
    report = outcome.report
    assert outcome.merged_here and outcome.exit_code == 1
    assert not report.complete and report.ranks == {"0": "done", "1": "failed"}
    rank0_keys, rank1_keys = [k for k, _ in shard(pairs, 0, 2)], [k for k, _ in shard(pairs, 1, 2)]
    assert report.missing == rank1_keys and report.written == len(rank0_keys)
    assert [line.split(" ", 1)[0] for line in _lines(out / "1best_recog" / "text")] == rank0_keys
    assert sorted(p.stem for p in out.glob("*.srt")) == rank0_keys
    assert "rank1=failed" in report.summary() and rank1_keys[0] in report.summary()


def test_merge_only_recovers_after_a_rank_died(tiny_dir, tiny_recognizer, scp, tmp_path):
    pairs = expand_inputs(scp)
    out = tmp_path / "out"
    kw = {"mode": "fast", "beam_size": 1}
    alone = run_rank(tiny_recognizer, pairs, RankInfo(0, 2, run_id="run"), _job(out), kw)
    assert alone.merged_here and alone.report.ranks == {"0": "done", "1": "missing"}  # timed out, merged
    assert alone.report.missing == [k for k, _ in shard(pairs, 1, 2)]
    late = run_rank(tiny_recognizer, pairs, RankInfo(1, 2, run_id="run"), _job(out, overwrite=True), kw)
    assert not late.merged_here  # the run's merge had happened; rank 1's work waits in its shard
    with pytest.raises(FileExistsError, match="overwrite"):
        merge_shards(out)
    assert (out / ".shards").is_dir()  # incomplete merges keep the shards for recovery
    proc = _cli(str(scp), "--output-dir", str(out), "--merge-only", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert not (out / ".shards").exists()  # now complete: removed
    keys = [k for k, _ in pairs]
    assert [line.split(" ", 1)[0] for line in _lines(out / "1best_recog" / "text")] == keys
    assert sorted(p.stem for p in out.glob("*.srt")) == keys
    single = tiny_recognizer.transcribe(scp, **kw)
    assert [
        line.split(" ", 1)[1] if " " in line else "" for line in _lines(out / "1best_recog" / "text")
    ] == [r.text for r in single]


def test_outputs_of_an_earlier_run_are_not_reused(tiny_recognizer, scp, tmp_path):
    pairs = expand_inputs(scp)
    out = tmp_path / "out"
    (out / ".shards" / "rank0").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="rank0 exists from an earlier run"):
        run_rank(tiny_recognizer, pairs, RankInfo(0, 2, run_id="x"), _job(out), {})
    (out / "1best_recog").mkdir()
    (out / "1best_recog" / "text").write_text("old\n")
    with pytest.raises(FileExistsError, match="1best_recog/text already exists"):
        run_rank(tiny_recognizer, pairs, RankInfo(1, 2, run_id="x"), _job(out), {})
