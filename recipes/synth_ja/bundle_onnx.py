"""Ship the bundled model's ONNX export with it, so the base install (no torch) can run it.

    python -m recipes.synth_ja.bundle_onnx [src/uniasr/models/default] \
        [--ref data/synth_ja/test --ref-reading data/synth_ja_ortho/test]

Exports MODEL_DIR to MODEL_DIR/onnx (the dir `uniasr.load` falls back to without torch; the kana -> text LM
stays in MODEL_DIR, not copied) and records the SHA-256 of the checkpoint it came from in `onnx/source.json`
(tests/test_default_model.py fails when the bundled model changes and this step was not rerun). Precision:
int8 unless told otherwise; with --ref, both precisions are decoded on that test set (`normal` mode, beam 5)
and int8 is kept only if its reading and written CER are each within --max-cer-gap (0.3) points of fp32's,
else fp32. Needs the [export] extra (torch, onnx). Run it after every re-bundle of the default model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from uniasr.hub import DEFAULT_MODEL_DIR, ONNX_SUBDIR

SOURCE_FILE = "source.json"
LM_FILE = "written_lm.arpa.gz"


def checkpoint_sha256(model_dir: Path) -> str:
    """SHA-256 of the model dir's weights file (what `source.json` records)."""
    from uniasr.funasr.model_dir import read_model_dir

    return hashlib.sha256(read_model_dir(model_dir).checkpoint_path.read_bytes()).hexdigest()


def export(model_dir: Path, out: Path, int8: bool) -> None:
    from uniasr.export.exporter import export_model

    export_model(model_dir, out, fmt="onnx", int8=int8, overwrite=True)
    (out / LM_FILE).unlink(missing_ok=True)  # read from the model dir it sits in


def test_cer(export_dir: Path, model_dir: Path, ref: Path, ref_reading: Path | None) -> dict:
    """`uniasr eval` of an export on a test set: {"written": cer, "reading": cer} in points (%)."""
    staged = Path(tempfile.mkdtemp(prefix="uniasr-onnx-cer-"))
    try:  # the LM the bundle would use, beside the graphs
        shutil.copytree(export_dir, staged / "onnx")
        if (model_dir / LM_FILE).is_file():
            shutil.copyfile(model_dir / LM_FILE, staged / "onnx" / LM_FILE)
        cmd = [sys.executable, "-m", "uniasr", "eval", "--model", str(staged / "onnx"), "--ref", str(ref)]
        cmd += ["--mode", "normal", "--json"] + (["--ref-reading", str(ref_reading)] if ref_reading else [])
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    cer = {"written": 100 * out["cer"]}
    if "reading" in out:
        cer["reading"] = 100 * out["reading"]["cer"]
    return cer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", nargs="?", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--fp32", action="store_true", help="ship fp32 graphs without measuring")
    p.add_argument("--ref", type=Path, help="test data dir: choose int8 or fp32 by its CER")
    p.add_argument("--ref-reading", type=Path, help="the test set's readings (orthographic kana)")
    p.add_argument("--max-cer-gap", type=float, default=0.3, help="int8 may be this many points worse")
    args = p.parse_args(argv)
    out = args.model_dir / ONNX_SUBDIR
    measured: dict = {}
    int8 = not args.fp32
    if args.ref is not None:
        with tempfile.TemporaryDirectory(prefix="uniasr-onnx-") as tmp:
            for precision in ("fp32", "int8"):
                graphs = Path(tmp) / precision
                export(args.model_dir, graphs, int8=precision == "int8")
                measured[precision] = test_cer(graphs, args.model_dir, args.ref, args.ref_reading)
                print(f"{precision}: test CER (normal) {measured[precision]}", flush=True)
        gaps = {k: measured["int8"][k] - measured["fp32"][k] for k in measured["fp32"]}
        int8 = all(gap <= args.max_cer_gap for gap in gaps.values())
        print(f"int8 - fp32: {gaps} points -> shipping {'int8' if int8 else 'fp32'}")
    if out.exists():
        shutil.rmtree(out)
    export(args.model_dir, out, int8=int8)
    source = {"checkpoint_sha256": checkpoint_sha256(args.model_dir), "precision": "int8" if int8 else "fp32"}
    if measured:
        source["test_cer_normal"] = {"ref": str(args.ref), **measured}
    (out / SOURCE_FILE).write_text(json.dumps(source, indent=1) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({source['precision']}, {size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
