"""Copy a trained model dir into the package as the bundled default model, with float16 weights.

    python -m recipes.synth_ja.bundle_default exp/default/model [--out src/uniasr/models/default] \
        [--token-num-relax 0]

The loader widens the weights back to float32, so decoding runs in float32 as for the original; float16
halves the file (the package limit for the default model is 40 MB). Refuses to overwrite an existing
model unless --overwrite. --token-num-relax writes a `decoding.yaml` (the ModelScope file that uniasr reads
in any model dir) so the beam search runs at most int(sum(alphas)) + N steps instead of FunASR's + 5: an
undertrained decoder that misses the end-of-sentence token otherwise fills those steps with made-up words.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from uniasr.funasr.model_dir import DECODING_FILE, read_model_dir, write_decoding
from uniasr.model.config import DecodingDefaults

FILES = ("config.yaml", "tokens.json", "am.mvn")
MAX_BYTES = 40 * 1024 * 1024
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "src" / "uniasr" / "models" / "default"


def half_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors to float16 (cloned, contiguous); other tensors unchanged."""
    return {k: v.to(torch.float16).contiguous() if v.is_floating_point() else v for k, v in state.items()}


def bundle(
    model_dir: Path,
    out: Path,
    overwrite: bool = False,
    token_num_relax: int | None = None,
    convert_kana: bool | None = None,
    early_end: bool | None = None,
    agreement: tuple[float, int] | None = None,
    joint: tuple[float, float] | None = None,
    joint_written: float | None = None,
) -> Path:
    """Bundle `model_dir` into `out`. Its decoding.yaml (if any) is kept, with `token_num_relax` /
    `convert_kana` / `early_end` / `agreement` (weight, order) / `joint` (pass-1 weight, length bonus) /
    `joint_written` (the written LM's weight in the joint choice) replaced where given; without any, a dir
    that has none gets none (FunASR's defaults)."""
    model_dir, out = Path(model_dir), Path(out)
    missing = [f for f in (*FILES, "model.pt") if not (model_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir}: missing {', '.join(missing)}")
    if (out / "model.pt").exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a model; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    tmp = out / "model.pt.tmp"
    torch.save(half_state_dict(state), tmp)
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise ValueError(f"float16 weights are {size / 2**20:.1f} MiB, over the 40 MB limit")
    tmp.replace(out / "model.pt")
    for name in FILES:
        shutil.copyfile(model_dir / name, out / name)
    has_decoding = (model_dir / DECODING_FILE).is_file()
    decoding = read_model_dir(model_dir).decoding if has_decoding else DecodingDefaults()
    given = {
        "token_num_relax": token_num_relax,
        "convert_kana": convert_kana,
        "early_end": early_end,
        "joint_written_weight": joint_written,
    }
    changes: dict = {k: v for k, v in given.items() if v is not None}
    if agreement is not None:
        changes.update(agreement_weight=agreement[0], agreement_order=agreement[1])
    if joint is not None:
        changes.update(joint_pass1_weight=joint[0], joint_length_bonus=joint[1])
    if has_decoding or changes:
        write_decoding(out, replace(decoding, **changes))
    else:
        (out / DECODING_FILE).unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="a FunASR 1.x model dir written by `uniasr train`")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--token-num-relax", type=int, help="write decoding.yaml with this token_num_relax")
    p.add_argument(
        "--convert-kana",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decoding.yaml: the model writes orthographic kana, shown as kanji-kana text",
    )
    p.add_argument(
        "--early-end",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decoding.yaml: whether a hypothesis may end before the last search step (FunASR: yes)",
    )
    p.add_argument(
        "--agreement", nargs=2, metavar=("WEIGHT", "ORDER"), default=None,
        help="decoding.yaml: pass 2 favours pass 1's ORDER-grams by WEIGHT per token (0: off)",
    )  # fmt: skip
    p.add_argument(
        "--joint", nargs=2, type=float, metavar=("PASS1_WEIGHT", "LENGTH_BONUS"), default=None,
        help="decoding.yaml: both passes' n-best rescored by both decoders (uniasr.rescore)",
    )  # fmt: skip
    p.add_argument(
        "--joint-written", type=float, metavar="WEIGHT", default=None,
        help="decoding.yaml: the joint choice adds WEIGHT x the written LM's ln-probability of each "
        "candidate's kanji-kana conversion",
    )  # fmt: skip
    args = p.parse_args(argv)
    agreement = (float(args.agreement[0]), int(args.agreement[1])) if args.agreement else None
    joint = (args.joint[0], args.joint[1]) if args.joint else None
    out = bundle(
        args.model_dir, args.out, args.overwrite, args.token_num_relax, args.convert_kana, args.early_end,
        agreement, joint, args.joint_written,
    )  # fmt: skip
    size = (out / "model.pt").stat().st_size / 2**20
    print(f"{out}: model.pt {size:.1f} MiB (float16)")


if __name__ == "__main__":
    main()
